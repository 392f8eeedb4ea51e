import { afterEach, describe, expect, it } from 'vitest';
import { CutoverPlan, OutcomeUnknownError, RequestTimeoutError, type DualWriteEvent } from '../src/index.ts';
import type { PatientRow } from '../test/harness/patient-fixture.ts';
import { north, notRun, startRealFixture, type Ctx, type RealFixture } from './real-medplum.ts';

/** The suite's own server process (exported by the global setup when it started the server). */
const pid = Number(process.env.MEDPLUM_SERVER_PID ?? 'NaN');
const why =
  notRun ??
  (Number.isSafeInteger(pid) && pid > 0
    ? undefined
    : 'MEDPLUM_SERVER_PID is not set: the suite did not start the server, so it may not stop it');

const REQUEST_TIMEOUT_MS = 1500;

/** The errors of a chain, outermost first. */
function chain(error: unknown): unknown[] {
  const errors: unknown[] = [];
  for (let at = error; at !== undefined && errors.length < 10; at = (at as { cause?: unknown }).cause)
    errors.push(at);
  return errors;
}

describe.skipIf(why !== undefined)('a real Medplum that stops answering (SIGSTOP), then resumes', () => {
  let fx: RealFixture | undefined;
  let stopped = false;
  const resume = (): void => {
    if (!stopped) return;
    process.kill(pid, 'SIGCONT');
    stopped = false;
  };
  afterEach(async () => {
    // Whatever happened in the test, the server answers again before the next one.
    resume();
    await fx?.close();
    fx = undefined;
  });

  it('every request is abandoned after requestTimeoutMs, no call hangs, and afterwards every record has exactly one copy', async () => {
    fx = await startRealFixture({
      stage: 'dual-write',
      writer: {
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        retry: { retries: 1, minTimeoutMs: 50, maxTimeoutMs: 100 },
        drainer: { pollIntervalMs: 50, backoff: { minMs: 200, maxMs: 1000, factor: 2 } },
      },
    });
    const f = fx;
    const row = (id: string, family: string): PatientRow => ({ id, first_name: 'Stop', last_name: family });
    const linked = ['s-1', 's-2', 's-3', 's-4'];
    for (const id of linked) await f.writer.create('Patient', row(id, 'Before'), north);
    const queued = f.another({ mirror: 'async' });
    const live = f.another({
      plan: new CutoverPlan<Ctx>({ default: 'live', unitOf: (ctx) => ctx.unit }),
      mirror: 'async',
    });
    const events: DualWriteEvent[] = [];
    const drainer = f.another({ mirror: 'async', onEvent: (event) => events.push(event) });

    process.kill(pid, 'SIGSTOP');
    stopped = true;
    try {
      // A synchronous dual-write: the legacy write stands, its inline mirror times out.
      const inline = await f.writer.create('Patient', row('s-5', 'During'), north);
      expect(inline).toMatchObject({ legacy: { action: 'created' }, mirror: 'pending' });
      // Queued mirrors: creates and updates of linked records.
      for (const id of ['s-6', 's-7', 's-8']) await queued.create('Patient', row(id, 'During'), north);
      for (const id of linked.slice(0, 2)) await queued.update('Patient', id, row(id, 'During'), north);

      // Medplum is the authority: the write cannot be confirmed, and the call says so.
      const error = await live.create('Patient', row('s-9', 'Live'), north).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OutcomeUnknownError);
      expect(error).toMatchObject({ side: 'medplum', legacyId: 's-9', retryable: true });
      const timeout = chain(error).find((e) => e instanceof RequestTimeoutError);
      expect(timeout).toMatchObject({ timeoutMs: REQUEST_TIMEOUT_MS, outcomeUnknown: true });

      // A drain while nothing answers ends at its limit; every attempt was abandoned in time.
      const report = await drainer.drain({ timeoutMs: 3 * REQUEST_TIMEOUT_MS });
      expect(report).toMatchObject({ applied: 0, deadLettered: 0 });
      expect(report.remaining.pending + report.remaining.leased).toBeGreaterThanOrEqual(6);
      const failures = events.filter((event) => event.type === 'retry');
      expect(failures.length).toBeGreaterThan(0);
      expect(new Set(failures.map((event) => (event as { error: string }).error))).toEqual(
        new Set(['RequestTimeoutError']),
      );
    } finally {
      resume();
    }

    const after = await drainer.drain({ timeoutMs: 60_000 });
    expect(after).toMatchObject({ deadLettered: 0, timedOut: false });
    expect(after.remaining).toMatchObject({ pending: 0, leased: 0, dead: 0 });
    const expected: Record<string, string> = {
      's-1': 'During',
      's-2': 'During',
      's-3': 'Before',
      's-4': 'Before',
      's-5': 'During',
      's-6': 'During',
      's-7': 'During',
      's-8': 'During',
    };
    for (const [id, family] of Object.entries(expected)) {
      const copies = await f.copies(id);
      expect(copies, id).toHaveLength(1);
      expect(copies[0]?.name?.[0]?.family, id).toBe(family);
    }
    // The live write landed or did not; either way there is at most one copy, and the legacy
    // system holds what Medplum holds.
    const liveCopies = await f.copies('s-9');
    expect(liveCopies.length).toBeLessThanOrEqual(1);
    const legacyRow = await f.legacy.read('Patient', 's-9');
    expect(legacyRow?.row.last_name).toBe(liveCopies[0]?.name?.[0]?.family);
  });
});
