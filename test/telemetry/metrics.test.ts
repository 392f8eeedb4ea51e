/**
 * Issue 15 §3: the writer's OpenTelemetry metrics, read through the SDK's MeterProvider with a
 * reader collected on demand (what a Prometheus scrape does), over a real writer, the HTTP FHIR
 * test server and its fault injector.
 */
import type { FetchLike } from '@medplum/core';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore, type SyncStore } from '../../src/index.ts';
import type { TelemetryOptions } from '../../src/telemetry/telemetry-options.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import { MetricCollector, sumOf, type Point } from './metric-collector.ts';

/** Values that must never reach a metric: names, ids. */
const MARKERS = ['Zqxmarker', 'p-phi-7'];
const row = (id: string, last = 'Zqxmarker'): PatientRow => ({ id, first_name: 'Ada', last_name: last });

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
let metrics: MetricCollector | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  await metrics?.shutdown();
  fixture = undefined;
  metrics = undefined;
});

type FixtureOptions = NonNullable<Parameters<typeof startWriterFixture>[0]>;

/**
 * A writer over the fixture's systems whose metrics a collector reads; the journal is read at
 * every collection unless `telemetry` says otherwise.
 */
async function start(
  writer: FixtureOptions['writer'] = {},
  options: { readonly telemetry?: TelemetryOptions; readonly fetch?: FixtureOptions['fetch'] } = {},
): Promise<{ fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>>; metrics: MetricCollector }> {
  metrics = new MetricCollector();
  fixture = await startWriterFixture({
    writer: {
      telemetry: { meterProvider: metrics.provider, journalReadIntervalMs: 0, ...options.telemetry },
      ...writer,
    },
    fetch: options.fetch,
  });
  return { fixture, metrics };
}

/** A store with some of its calls replaced; the others pass through. */
function storeWith(store: SyncStore, replaced: Partial<Record<keyof SyncStore, unknown>>): SyncStore {
  return new Proxy(store, {
    get(target, property) {
      if (Object.hasOwn(replaced, property)) return replaced[property as keyof SyncStore];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** No attribute value of any point holds a marker. */
function expectNoValues(points: readonly Point[]): void {
  const shown = JSON.stringify(points.map((p) => p.attributes));
  for (const marker of MARKERS) expect(shown).not.toContain(marker);
}

describe('metrics', () => {
  it('counts mirrors by outcome and records each applied mirror’s lag', async () => {
    const { fixture, metrics } = await start();
    await fixture.writer.create('Patient', row('p-phi-7'), north);
    await fixture.writer.create('Patient', row('p-2'), north);
    await fixture.writer.update('Patient', 'p-2', row('p-2', 'King'), north);
    const points = await metrics.collect();
    const where = { unit: 'north', resource_type: 'Patient', target: 'medplum' };
    expect(sumOf(points, 'dualwrite.mirrors', { ...where, outcome: 'applied' })).toBe(3);
    expect(sumOf(points, 'dualwrite.mirror.lag', where)).toBe(3);
    expectNoValues(points);
  });

  it('counts retries by side and status, and 429 waits with their length', async () => {
    const { fixture, metrics } = await start();
    fixture.server.faults.failNext(2, 503);
    await fixture.writer.create('Patient', row('p-1'), north);
    fixture.server.faults.failNext(1, 429, { rateLimitResetSeconds: 1 });
    await fixture.writer.create('Patient', row('p-2'), north);
    const points = await metrics.collect();
    expect(sumOf(points, 'dualwrite.retries', { side: 'medplum', status: '503' })).toBe(2);
    expect(sumOf(points, 'dualwrite.retries', { side: 'medplum', status: '429' })).toBe(1);
    const wait = points.find((p) => p.name === 'dualwrite.rate_limit.wait');
    // The fixture caps rate-limit waits at 50 ms.
    expect(wait).toMatchObject({ attributes: { side: 'medplum' }, count: 1 });
    expect(wait!.value).toBeGreaterThanOrEqual(0.05);
  });

  it('counts dead letters by reason class and status', async () => {
    const { fixture, metrics } = await start();
    fixture.server.faults.failNext(1, 400);
    await fixture.writer.create('Patient', row('p-phi-7'), north).catch(() => undefined);
    const points = await metrics.collect();
    expect(
      sumOf(points, 'dualwrite.dead_letters', {
        unit: 'north',
        resource_type: 'Patient',
        target: 'medplum',
        reason: 'RejectedError',
        status: '400',
      }),
    ).toBe(1);
    expect(sumOf(points, 'dualwrite.mirrors', { outcome: 'dead-letter' })).toBe(1);
    expectNoValues(points);
  });

  it('counts conflicts by resolver and resolution', async () => {
    const { fixture, metrics } = await start();
    const created = await fixture.writer.create('Patient', row('p-1'), north);
    const copy = await fixture.direct.readResource('Patient', created.medplumId ?? '', { cache: 'no-cache' });
    await fixture.direct.updateResource({ ...copy, gender: 'female' });
    await fixture.writer.update('Patient', 'p-1', row('p-1', 'King'), north);
    expect(
      await metrics.total('dualwrite.conflicts', {
        unit: 'north',
        resource_type: 'Patient',
        resolver: 'authority-wins',
        resolution: 'legacy',
      }),
    ).toBe(1);
  });

  it('reports a unit or a resolver that is not an identifier (a name, a date, an address) as other', async () => {
    const { fixture, metrics } = await start({
      resolver: () => ({ winner: 'legacy', by: 'Dr Zqxmarker' }),
    });
    const units = ['Ann Zqxmarker', '1931-04-12', '12 Main St', 'zqxmarker@example.org', '+1 555-0100'];
    for (const [i, unit] of units.entries()) await fixture.writer.create('Patient', row(`p-${i}`), { unit });
    const created = await fixture.writer.create('Patient', row('p-9'), north);
    const copy = await fixture.direct.readResource('Patient', created.medplumId ?? '', { cache: 'no-cache' });
    await fixture.direct.updateResource({ ...copy, gender: 'female' });
    await fixture.writer.update('Patient', 'p-9', row('p-9', 'King'), north);
    const points = await metrics.collect();
    expect(sumOf(points, 'dualwrite.mirrors', { unit: 'other', outcome: 'applied' })).toBe(units.length);
    expect(sumOf(points, 'dualwrite.conflicts', { unit: 'north', resolver: 'other' })).toBe(1);
    const shown = JSON.stringify(points.map((p) => p.attributes));
    for (const value of [...MARKERS, 'zqxmarker', '1931', 'Main St', '555'])
      expect(shown).not.toContain(value);
  });

  it('reads the outbox depth and oldest age per unit and type from the journal while the writer runs', async () => {
    const { fixture, metrics } = await start({ mirror: 'async' });
    await fixture.writer.create('Patient', row('p-1'), north);
    await fixture.writer.create('Patient', row('p-2'), { unit: 'south' });
    await fixture.writer.create('Patient', row('p-3'), { unit: 'south' });
    // Not started: the gauges are not registered, nothing is read.
    expect(sumOf(await metrics.collect(), 'dualwrite.outbox.depth')).toBe(0);
    fixture.writer.start({ drainer: false, feeds: false });
    const points = await metrics.collect();
    const depth = (unit: string) =>
      sumOf(points, 'dualwrite.outbox.depth', { unit, resource_type: 'Patient', state: 'pending' });
    expect([depth('north'), depth('south')]).toEqual([1, 2]);
    const age = points.find((p) => p.name === 'dualwrite.outbox.oldest_age' && p.attributes.unit === 'south');
    expect(age?.value).toBeGreaterThanOrEqual(0);
    await fixture.writer.drain();
    expect(sumOf(await metrics.collect(), 'dualwrite.outbox.depth')).toBe(0);
    await fixture.writer.stop();
  });

  it('counts the changes each feed reads and the echoes among them, and reports the cursor age of each feed that read', async () => {
    const { fixture, metrics } = await start({ feeds: { unitOf: () => 'north', sides: ['legacy'] } });
    fixture.writer.start({ drainer: false, feeds: false });
    await fixture.writer.create('Patient', row('p-phi-7'), north);
    await fixture.writer.create('Patient', row('p-2'), north);
    // No feed has read yet: no cursor age.
    expect((await metrics.collect()).filter((p) => p.name === 'dualwrite.feed.cursor_age')).toEqual([]);
    // The first pass reads the writer's own two writes: both echoes.
    expect(await fixture.writer.pollFeeds()).toMatchObject({ echoes: 2, queued: 0 });
    const stored = await fixture.legacy.read('Patient', 'p-2');
    await fixture.legacy.update('Patient', 'p-2', row('p-2', 'King'), { expectedVersion: stored?.version });
    // The second reads one change made directly in the legacy system.
    expect(await fixture.writer.pollFeeds()).toMatchObject({ echoes: 0, queued: 1 });
    const points = await metrics.collect();
    const feed = { side: 'legacy', resource_type: 'Patient' };
    expect(sumOf(points, 'dualwrite.feed.changes', feed)).toBe(3);
    expect(sumOf(points, 'dualwrite.feed.echoes', feed)).toBe(2);
    expect(sumOf(points, 'dualwrite.feed.reads', { ...feed, failed: 'false' })).toBe(2);
    expect(sumOf(points, 'dualwrite.feed.reads', { ...feed, failed: 'true' })).toBe(0);
    const ages = points.filter((p) => p.name === 'dualwrite.feed.cursor_age');
    expect(ages.map((p) => p.attributes)).toEqual([feed]);
    expect(ages[0]?.value).toBeGreaterThanOrEqual(0);
    expectNoValues(points);
  });

  it('counts a feed read that failed, and reports no cursor age for a feed that never read to its end', async () => {
    const { fixture, metrics } = await start({ feeds: { unitOf: () => 'north', sides: ['medplum'] } });
    fixture.writer.start({ drainer: false, feeds: false });
    fixture.server.faults.outage(60_000);
    expect((await fixture.writer.pollFeeds()).failures).toHaveLength(1);
    const points = await metrics.collect();
    const feed = { side: 'medplum', resource_type: 'Patient' };
    expect(sumOf(points, 'dualwrite.feed.reads', { ...feed, failed: 'true' })).toBe(1);
    expect(points.filter((p) => p.name === 'dualwrite.feed.cursor_age')).toEqual([]);
  });

  it('reports the pages and records of running backfill and reconcile jobs, and 0 once a job is done', async () => {
    const { fixture, metrics } = await start({ mirror: 'async' });
    for (const id of ['p-1', 'p-2', 'p-3']) await fixture.legacy.create('Patient', row(id));
    fixture.writer.start({ drainer: false, feeds: false });
    /** Stops this worker after `pages` pages: the job stays running. */
    const pagesOf = (pages: number) => {
      const stop = new AbortController();
      return {
        pageSize: 1,
        signal: stop.signal,
        onProgress: ({ job }: { job: { pagesDone: number } }) => {
          if (job.pagesDone >= pages) stop.abort();
        },
      };
    };
    const scope = { resourceType: 'Patient', unit: 'north', direction: 'to-medplum' } as const;
    const backfill = await fixture.writer.backfill({ ...scope, ...pagesOf(1) });
    // A reconciliation reads Medplum first: its first page is empty (nothing drained yet), its
    // second the first legacy record.
    const reconcile = await fixture.writer.reconcile({ ...scope, ...pagesOf(2) });
    expect([backfill.state, reconcile.state]).toEqual(['running', 'running']);
    const points = await metrics.collect();
    for (const job of [backfill, reconcile]) {
      const where = {
        kind: job.kind,
        resource_type: 'Patient',
        unit: 'north',
        direction: 'to-medplum',
        state: 'running',
      };
      expect(sumOf(points, 'dualwrite.job.pages_done', where)).toBe(job.kind === 'backfill' ? 1 : 2);
      expect(sumOf(points, 'dualwrite.job.pages', where)).toBe(job.pages);
      expect(job.counts.scanned).toBe(1);
      for (const [outcome, count] of Object.entries(job.counts))
        expect(sumOf(points, 'dualwrite.job.records', { ...where, outcome })).toBe(count);
    }
    // The backfill runs to its end: its figures go to 0; the reconcile's stay.
    expect(await fixture.writer.backfill({ ...scope, jobId: backfill.id, pageSize: 1 })).toMatchObject({
      state: 'done',
    });
    const after = await metrics.collect();
    const running = { kind: 'backfill', state: 'running' };
    expect(sumOf(after, 'dualwrite.job.pages_done', running)).toBe(0);
    expect(sumOf(after, 'dualwrite.job.records', running)).toBe(0);
    expect(sumOf(after, 'dualwrite.job.pages_done', { kind: 'reconcile', state: 'running' })).toBe(2);
    expectNoValues(after);
  });

  it('reads the journal at most once per journalReadIntervalMs, however often it is collected', async () => {
    const store = new MemoryStore();
    let reads = 0;
    const counted = storeWith(store, {
      outboxBacklog: () => {
        reads += 1;
        return store.outboxBacklog();
      },
    });
    const { fixture, metrics } = await start(
      { mirror: 'async', store: counted },
      { telemetry: { journalReadIntervalMs: 3_600_000 } },
    );
    await fixture.writer.create('Patient', row('p-1'), north);
    fixture.writer.start({ drainer: false, feeds: false });
    for (let i = 0; i < 5; i += 1) await metrics.collect();
    await fixture.writer.stop();
    expect(reads).toBe(1);
  });

  it('counts requeued leases: a newer write arrives while the drainer applies the entry', async () => {
    let hold: Promise<void> | undefined;
    let paused!: () => void;
    const reached = new Promise<void>((resolve) => (paused = resolve));
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    const pauseFirstWrite =
      (fetchFn: FetchLike): FetchLike =>
      async (url, options) => {
        const method = (options as { method?: string } | undefined)?.method ?? 'GET';
        if (hold !== undefined && (method === 'POST' || method === 'PUT')) {
          const waiting = hold;
          hold = undefined;
          paused();
          await waiting;
        }
        return (await fetchFn(url, options)) as Response;
      };
    const { fixture, metrics } = await start(
      { mirror: 'async', drainer: { bundle: 1 } },
      { fetch: pauseFirstWrite },
    );
    const { writer } = fixture;
    await writer.create('Patient', row('p-1'), north);
    const draining = writer.drain();
    await reached;
    await writer.update('Patient', 'p-1', row('p-1', 'King'), north);
    release();
    await draining;
    await writer.drain();
    const points = await metrics.collect();
    expect(sumOf(points, 'dualwrite.mirrors', { outcome: 'requeued' })).toBe(1);
    expect(sumOf(points, 'dualwrite.mirrors', { outcome: 'applied' })).toBe(1);
  });

  it('counts fenced leases: the store says another worker took the entry over', async () => {
    const fenced = storeWith(new MemoryStore(), { complete: () => Promise.resolve('fenced') });
    const { fixture, metrics } = await start({ store: fenced });
    await fixture.writer.create('Patient', row('p-1'), north);
    expect(await metrics.total('dualwrite.mirrors', { outcome: 'fenced', target: 'medplum' })).toBe(1);
  });

  it('records nothing with telemetry: false, and writes work the same', async () => {
    const { fixture, metrics } = await start({ telemetry: false });
    const result = await fixture.writer.create('Patient', row('p-1'), north);
    expect(result.mirror).toBe('applied');
    expect(await metrics.collect()).toEqual([]);
  });
});
