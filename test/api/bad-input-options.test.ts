import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  CutoverPlan,
  DualWriter,
  InvalidInputError,
  MemoryStore,
  auditEventSink,
  byResourceType,
  callbackSink,
  compareCopies,
  contentHash,
  createMedplumClient,
  diff,
  legacyWins,
  loggerSink,
  manualReview,
  mergeThreeWay,
  normalise,
  redactEvent,
  routeOf,
  threeWayMerge,
  valueHash,
  type DualWriterOptions,
  type EventLogger,
  type RestHookRequest,
  type Side,
  type Stage,
} from '../../src/index.ts';
import { checkOptions, kindOf, nonEmptyString, refuseUnknownKeys } from '../../src/option-checks.ts';
import { ChangeFeeds } from '../../src/feeds/change-feeds.ts';
import type { ChangeFeedsDeps } from '../../src/feeds/inbound-change.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';

interface Ctx {
  unit: string;
}

/** What a call threw, synchronously. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

/** A ConfigurationError naming `field`, whose message matches `message`. */
function configurationError(field: string, message?: RegExp) {
  return expect.objectContaining({
    name: 'ConfigurationError',
    field,
    ...(message === undefined ? {} : { message: expect.stringMatching(message) as unknown }),
  }) as unknown;
}

/** An InvalidInputError naming `field`, whose message matches `message`. */
function invalidInput(field: string, message?: RegExp) {
  return expect.objectContaining({
    name: 'InvalidInputError',
    field,
    ...(message === undefined ? {} : { message: expect.stringMatching(message) as unknown }),
  }) as unknown;
}

const logger: EventLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined };
const medplum = createMedplumClient({ baseUrl: 'http://127.0.0.1:1/' });
const patient: Patient = { resourceType: 'Patient', gender: 'female' };

function plan(stage: Stage = 'dual-write'): CutoverPlan<Ctx> {
  return new CutoverPlan<Ctx>({ default: stage, unitOf: (ctx) => ctx.unit });
}

function options(overrides: Partial<DualWriterOptions<Ctx, PatientRow>> = {}) {
  return {
    legacy: new MemoryLegacyAdapter<PatientRow>(),
    medplum,
    mappings: [patientMapping],
    plan: plan(),
    ...overrides,
  };
}

/** A writer whose Medplum is unreachable: enough for calls refused before any I/O. */
function writer(overrides: Partial<DualWriterOptions<Ctx, PatientRow>> = {}): DualWriter<Ctx, PatientRow> {
  return new DualWriter<Ctx, PatientRow>(options(overrides));
}

function feeds(): ChangeFeeds<PatientRow> {
  return new ChangeFeeds<PatientRow>(feedsDeps());
}

describe('null options are a typed error naming the parameter, not a TypeError', () => {
  it('sink factories', () => {
    expect(thrown(() => loggerSink(logger, null as never))).toEqual(
      configurationError('options', /must be an object/),
    );
    expect(thrown(() => callbackSink(() => undefined, null as never))).toEqual(configurationError('options'));
    expect(thrown(() => auditEventSink(medplum, null as never))).toEqual(configurationError('options'));
  });

  it('resolver factories', () => {
    expect(thrown(() => threeWayMerge(null as never))).toEqual(configurationError('options'));
    expect(thrown(() => manualReview(null as never))).toEqual(configurationError('options'));
    expect(thrown(() => byResourceType(null as never))).toEqual(
      configurationError('resolvers', /must be an object/),
    );
  });

  it('mergeThreeWay', () => {
    expect(thrown(() => mergeThreeWay(patient, patient, patient, null as never))).toEqual(
      configurationError('options'),
    );
    const policy = { onCollision: 'ours' } as const;
    expect(thrown(() => mergeThreeWay(patient, null as never, patient, policy))).toEqual(
      invalidInput('ours'),
    );
    expect(thrown(() => mergeThreeWay(patient, patient, null as never, policy))).toEqual(
      invalidInput('theirs'),
    );
    expect(thrown(() => mergeThreeWay(null as never, patient, patient, policy))).toEqual(
      invalidInput('base'),
    );
  });

  it('normalise, diff and contentHash', () => {
    expect(thrown(() => normalise(patient, null as never))).toEqual(configurationError('options'));
    expect(thrown(() => diff(patient, patient, null as never))).toEqual(configurationError('options'));
    expect(thrown(() => contentHash(patient, null as never))).toEqual(configurationError('options'));
  });

  it('the cutover plan: its constructor, attach and history', async () => {
    expect(thrown(() => new CutoverPlan(null as never))).toEqual(configurationError('plan'));
    await expect(plan().attach(new MemoryStore(), null as never)).rejects.toEqual(
      configurationError('options'),
    );
    await expect(plan().history(null as never)).rejects.toEqual(invalidInput('options', /got null/));
  });

  it('handleRestHook without a request, or with one lacking headers or a raw body', async () => {
    const hook = feeds();
    await expect(hook.handleRestHook(undefined as never)).rejects.toEqual(invalidInput('request'));
    await expect(hook.handleRestHook({} as never)).rejects.toEqual(invalidInput('request.headers'));
    await expect(hook.handleRestHook({ headers: {}, body: {} } as never)).rejects.toEqual(
      invalidInput('request.body', /raw body as signed \(a string or a Buffer\)/),
    );
    // The body as express.raw() gives it: bytes, not text.
    await expect(hook.handleRestHook({ headers: {}, body: Buffer.from('{}') })).resolves.toBeDefined();
  });

  it("the writer's readiness, drain, deadLetters and outbox", async () => {
    const w = writer();
    await expect(w.readiness('north', null as never)).rejects.toEqual(invalidInput('options', /got null/));
    await expect(w.drain(null as never)).rejects.toEqual(invalidInput('options'));
    await expect(w.deadLetters(null as never)).rejects.toEqual(invalidInput('filter'));
    await expect(w.outbox(null as never)).rejects.toEqual(invalidInput('filter'));
  });

  it('the writer option retry: null (or a string)', () => {
    expect(thrown(() => writer({ retry: null as never }))).toEqual(
      configurationError('retry', /must be an object/),
    );
    expect(thrown(() => writer({ retry: 'fast' as never }))).toEqual(configurationError('retry'));
  });
});

describe('CutoverPlan.set, history and options', () => {
  it('refuses an unknown option, naming it and the known ones, and moves nothing', async () => {
    const p = plan();
    const error = await p
      .set('north', 'shadow', { resorceType: 'Patient' } as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toEqual(
      invalidInput('resorceType', /is not an option \(options: resourceType, reason, by, force\)/),
    );
    expect(p.stageOf('north', 'Patient')).toBe('dual-write');
    expect(p.stageOf('north', 'Observation')).toBe('dual-write');
  });

  it('refuses a resourceType that is not a FHIR resource type name, never quoting it', async () => {
    const p = plan();
    await expect(p.set('north', 'shadow', { resourceType: 'patient' })).rejects.toEqual(
      invalidInput('resourceType', /FHIR resource type.*got a string$/),
    );
    await expect(p.set('north', 'shadow', { resourceType: 'Patient/1' })).rejects.toEqual(
      invalidInput('resourceType'),
    );
    expect(p.stageOf('north', 'patient')).toBe('dual-write');
  });

  it('refuses unit names over 200 characters and reasons over 1000, naming the field, and stores nothing', async () => {
    const store = new MemoryStore();
    const p = plan();
    await p.attach(store, { refreshMs: 60_000 });
    const long = (n: number) => 'x'.repeat(n);
    await expect(p.set(long(201), 'shadow')).rejects.toEqual(invalidInput('unit', /at most 200 characters/));
    await expect(p.set('north', 'shadow', { reason: long(1001) })).rejects.toEqual(
      invalidInput('reason', /at most 1000 characters/),
    );
    await expect(p.set('north', 'shadow', { by: long(201) })).rejects.toEqual(invalidInput('by'));
    expect(() => p.unitOf({ unit: long(201) })).toThrow(/at most 200 characters/);
    expect(await p.history()).toEqual([]);
    const w = writer();
    await expect(w.discardDeadLetter('1', long(1001))).rejects.toEqual(invalidInput('note'));
    // The longest allowed are taken.
    await expect(p.set(long(200), 'shadow', { reason: long(1000), force: true })).resolves.toMatchObject({
      to: 'shadow',
    });
  });

  it('history checks limit (a positive integer) and unit', async () => {
    const p = plan();
    for (const limit of [0, -1, 1.5, Number.NaN, '10']) {
      await expect(p.history({ limit: limit as never })).rejects.toEqual(
        invalidInput('limit', /must be a positive integer/),
      );
    }
    await expect(p.history({ unit: '' })).rejects.toEqual(invalidInput('unit'));
    await expect(p.history({ units: 'north' } as never)).rejects.toEqual(invalidInput('units'));
  });

  it('valid options behave as before', async () => {
    const store = new MemoryStore();
    const p = plan();
    await p.attach(store, { refreshMs: 60_000 });
    const change = await p.set('north', 'shadow', {
      resourceType: 'Patient',
      reason: 'gates green',
      by: 'ops',
      force: true,
    });
    expect(change).toMatchObject({
      unit: 'north',
      resourceType: 'Patient',
      from: 'dual-write',
      to: 'shadow',
    });
    expect(await p.history({ unit: 'north', limit: 5 })).toMatchObject([{ to: 'shadow', by: 'ops' }]);
    expect(await p.history()).toHaveLength(1);
    p.detach();
  });

  it('the plan refuses unknown options, bad units and lower-case resource types at construction', () => {
    const unitOf = (ctx: Ctx) => ctx.unit;
    expect(
      thrown(() => new CutoverPlan<Ctx>({ default: 'live', unitOf, unit: { north: 'live' } } as never)),
    ).toEqual(configurationError('plan.unit', /is not an option \(options: default, units, unitOf\)/));
    expect(thrown(() => new CutoverPlan<Ctx>({ default: 'live', unitOf, units: null as never }))).toEqual(
      configurationError('plan.units'),
    );
    expect(
      thrown(() => new CutoverPlan<Ctx>({ default: 'live', unitOf, units: { north: null as never } })),
    ).toEqual(configurationError('plan.units.north'));
    expect(
      thrown(
        () =>
          new CutoverPlan<Ctx>({ default: 'live', unitOf, units: { north: { default: 'shadow' } as never } }),
      ),
    ).toEqual(configurationError('plan.units.north.resourceTypes'));
    expect(
      thrown(
        () =>
          new CutoverPlan<Ctx>({
            default: 'live',
            unitOf,
            units: { north: { resourceTypes: { patient: 'shadow' } } },
          }),
      ),
    ).toEqual(configurationError('plan.units.north.resourceTypes.patient', /FHIR resource type/));
  });

  it('useReadiness takes a function; routeOf refuses a name that is not a stage', () => {
    expect(thrown(() => plan().useReadiness('yes' as never))).toEqual(configurationError('readiness'));
    expect(thrown(() => routeOf('John Smith' as never))).toEqual(
      invalidInput('stage', /must be one of legacy-only, .*medplum-only$/),
    );
  });
});

describe('factory and helper arguments', () => {
  it('byResourceType refuses keys that are not resource type names, and a fallback that is not a function', () => {
    expect(thrown(() => byResourceType({ patient: legacyWins } as never))).toEqual(
      configurationError('resolvers.patient', /FHIR resource type/),
    );
    expect(thrown(() => byResourceType({ Patient: legacyWins }, 'authority' as never))).toEqual(
      configurationError('fallback'),
    );
    const resolver = byResourceType({ Patient: legacyWins });
    expect(typeof resolver).toBe('function');
  });

  it('manualReview refuses task: "yes"; threeWayMerge refuses a misspelt option', () => {
    expect(thrown(() => manualReview({ task: 'yes' } as never))).toEqual(
      configurationError('task', /must be true or false/),
    );
    expect(thrown(() => threeWayMerge({ onColision: 'manual' } as never))).toEqual(
      configurationError('onColision', /is not an option \(options: onCollision\)/),
    );
    expect(typeof manualReview({ task: true })).toBe('function');
  });

  it('auditEventSink refuses unknown event types and options', () => {
    expect(thrown(() => auditEventSink(medplum, { types: ['conflict', 'nope'] as never }))).toEqual(
      configurationError('types[1]', /must be 'conflict'/),
    );
    expect(thrown(() => auditEventSink(medplum, { onError: 'log' as never }))).toEqual(
      configurationError('onError'),
    );
    expect(thrown(() => auditEventSink(medplum, { type: ['conflict'] } as never))).toEqual(
      configurationError('type'),
    );
    expect(auditEventSink(medplum, { types: ['conflict'], revealValues: false }).revealValues).toBe(false);
  });

  it('sinks refuse a revealValues that is not a boolean, and misspelt options', () => {
    expect(thrown(() => loggerSink(logger, { revealValues: 'true' as never }))).toEqual(
      configurationError('revealValues'),
    );
    expect(thrown(() => callbackSink(() => undefined, { revealValue: true } as never))).toEqual(
      configurationError('revealValue'),
    );
    expect(loggerSink(logger, { revealValues: true }).revealValues).toBe(true);
  });

  it('compareCopies refuses an authority that is not a side, and an empty legacy id', () => {
    expect(thrown(() => compareCopies(patientMapping, 'p-1', undefined, patient, 'Legacy' as Side))).toEqual(
      invalidInput('authority', /must be 'legacy' or 'medplum', got a string$/),
    );
    expect(thrown(() => compareCopies(patientMapping, '', undefined, patient, 'legacy'))).toEqual(
      invalidInput('legacyId'),
    );
  });

  it('valueHash, diff and redactEvent name the option at fault', () => {
    expect(thrown(() => valueHash('x', { secret: 'k' } as never))).toEqual(configurationError('secret'));
    // The mistyped secret is never echoed.
    expect((thrown(() => valueHash('x', { secret: 'hunter2' } as never)) as Error).message).not.toContain(
      'hunter2',
    );
    expect(thrown(() => valueHash('x', null as never))).toEqual(configurationError('options', /got null/));
    expect(thrown(() => diff(patient, patient, { hashValues: 'yes' } as never))).toEqual(
      configurationError('hashValues'),
    );
    expect(thrown(() => redactEvent({ type: 'retry' } as never, undefined as never))).toEqual(
      invalidInput('redaction'),
    );
  });

  it('ChangeFeeds refuses missing dependencies and misspelt options', () => {
    expect(thrown(() => new ChangeFeeds(null as never))).toEqual(configurationError('deps'));
    expect(thrown(() => new ChangeFeeds({ ...feedsDeps(), unitOf: undefined } as never))).toEqual(
      configurationError('deps.unitOf'),
    );
    expect(thrown(() => new ChangeFeeds(feedsDeps(), { pageSise: 10 } as never))).toEqual(
      configurationError('pageSise', /is not an option/),
    );
  });

  it('a valid rest-hook request is handled as before', async () => {
    const request: RestHookRequest = { headers: {}, body: '{}' };
    await expect(feeds().handleRestHook(request)).resolves.toEqual({ status: 'ignored' });
  });
});

function feedsDeps(): ChangeFeedsDeps<PatientRow> {
  return {
    legacy: new MemoryLegacyAdapter<PatientRow>(),
    medplum: new MedplumSide(medplum),
    store: new MemoryStore(),
    mappings: new Map([['Patient', patientMapping]]),
    routeOf: (unit, type) => plan().routeOf(unit, type),
    unitOf: () => 'north',
    notify: () => undefined,
  };
}

describe('the writer', () => {
  it('a job refuses a pageSize over 1000, naming it without quoting it', async () => {
    for (const pageSize of [1e9, 1001]) {
      const refused = await writer()
        .backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum', pageSize })
        .catch((err: unknown) => err);
      expect(refused).toEqual(invalidInput('pageSize', /from 1 to 1000/));
      expect((refused as Error).message).not.toContain(String(pageSize));
    }
  });

  it('a legacy adapter refuses a limit that is not a positive integer without quoting it', async () => {
    const legacy = new MemoryLegacyAdapter<PatientRow>();
    const refused = await legacy.scan('Patient', { limit: -7.25 }).catch((err: unknown) => err);
    expect(refused).toEqual(invalidInput('limit', /must be a positive integer/));
    expect((refused as Error).message).not.toContain('7.25');
  });

  it('linkOf refuses empty strings', async () => {
    await expect(writer().linkOf('', '')).rejects.toEqual(invalidInput('resourceType'));
    await expect(writer().linkOf('Patient', '')).rejects.toEqual(invalidInput('legacyId', /empty string/));
    await expect(writer().linkOf('Patient', 'p-1')).resolves.toBeUndefined();
  });

  it('async calls reject rather than throw: discardDeadLetter, pollFeeds, handleRestHook', async () => {
    const w = writer();
    let pending: Promise<unknown> | undefined;
    expect(() => (pending = w.discardDeadLetter('', 'a note'))).not.toThrow();
    await expect(pending).rejects.toEqual(invalidInput('id'));
    expect(() => (pending = w.discardDeadLetter('42', ' '))).not.toThrow();
    await expect(pending).rejects.toEqual(invalidInput('note'));
    expect(() => (pending = w.pollFeeds())).not.toThrow();
    await expect(pending).rejects.toEqual(configurationError('feeds'));
    expect(() => (pending = w.handleRestHook({ headers: {}, body: '{}' }))).not.toThrow();
    await expect(pending).rejects.toEqual(configurationError('feeds'));
  });

  it('call options: unknown keys and wrong types are refused, naming them', async () => {
    const w = writer();
    const row = { first_name: 'Ada', last_name: 'Lovelace' };
    await expect(
      w.update('Patient', 'p-1', row, { unit: 'north' }, { expectedVersoin: '3' } as never),
    ).rejects.toEqual(invalidInput('expectedVersoin', /is not an option \(options: expectedVersion\)/));
    await expect(
      w.update('Patient', 'p-1', row, { unit: 'north' }, { expectedVersion: 3 as never }),
    ).rejects.toEqual(invalidInput('expectedVersion', /got a number$/));
    await expect(
      w.updateResource({ resourceType: 'Patient', id: 'x' }, { unit: 'north' }, null as never),
    ).rejects.toEqual(invalidInput('options'));
    await expect(w.deadLetters({ status: 'Open' as never })).rejects.toEqual(
      invalidInput('status', /or 'all', got a string$/),
    );
    await expect(w.deadLetters({ statuses: 'all' } as never)).rejects.toEqual(invalidInput('statuses'));
    await expect(w.drain({ timeout: 5 } as never)).rejects.toEqual(invalidInput('timeout'));
    await expect(w.readiness('north', { windowMs: -1 })).rejects.toEqual(
      invalidInput('windowMs', /got a number$/),
    );
    expect(await w.deadLetters({ status: 'all', limit: 10 })).toEqual([]);
    // Checked options are answered: a unit that mirrors with no evidence yet is unknown.
    expect((await w.readiness('north', { windowMs: 1000 })).verdict).toBe('unknown');
  });

  it('nested writer options refuse misspelt keys', () => {
    expect(thrown(() => writer({ divergence: { verifySample: 1 } as never }))).toEqual(
      configurationError('divergence.verifySample'),
    );
    expect(thrown(() => writer({ divergence: { shadowReads: null as never } }))).toEqual(
      configurationError('divergence.shadowReads'),
    );
    expect(thrown(() => writer({ readiness: { window: 1000 } as never }))).toEqual(
      configurationError('readiness.window'),
    );
    expect(thrown(() => writer({ feeds: { unitOf: () => 'north', pollInterval: 10 } as never }))).toEqual(
      configurationError('feeds.pollInterval', /options: unitOf, pollIntervalMs/),
    );
    expect(writer({ feeds: { unitOf: () => 'north', pollIntervalMs: 10 } }).feedCounts()).toMatchObject({
      seen: 0,
    });
  });
});

describe('option checks', () => {
  it('refuse every unknown key at once, and describe values without echoing strings', () => {
    expect(() => {
      refuseUnknownKeys({ a: 1, b: 2, c: 3 }, 'input', ['a']);
    }).toThrow(/^b: is not an option, nor c \(options: a\)$/);
    expect(() => checkOptions([], 'options', 'input', { a: nonEmptyString })).toThrow(
      /^options: must be an object such as \{ a \}, got an array$/,
    );
    expect(() => checkOptions({ a: ' ' }, 'options', 'configuration', { a: nonEmptyString })).toThrow(
      ConfigurationError,
    );
    expect([kindOf(''), kindOf('PHI'), kindOf(Number.NaN), kindOf(null), kindOf(() => 1)]).toEqual([
      'an empty string',
      'a string',
      'NaN',
      'null',
      'a function',
    ]);
  });
});

describe('refusals never echo what could be a secret or PHI', () => {
  const secret = 'hmac-k3y-0123';

  it('a key passed where its options belong, or a secret of the wrong shape', () => {
    for (const attempt of [
      () => diff({ a: 1 }, { a: 2 }, { hashValues: secret as never }),
      () => writer({ valueHash: secret as never }),
      () => writer({ valueHash: { key: secret, salt: secret } as never }),
    ]) {
      const error = thrown(attempt);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).not.toContain(secret);
    }
  });

  it('names and numbers passed where a type, a stage or a version belongs', async () => {
    const w = writer();
    const attempts: (() => unknown)[] = [
      () => routeOf('John Smith' as never),
      () => w.create('John Smith', { id: 'p1', first_name: 'A', last_name: 'B' }, { unit: 'north' }),
      () =>
        w.update(
          'Patient',
          'p1',
          { id: 'p1' } as PatientRow,
          { unit: 'north' },
          { expectedVersion: 19800506 as never },
        ),
      () => w.linkOf('John Smith', 'p1'),
    ];
    for (const attempt of attempts) {
      const error = await Promise.resolve()
        .then(attempt)
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).message).not.toMatch(/John Smith|19800506/);
    }
  });

  it('a link cache size past what an integer holds is refused at construction', () => {
    expect(thrown(() => writer({ linkCacheSize: 2 ** 53 }))).toEqual(configurationError('linkCacheSize'));
  });
});
