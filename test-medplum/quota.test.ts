import { afterEach, describe, expect, it } from 'vitest';
import { QuotaPacer, type DualWriteEvent } from '../src/index.ts';
import {
  countingFetch,
  north,
  notRun,
  quotaServer,
  startRealFixture,
  type RealFixture,
} from './real-medplum.ts';

const server = quotaServer();
const why =
  notRun ?? (server === undefined ? 'no server with a lowered quota (MEDPLUM_QUOTA_BASE_URL)' : undefined);
if (why !== undefined) console.log(`quota test not run: ${why}`);

describe.skipIf(why !== undefined)('a real Medplum with a lowered FHIR quota', () => {
  let fx: RealFixture;
  afterEach(async () => {
    await fx.close();
  });

  it('waits a 429 out once, until the reset the server announced, then keeps under the budget', async () => {
    const counting = countingFetch();
    const pacer = new QuotaPacer();
    fx = await startRealFixture({
      server: server!,
      fetch: counting.fetch,
      writer: { mirror: 'async', pacer },
    });
    // As many records as one window pays for (100 points a create, a search each at worst,
    // less the reserve), so the test waits for one reset, not several.
    const records = Math.floor((0.6 * server!.points) / 100);
    const ids = Array.from({ length: records }, (_, i) => `quota-${i}`);
    for (const id of ids) await fx.writer.create('Patient', { id, first_name: 'Q', last_name: id }, north);

    // The Medplum app, logged in as the same user, spends the window behind the pacer's back.
    let announced: string | null = null;
    for (let i = 0; i < 2 * (server!.points / 100) && announced === null; i++) {
      const response = await fetch(`${server!.baseUrl}fhir/R4/Patient`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${fx.direct.getAccessToken() ?? ''}`,
          'content-type': 'application/fhir+json',
        },
        body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'App' }] }),
      });
      await response.arrayBuffer();
      if (response.status === 429) announced = response.headers.get('ratelimit');
    }
    expect(announced).toMatch(/"fhirInteractions";r=0;t=\d+/);

    const report = await fx.writer.drain({ timeoutMs: 140_000 });
    expect(report).toMatchObject({ applied: records, deadLettered: 0, timedOut: false });
    for (const id of ids) expect(await fx.copies(id)).toHaveLength(1);

    const retries = fx.events.filter(
      (e): e is Extract<DualWriteEvent, { type: 'retry' }> => e.type === 'retry' && e.status === 429,
    );
    const answered429 = (counting.statuses.get(429) ?? 0) + counting.entry429s();
    console.log(
      `${records} creates under ${server!.points} points/min after the app spent the window: ${answered429} answers 429 (entries included), ${retries.length} retries on 429, statuses ${JSON.stringify([...counting.statuses])}`,
    );
    // The drain's first request (a probe: it knew no budget yet) met the spent window. The
    // pacer then waited for the reset the server announced, and no request after it ran into
    // the limit again; a write that met it was retried once, after the reset (seconds, not a
    // backoff's half-second).
    expect(counting.throttledRequests()).toBe(1);
    expect(pacer.stats().waitedMs).toBeGreaterThan(1000);
    for (const retry of retries) expect(retry.delayMs).toBeGreaterThan(1000);
    const perRecord = new Map<string, number>();
    for (const retry of retries)
      perRecord.set(retry.legacyId ?? '', (perRecord.get(retry.legacyId ?? '') ?? 0) + 1);
    expect(Math.max(0, ...perRecord.values())).toBeLessThanOrEqual(1);
  });
});
