/**
 * What an outside user found running the `dualwrite` jobs (issue 15): the stage a job routes
 * by, a unit given with a typo, a drain that stops at its limit with mirrors owed, and the
 * CLI's own wording. Run as a process against PostgreSQL and the HTTP FHIR test server.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CutoverPlan, type PostgresStore } from '../../src/index.ts';
import { WRITE_METHODS, type FhirTestServer } from '../../src/testing/index.ts';
import { json, openCliWorld, until, type CliBuild, type CliWorld } from './cli-harness.ts';

interface JobDoc {
  id: string;
  kind: string;
  state: string;
  unit?: string;
  direction: string;
  counts: Record<string, number>;
}

interface ErrorDoc {
  error: { name: string; message: string; field?: string };
}

const NORTH = 6;
let world: CliWorld;
let server: FhirTestServer;
let cli: CliBuild;
let store: PostgresStore;

beforeAll(async () => {
  world = await openCliWorld('cli_safety', [
    ...Array.from({ length: NORTH }, (_, i) => ({
      clinic: 'north',
      first_name: `N${i}`,
      last_name: `L${i}`,
    })),
    { clinic: 'harbour', first_name: 'H', last_name: 'B' },
  ]);
  ({ server, cli } = world);
  store = await world.openJournal();
  // The stored plan the service's instances share: `harbour` moved on to rampdown (Medplum is
  // the authority) — a stage the configuration's code does not know.
  const stored = new CutoverPlan<{ clinic: string }>({
    default: 'legacy-only',
    units: { north: 'dual-write', south: 'live', harbour: 'rampdown' },
    unitOf: (ctx) => ctx.clinic,
  });
  await stored.attach(store);
  stored.detach();
}, 180_000);

afterEach(() => {
  server.faults.clear();
});

afterAll(async () => {
  await world.close();
});

describe('the plan a command routes by', () => {
  it('is the stored plan even when the configuration never attached its plan', async () => {
    const result = await cli.run(['reconcile', 'start', '-t', 'Patient', '-u', 'harbour', '--json'], {
      CLI_TEST_NO_ATTACH: '1',
    });
    expect(result.code, result.stderr).toBe(0);
    const { job } = json<{ job: JobDoc }>(result);
    // rampdown: Medplum is the authority, so the reference side is the legacy copy's target.
    expect(job).toMatchObject({ kind: 'reconcile', unit: 'harbour', direction: 'to-legacy', state: 'done' });
    expect((await store.getJob(job.id))?.direction).toBe('to-legacy');

    const status = await cli.run(['status', '--json'], { CLI_TEST_NO_ATTACH: '1' });
    const units = json<{ units: { unit: string; stages: Record<string, string> }[] }>(status).units;
    expect(units.find((unit) => unit.unit === 'harbour')?.stages).toEqual({ Patient: 'rampdown' });
  }, 120_000);
});

describe('a unit the system does not know', () => {
  it.each(['backfill', 'reconcile'])(
    'is refused by %s start (exit 2, naming --unit), and no job is made',
    async (kind) => {
      const before = await store.listJobs({});
      const result = await cli.run([kind, 'start', '-t', 'Patient', '-u', 'harbor', '--json']);
      expect(result.code, result.stderr).toBe(2);
      const { error } = json<ErrorDoc>(result);
      expect(error).toMatchObject({ name: 'UsageError', field: '--unit' });
      expect(error.message).toContain('harbour');
      expect(error.message).not.toContain('harbor,');
      expect(await store.listJobs({})).toHaveLength(before.length);
    },
    120_000,
  );
});

describe('plan set refused', () => {
  it('says --force, not the library option', async () => {
    const result = await cli.run(['plan', 'set', 'north', 'live', '--yes']);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('StageChangeRefusedError');
    expect(result.stderr).toContain('pass --force');
    expect(result.stderr).not.toContain('{ force: true }');
  }, 120_000);
});

describe('a configuration with a misspelt option', () => {
  it.each([['status'], ['readiness', 'north'], ['plan', 'show'], ['outbox'], ['backfill', 'status']])(
    'is refused by %s as by backfill (exit 2, naming the key)',
    async (...args) => {
      const result = await cli.run([...args, '--json'], { CLI_TEST_TYPO: '1' });
      expect(result.code, result.stderr).toBe(2);
      const { error } = json<ErrorDoc>(result);
      expect(error.name).toBe('ConfigurationError');
      expect(error.message).toContain('mirrror');
    },
    120_000,
  );
});

describe('a drain that stops at its limit', () => {
  it('backfill start says how many mirrors remain and exits 1; drain --timeout too; a later drain applies them', async () => {
    // Every write to Medplum fails (503): no mirror can be applied within the limit.
    server.faults.failShare(1, 503, { methods: WRITE_METHODS });
    const result = await cli.run([
      'backfill',
      'start',
      '-t',
      'Patient',
      '-u',
      'north',
      '--drain-timeout',
      '1s',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(1);
    const doc = json<{ job: JobDoc; drain: { remaining: number; timedOut: boolean } }>(result);
    expect(doc.job.state).toBe('done');
    expect(doc.drain).toMatchObject({ remaining: NORTH, timedOut: true });
    expect(result.stderr).toContain(`${NORTH} mirrors still pending`);

    const drain = await cli.run(['drain', '--timeout', '1s', '--json']);
    expect(drain.code, drain.stderr).toBe(1);
    expect(drain.stderr).toContain('time limit reached');

    server.faults.clear();
    const after = await cli.run(['drain', '--json']);
    expect(after.code, after.stderr).toBe(0);
    const counts = await store.outboxCounts();
    expect(counts.pending + counts.leased + (counts.waiting ?? 0)).toBe(0);
  }, 120_000);
});

describe('a resume after a worker was killed', () => {
  it("says it waits for the dead worker's page, then finishes", async () => {
    const hold = mkdtempSync(join(tmpdir(), 'dualwrite-cli-hold-'));
    try {
      const running = cli.start(['backfill', 'start', '-t', 'Patient', '-u', 'north', '--page-size', '2'], {
        CLI_TEST_HOLD: hold,
      });
      // The second page's read is held: the page is taken, then the worker dies holding it.
      await until(() => existsSync(join(hold, 'scanning')) || running.finished());
      expect(running.finished(), running.stderr()).toBe(false);
      process.kill(running.pid, 'SIGKILL');
      await running.done;
      const [job] = await store.listJobs({ kind: 'backfill', state: 'running', limit: 1 });
      expect(job).toBeDefined();
      const resumed = await cli.run(['backfill', 'resume', job?.id ?? '', '--json']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(
        /page\(s\) taken and not done .*a worker that died holds its page until its lease expires/,
      );
      expect(json<{ job: JobDoc }>(resumed).job.state).toBe('done');
    } finally {
      rmSync(hold, { recursive: true, force: true });
    }
  }, 240_000);
});

// Last: it leaves 1,000 mirrors of south queued that nothing applies.
describe('a job that waits', () => {
  it('says it waits for the outbox, and that nothing drains it here under --no-drain', async () => {
    await store.intendMany(
      Array.from({ length: 1000 }, (_, i) => ({
        resourceType: 'Patient',
        legacyId: `queued-${String(i)}`,
        target: 'medplum' as const,
        unit: 'south',
        kind: 'upsert' as const,
      })),
      0,
    );
    const running = cli.start(['backfill', 'start', '-t', 'Patient', '-u', 'north', '--no-drain', '--json']);
    await until(() => running.stderr().includes('nothing drains it here') || running.finished());
    expect(running.finished(), running.stderr()).toBe(false);
    expect(running.stderr()).toMatch(
      /waiting for the outbox \(1000 mirrors queued; a page waits while 1000 are\)/,
    );
    running.interrupt();
    const result = await running.done;
    expect(result.code, result.stderr).toBe(130);
    // Paused, or done when Ctrl-C came once its only page was taken.
    expect(['paused', 'done']).toContain(json<{ job: JobDoc }>(result).job.state);
  }, 120_000);
});
