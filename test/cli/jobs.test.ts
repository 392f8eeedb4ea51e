import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutoverPlan, type PostgresStore } from '../../src/index.ts';
import type { FhirTestServer } from '../../src/testing/index.ts';
import { exists, json, openCliWorld, until, type CliBuild, type CliWorld } from './cli-harness.ts';

/** A job as `--json` prints it. */
interface JobDoc {
  id: string;
  kind: string;
  state: string;
  unit: string | null;
  counts: Record<string, number>;
}

const UNITS = { north: 12, east: 8, west: 5 } as const;
const ROWS = Object.values(UNITS).reduce((a, b) => a + b, 0);
let world: CliWorld;
let server: FhirTestServer;
let cli: CliBuild;
let store: PostgresStore;

beforeAll(async () => {
  world = await openCliWorld(
    'cli_jobs',
    Object.entries(UNITS).flatMap(([clinic, n]) =>
      Array.from({ length: n }, (_, i) => ({ clinic, first_name: `First${i}`, last_name: `Last${i}` })),
    ),
  );
  ({ server, cli } = world);
  store = await world.openJournal();
  // east and west are named in the stored plan (on the default stage): a job refuses a unit
  // neither the plan nor the journal knows (job-safety.test.ts).
  const named = new CutoverPlan<{ clinic: string }>({
    default: 'legacy-only',
    units: { north: 'dual-write', south: 'live', east: 'legacy-only', west: 'legacy-only' },
    unitOf: (ctx) => ctx.clinic,
  });
  await named.attach(store);
  named.detach();
}, 180_000);

afterAll(async () => {
  await world.close();
});

/** Patients of a unit on the FHIR server. */
async function patientsIn(unit: string): Promise<number> {
  const found = await server.repo.search({ resourceType: 'Patient', count: 1000 } as never);
  return (found.entry ?? []).filter(
    (entry) =>
      (entry.resource as { managingOrganization?: { display?: string } }).managingOrganization?.display ===
      unit,
  ).length;
}

describe('dualwrite backfill', () => {
  it('runs a backfill to the end as a process, prints the job as JSON and plain progress lines off a terminal', async () => {
    const result = await cli.run(['backfill', 'start', '--type', 'Patient', '--unit', 'north', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const { job } = json<{ job: JobDoc }>(result);
    expect(job).toMatchObject({ kind: 'backfill', state: 'done', unit: 'north' });
    expect(job.counts.scanned).toBe(ROWS);
    expect(job.counts.skipped).toBe(ROWS - UNITS.north);
    expect(await patientsIn('north')).toBe(UNITS.north);
    // Off a terminal: plain lines, no bar, no escape sequences.
    expect(result.stderr).toMatch(
      new RegExp(`^backfill job ${job.id}: ${ROWS} scanned, [\\d.]+/s, ETA -$`, 'm'),
    );
    expect(result.stderr).not.toContain('\u001b[');

    const status = await cli.run(['backfill', 'status', job.id, '--json']);
    expect(status.code).toBe(0);
    expect(json<{ job: JobDoc }>(status).job).toEqual(job);
    const list = await cli.run(['backfill', 'status', '--json']);
    expect(json<{ jobs: JobDoc[] }>(list).jobs.map((listed) => listed.id)).toContain(job.id);
  }, 120_000);

  it('pauses the job on Ctrl-C after the page in hand, exits 130, and resume finishes it from its cursor', async () => {
    const hold = mkdtempSync(join(tmpdir(), 'dualwrite-cli-hold-'));
    try {
      const running = cli.start(
        ['backfill', 'start', '--type', 'Patient', '--unit', 'east', '--page-size', '5', '--json'],
        {
          CLI_TEST_HOLD: hold,
        },
      );
      // The second page's read is held: the first page is complete, the second in hand.
      await until(() => exists(join(hold, 'scanning')) || running.finished());
      expect(running.finished(), running.stderr()).toBe(false);
      running.interrupt();
      await until(() => running.stderr().includes('Ctrl-C: pausing the backfill') || running.finished());
      writeFileSync(join(hold, 'release'), '');
      const result = await running.done;
      expect(result.code, result.stderr).toBe(130);
      const { job } = json<{ job: JobDoc }>(result);
      expect(job.state).toBe('paused');
      expect(job.counts.scanned).toBe(10);
      expect(result.stderr).toContain(
        `backfill job ${job.id} paused: resume with \`dualwrite backfill resume ${job.id}\``,
      );
      expect((await store.getJob(job.id))?.state).toBe('paused');

      const resumed = await cli.run(['backfill', 'resume', job.id, '--json']);
      expect(resumed.code, resumed.stderr).toBe(0);
      const after = json<{ job: JobDoc }>(resumed).job;
      expect(after).toMatchObject({ id: job.id, state: 'done' });
      expect(after.counts.scanned).toBe(ROWS);
      expect(await patientsIn('east')).toBe(UNITS.east);
    } finally {
      rmSync(hold, { recursive: true, force: true });
    }
  }, 120_000);

  it('shows a progress bar with rate and ETA in a terminal', async () => {
    const result = await cli.runInTerminal([
      'backfill',
      'start',
      '--type',
      'Patient',
      '--unit',
      'north',
      '--page-size',
      '5',
    ]);
    expect(result.code, result.stdout).toBe(0);
    // The bar (cli-progress, redrawn in place), the share, the rate and the time left.
    expect(result.stdout).toContain('\u2588');
    expect(result.stdout).toMatch(
      new RegExp(
        `backfill job \\d+ \\[[\\u2588\\u2591]+\\] 100% \\| ${ROWS}/${ROWS} scanned \\| [\\d.]+/s \\| ETA \\S+`,
      ),
    );
    // The expected total came from the last finished job over north: the ETA is known early.
    expect(result.stdout).toMatch(/\| ETA \d/);
    expect(result.stdout).not.toMatch(/^backfill job \d+: /m);
  }, 120_000);

  it('refuses to cancel without --yes when nobody can be asked, and cancels with it', async () => {
    const job = await store.createJob({
      kind: 'backfill',
      resourceType: 'Patient',
      unit: 'west',
      direction: 'to-medplum',
    });
    await store.setJobState(job.id, 'paused');
    const refused = await cli.run(['backfill', 'cancel', job.id]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect((await store.getJob(job.id))?.state).toBe('paused');

    const declined = await cli.runInTerminal(['backfill', 'cancel', job.id], {}, 'n\n');
    expect(declined.code, declined.stdout).toBe(1);
    expect(declined.stdout).toContain(`cancel backfill job ${job.id} (paused, Patient)? [y/N]`);
    expect((await store.getJob(job.id))?.state).toBe('paused');

    const cancelled = await cli.run(['backfill', 'cancel', job.id, '--yes', '--json']);
    expect(cancelled.code).toBe(0);
    expect(json<{ job: JobDoc }>(cancelled).job).toMatchObject({ id: job.id, state: 'cancelled' });
  }, 120_000);

  it('queues with --no-drain, and `dualwrite drain` applies what waits', async () => {
    const queued = await cli.run([
      'backfill',
      'start',
      '--type',
      'Patient',
      '--unit',
      'west',
      '--no-drain',
      '--json',
    ]);
    expect(queued.code, queued.stderr).toBe(0);
    expect(json<{ job: JobDoc }>(queued).job.state).toBe('done');
    expect((await store.outboxCounts()).pending).toBe(UNITS.west);
    expect(await patientsIn('west')).toBe(0);

    const drained = await cli.run(['drain', '--json']);
    expect(drained.code, drained.stderr).toBe(0);
    const { drain } = json<{ drain: { applied: number; remaining: { pending: number } } }>(drained);
    expect(drain.applied).toBe(UNITS.west);
    expect(drain.remaining.pending).toBe(0);
    expect(await patientsIn('west')).toBe(UNITS.west);
  }, 120_000);
});

describe('dualwrite reconcile', () => {
  it('compares a unit record by record as a process and reports the counts as JSON', async () => {
    const backfilled = await cli.run(['backfill', 'start', '--type', 'Patient', '--unit', 'north', '--json']);
    expect(backfilled.code, backfilled.stderr).toBe(0);
    const result = await cli.run(['reconcile', 'start', '--type', 'Patient', '--unit', 'north', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const { job } = json<{ job: JobDoc }>(result);
    // north is in dual-write: the legacy system is the reference.
    expect(job).toMatchObject({ kind: 'reconcile', state: 'done', unit: 'north' });
    expect(job.counts.agree).toBe(UNITS.north);
    const listed = await cli.run(['reconcile', 'status', '--json']);
    expect(json<{ jobs: JobDoc[] }>(listed).jobs.map((found) => found.id)).toContain(job.id);
  }, 120_000);

  it('pauses and cancels a job by id, as JSON, and refuses to pause a finished one', async () => {
    const job = await store.createJob({
      kind: 'reconcile',
      resourceType: 'Patient',
      unit: 'east',
      direction: 'to-medplum',
    });
    const paused = await cli.run(['reconcile', 'pause', job.id, '--json']);
    expect(paused.code, paused.stderr).toBe(0);
    expect(json<{ job: JobDoc }>(paused).job).toMatchObject({
      id: job.id,
      kind: 'reconcile',
      state: 'paused',
    });
    const cancelled = await cli.run(['reconcile', 'cancel', job.id, '--yes', '--json']);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(json<{ job: JobDoc }>(cancelled).job).toMatchObject({ id: job.id, state: 'cancelled' });
    const again = await cli.run(['reconcile', 'pause', job.id, '--json']);
    expect(again.code).toBe(2);
    expect(json<{ error: { name: string; field: string } }>(again).error).toMatchObject({
      name: 'InvalidInputError',
      field: 'id',
    });
    // A backfill's id is not a reconciliation's.
    const other = await cli.run(['backfill', 'pause', job.id, '--json']);
    expect(other.code).toBe(2);
    expect(json<{ error: { name: string; field: string } }>(other).error).toMatchObject({
      name: 'InvalidInputError',
      field: 'id',
    });
  }, 120_000);
});

describe('dualwrite usage', () => {
  it('exits 2 on a usage error, with a JSON error document under --json', async () => {
    const unknown = await cli.run(['backfill', 'start', '--json']);
    expect(unknown.code).toBe(2);
    expect(json<{ error: { name: string } }>(unknown).error.name).toBe('UsageError');
    const badNumber = await cli.run(['backfill', 'start', '--type', 'Patient', '--page-size', 'ten']);
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain('must be a positive integer');
    const noMapping = await cli.run(['backfill', 'start', '--type', 'Observation', '--json']);
    expect(noMapping.code).toBe(2);
    expect(json<{ error: { field: string } }>(noMapping).error.field).toBe('--type');
  }, 60_000);

  it('names the configuration at fault, and exits 2', async () => {
    const missing = await cli.run(['drain', '--config', 'nowhere.config.ts', '--json']);
    expect(missing.code).toBe(2);
    expect(json<{ error: { field: string } }>(missing).error.field).toBe('--config');
    writeFileSync(join(cli.project, 'broken.config.ts'), 'export default { plan: {} };\n');
    const broken = await cli.run(['drain', '--config', 'broken.config.ts']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('broken.config.ts: default export.store: must be a SyncStore');
    // A file that is not a module at all: its text is never quoted (a config file can hold secrets).
    writeFileSync(join(cli.project, 'not-a-module.config.ts'), 'root:x:0:0:Zyx Secret:/root:/bin/bash\n');
    const notModule = await cli.run(['drain', '--config', 'not-a-module.config.ts', '--json']);
    expect(notModule.code, notModule.stderr).toBe(2);
    expect(json<{ error: { field: string } }>(notModule).error.field).toBe('--config');
    expect(notModule.stdout + notModule.stderr).not.toContain('Zyx Secret');
    const system = await cli.run(['drain', '--config', '/etc/passwd']);
    expect(system.code, system.stderr).toBe(2);
    expect(system.stderr).toContain('--config');
  }, 60_000);
});
