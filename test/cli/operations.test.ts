import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresStore } from '../../src/index.ts';
import { json, openCliWorld, type CliBuild, type CliRun, type CliWorld } from './cli-harness.ts';

/**
 * The operator's commands as processes, on a journal seeded through the store's own calls: dead
 * letters with their reasons, a recorded conflict, the plan the configuration seeds (north in
 * `dual-write`, south in `live`, everyone else `legacy-only`).
 */
/** Values that must never reach the command's output. */
const NAMES = ['Ottoline', 'Quennell', 'Philippa', 'Brackenbury'];
let world: CliWorld;
let cli: CliBuild;
let store: PostgresStore;
const outputs: string[] = [];

/** Runs the command and keeps what it printed, for the PHI check at the end. */
async function dualwrite(...args: string[]): Promise<CliRun> {
  const result = await cli.run(args);
  outputs.push(result.stdout, result.stderr);
  return result;
}

beforeAll(async () => {
  world = await openCliWorld('cli_ops', [
    { clinic: 'north', first_name: NAMES[0]!, last_name: NAMES[1]! },
    { clinic: 'north', first_name: NAMES[2]!, last_name: NAMES[3]! },
  ]);
  cli = world.cli;
  store = await world.openJournal();
  const letter = (legacyId: string, name: string, status: number | undefined) =>
    store.openDeadLetter({
      resourceType: 'Patient',
      legacyId,
      target: 'medplum',
      unit: 'north',
      kind: 'upsert',
      reason: {
        name,
        message: `the mirror failed (${name})`,
        ...(status === undefined ? {} : { status }),
        side: 'medplum',
      },
    });
  await letter('1', 'RejectedError', 422);
  await letter('2', 'UnavailableError', 503);
  await letter('7', 'ReviewRequiredError', undefined);
  await store.appendEvent({
    type: 'conflict',
    resourceType: 'Patient',
    legacyId: '2',
    unit: 'north',
    data: {
      resolvedBy: 'three-way-merge',
      resolution: 'merged',
      stage: 'dual-write',
      target: 'medplum',
      changes: {
        legacy: [{ path: '/birthDate', kind: 'changed' }],
        medplum: [{ path: '/name/0/family', kind: 'changed' }],
      },
    },
  });
  await store.pauseUnit('east', { by: 'ops:maria', reason: 'legacy maintenance' });
}, 180_000);

afterAll(async () => {
  await world.close();
});

interface UnitDoc {
  unit: string;
  stages: Record<string, string>;
  paused: { since: string; by: string | null; reason: string | null } | null;
  dead: number;
  pending: number;
}

describe('dualwrite operator commands', () => {
  it('status: every unit with its stage and backlog, as JSON and as an aligned table', async () => {
    const result = await dualwrite('status', '--json');
    expect(result.code, result.stderr).toBe(0);
    const status = json<{ units: UnitDoc[]; totals: { dead: number }; plan: { revision: number } }>(result);
    const north = status.units.find((unit) => unit.unit === 'north');
    expect(north).toMatchObject({ stages: { Patient: 'dual-write' }, dead: 3, pending: 0 });
    expect(status.units.find((unit) => unit.unit === 'south')?.stages).toEqual({ Patient: 'live' });
    expect(status.totals.dead).toBe(3);
    expect(north?.paused).toBeNull();
    const [pause] = await store.unitPauses();
    expect(status.units.find((unit) => unit.unit === 'east')?.paused).toEqual({
      since: pause?.since,
      by: 'ops:maria',
      reason: 'legacy maintenance',
    });

    const table = await dualwrite('status');
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    const header = lines.findIndex((line) => line.startsWith('unit'));
    expect(lines[header]).toMatch(/^unit\s+stage\s+pending\s+waiting\s+leased\s+dead\s+oldest\s+paused$/);
    expect(table.stdout).toMatch(/^north\s+dual-write\s+0\s+0\s+0\s+3\s+-\s+-$/m);
    // A paused unit: how long in its line, since when, by whom and why below.
    expect(table.stdout).toMatch(/^east\s+legacy-only\s+0\s+0\s+0\s+0\s+-\s+\d[\dmshd ]*$/m);
    const pauses = lines.indexOf('paused units (mirroring held until resumed)');
    expect(lines[pauses + 1]).toMatch(/^unit\s+since\s+by\s+reason$/);
    expect(lines[pauses + 2]).toMatch(/^east\s+\S+Z\s+ops:maria\s+legacy maintenance$/);
    // Aligned: every column starts where its header does.
    const deadAt = lines[header]!.indexOf('dead') + 'dead'.length;
    const north2 = lines.find((line) => line.startsWith('north'))!;
    expect(north2.slice(deadAt - 1, deadAt)).toBe('3');
  }, 60_000);

  it('outbox: the backlog per unit, type and target', async () => {
    const result = await dualwrite('outbox', '--unit', 'north', '--json');
    expect(result.code, result.stderr).toBe(0);
    expect(json<{ lines: unknown[] }>(result).lines).toEqual([
      expect.objectContaining({
        unit: 'north',
        resourceType: 'Patient',
        target: 'medplum',
        dead: 3,
        oldestAgeMs: null,
      }),
    ]);
  }, 60_000);

  it('dead-letters: list with filters, show one, retry in bulk by reason', async () => {
    const all = await dualwrite('dead-letters', 'list', '--json');
    expect(all.code, all.stderr).toBe(0);
    const letters = json<{ deadLetters: { id: string; legacyId: string; reason: { name: string } }[] }>(
      all,
    ).deadLetters;
    expect(letters.map((letter) => letter.legacyId)).toEqual(['1', '2', '7']);
    const rejected = await dualwrite('dead-letters', 'list', '--reason', 'RejectedError', '--json');
    expect(
      json<{ deadLetters: { legacyId: string }[] }>(rejected).deadLetters.map((l) => l.legacyId),
    ).toEqual(['1']);
    const shown = await dualwrite('dead-letters', 'show', letters[0]!.id);
    expect(shown.stdout).toMatch(/^reason\s+RejectedError \(HTTP 422\)$/m);

    const retried = await dualwrite('dead-letters', 'retry', '--reason', 'UnavailableError', '--json');
    expect(retried.code, retried.stderr).toBe(0);
    expect(json<{ matched: number; done: string[] }>(retried)).toMatchObject({
      matched: 1,
      done: [letters[1]!.id],
    });
    expect(await store.outboxCounts()).toMatchObject({ pending: 1, dead: 2 });
    const missing = await dualwrite('dead-letters', 'show', '999999', '--json');
    expect(missing.code).toBe(1);
    expect(json<{ error: { name: string } }>(missing).error.name).toBe('DeadLetterNotFoundError');
    const neither = await dualwrite('dead-letters', 'retry');
    expect(neither.code).toBe(2);
  }, 60_000);

  it('dead-letters discard: refused without --yes off a terminal, done with it', async () => {
    const refused = await dualwrite(
      'dead-letters',
      'discard',
      '--reason',
      'RejectedError',
      '--note',
      'test data',
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      '--yes: is required to discard 1 open dead letters (reason RejectedError)',
    );
    expect((await store.outboxCounts()).dead).toBe(2);
    const done = await dualwrite(
      'dead-letters',
      'discard',
      '--reason',
      'RejectedError',
      '--note',
      'test data',
      '--yes',
      '--json',
    );
    expect(done.code, done.stderr).toBe(0);
    expect(json<{ done: string[] }>(done).done).toHaveLength(1);
    expect((await store.outboxCounts()).dead).toBe(1);
  }, 60_000);

  it('conflicts: the recent ones with the paths each side changed, and counts by resolver', async () => {
    const list = await dualwrite('conflicts', 'list', '--unit', 'north', '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(json<{ conflicts: unknown[] }>(list).conflicts).toEqual([
      expect.objectContaining({
        legacyId: '2',
        resolvedBy: 'three-way-merge',
        resolution: 'merged',
        changedPaths: { legacy: ['/birthDate'], medplum: ['/name/0/family'] },
      }),
    ]);
    const counts = await dualwrite('conflicts', 'counts', '--since', '1h', '--json');
    expect(json<{ byResolver: Record<string, number>; total: number }>(counts)).toMatchObject({
      byResolver: { 'three-way-merge': 1 },
      total: 1,
    });
  }, 60_000);

  it('readiness: exit status 3 for a unit that is not ready, 0 for one that is', async () => {
    const north = await dualwrite('readiness', 'north', '--json');
    expect(north.code, north.stderr).toBe(3);
    const verdict = json<{ verdict: string; failing: { gate: string }[] }>(north);
    expect(verdict.verdict).toBe('not-ready');
    expect(verdict.failing.map((gate) => gate.gate)).toContain('maxDeadLetters');
    const table = await dualwrite('readiness', 'north');
    expect(table.stdout).toMatch(/^maxDeadLetters\s+1\s+0\s+FAIL$/m);

    // east: legacy-only (mirrors nothing, so nothing to measure), known through its pause.
    const east = await dualwrite('readiness', 'east', '--json');
    expect(east.code, east.stderr).toBe(0);
    expect(json<{ verdict: string }>(east).verdict).toBe('ready');
  }, 60_000);

  it('readiness: a unit neither the plan nor the journal knows is a usage error (a typo is not "ready")', async () => {
    // `nrth` is a typo; `west` is a unit nobody has named yet (it is on the default stage, and
    // nothing was ever journaled for it): the command cannot tell them apart, and answering
    // `ready` (exit 0) or `not ready` (exit 3) would let a script act on a unit that is not there.
    for (const unit of ['nrth', 'west']) {
      const run = await dualwrite('readiness', unit, '--json');
      expect(run.code, run.stderr).toBe(2);
      expect(json<{ error: { name: string; field: string } }>(run).error).toMatchObject({
        name: 'UsageError',
        field: 'unit',
      });
      expect(run.stderr).toContain('is not a unit of the plan or the journal (units: east, north, south)');
      expect(run.stderr).toContain('dualwrite plan set');
    }
  }, 60_000);

  it('plan: show, a move asked for (refused without --yes), made, refused when it skips a stage, and its history', async () => {
    const shown = await dualwrite('plan', 'show', '--json');
    expect(shown.code, shown.stderr).toBe(0);
    expect(json<{ default: string; units: Record<string, unknown> }>(shown)).toMatchObject({
      default: 'legacy-only',
      units: { north: { default: 'dual-write' }, south: { default: 'live' } },
    });
    const refused = await dualwrite('plan', 'set', 'west', 'dual-write', '--reason', 'registration moved');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('move west from legacy-only to dual-write');
    const moved = await dualwrite(
      'plan',
      'set',
      'west',
      'dual-write',
      '--reason',
      'registration moved',
      '--by',
      'ops',
      '--yes',
      '--json',
    );
    expect(moved.code, moved.stderr).toBe(0);
    expect(json<{ from: string; to: string }>(moved)).toMatchObject({
      unit: 'west',
      from: 'legacy-only',
      to: 'dual-write',
    });
    const skipping = await dualwrite('plan', 'set', 'west', 'live', '--yes', '--json');
    expect(skipping.code).toBe(1);
    expect(json<{ error: { name: string } }>(skipping).error.name).toBe('StageChangeRefusedError');
    const badStage = await dualwrite('plan', 'set', 'west', 'sideways', '--yes');
    expect(badStage.code).toBe(2);

    const history = await dualwrite('plan', 'history', '--unit', 'west', '--json');
    expect(json<{ changes: unknown[] }>(history).changes).toEqual([
      expect.objectContaining({
        unit: 'west',
        from: 'legacy-only',
        to: 'dual-write',
        reason: 'registration moved',
        by: 'ops',
      }),
    ]);
    const status = await dualwrite('status', '--unit', 'west', '--json');
    expect(json<{ units: UnitDoc[] }>(status).units).toEqual([
      expect.objectContaining({ unit: 'west', stages: { Patient: 'dual-write' } }),
    ]);
    // Named by the plan now: measured (mirroring, with no mirror yet, so not ready).
    const readiness = await dualwrite('readiness', 'west', '--json');
    expect(readiness.code, readiness.stderr).toBe(3);
    expect(json<{ verdict: string }>(readiness).verdict).toBe('unknown');
  }, 60_000);

  it('dead-letters resolve: writes the winner’s record to the other side and closes the letter (after confirming)', async () => {
    // A review of record 1, which the legacy table holds and Medplum does not yet.
    const letter = await store.openDeadLetter({
      resourceType: 'Patient',
      legacyId: '1',
      target: 'medplum',
      unit: 'north',
      kind: 'upsert',
      reason: { name: 'ReviewRequiredError', message: 'both systems changed the record' },
    });
    const refused = await dualwrite('dead-letters', 'resolve', letter.id, '--winner', 'legacy');
    expect(refused.code).toBe(2);
    const resolved = await dualwrite(
      'dead-letters',
      'resolve',
      letter.id,
      '--winner',
      'legacy',
      '--note',
      'legacy confirmed',
      '--yes',
      '--json',
    );
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(json<{ done: string[] }>(resolved).done).toEqual([letter.id]);
    expect(await store.getDeadLetter(letter.id)).toMatchObject({
      status: 'resolved',
      resolution: 'legacy',
      note: 'legacy confirmed',
    });
    const link = await store.getLink('Patient', '1');
    expect(link?.medplumId).toBeDefined();
    // Listed and shown as resolved (legacy won), not as discarded.
    const listed = await dualwrite('dead-letters', 'list', '--status', 'resolved', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(json<{ deadLetters: unknown[] }>(listed).deadLetters).toEqual([
      expect.objectContaining({ id: letter.id, status: 'resolved', resolution: 'legacy' }),
    ]);
    const discarded = await dualwrite('dead-letters', 'list', '--status', 'discarded', '--json');
    expect(json<{ deadLetters: { id: string }[] }>(discarded).deadLetters.map((l) => l.id)).not.toContain(
      letter.id,
    );
    const table = await dualwrite('dead-letters', 'list', '--status', 'all');
    expect(table.stdout).toMatch(
      new RegExp(
        `^\\s*${letter.id}\\s+Patient\\s+1\\s+north\\s+medplum\\s+upsert\\s+\\d+\\s+resolved\\s`,
        'm',
      ),
    );
    const shown = await dualwrite('dead-letters', 'show', letter.id);
    expect(shown.stdout).toMatch(/^status\s+resolved \(legacy won\) at \S+Z$/m);
  }, 60_000);

  it('pause and resume: a unit’s mirroring held on every instance (after confirming), and let go', async () => {
    const refused = await dualwrite('pause', 'south', '--reason', 'legacy upgrade');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect(await store.unitPauses()).toHaveLength(1); // east only
    const paused = await dualwrite(
      'pause',
      'south',
      '--reason',
      'legacy upgrade',
      '--by',
      'ops:ana',
      '--yes',
      '--json',
    );
    expect(paused.code, paused.stderr).toBe(0);
    expect(json<{ unit: string; paused: { by: string; reason: string } }>(paused)).toMatchObject({
      unit: 'south',
      paused: { unit: 'south', by: 'ops:ana', reason: 'legacy upgrade' },
    });
    const status = await dualwrite('status', '--json');
    expect(
      json<{ units: UnitDoc[] }>(status).units.find((unit) => unit.unit === 'south')?.paused,
    ).toMatchObject({
      by: 'ops:ana',
      reason: 'legacy upgrade',
    });
    const typo = await dualwrite('pause', 'suoth', '--yes', '--json');
    expect(typo.code).toBe(2);
    expect(json<{ error: { field: string } }>(typo).error.field).toBe('unit');
    const resumed = await dualwrite('resume', 'south', '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(json<{ resumed: boolean }>(resumed).resumed).toBe(true);
    expect((await store.unitPauses()).map((pause) => pause.unit)).toEqual(['east']);
    const again = await dualwrite('resume', 'south');
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('south: was not paused\n');
  }, 60_000);

  it('never prints a field value', () => {
    const printed = outputs.join('\n');
    expect(printed.length).toBeGreaterThan(0);
    for (const name of NAMES) expect(printed).not.toContain(name);
  });
});
