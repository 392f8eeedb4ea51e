import { describe, expect, it, vi } from 'vitest';
import {
  ConfigurationError,
  CutoverPlan,
  DEFAULT_GATES,
  InvalidInputError,
  MemoryStore,
  routeOf,
  StageChangeRefusedError,
  STAGES,
} from '../../src/index.ts';

interface Ctx {
  clinic: string;
}
const unitOf = (ctx: Ctx): string => ctx.clinic;

describe('CutoverPlan', () => {
  it('gives unlisted units the default stage', () => {
    const plan = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    expect(plan.stageOf('anywhere', 'Patient')).toBe('dual-write');
  });

  it('prefers a resource-type stage over the unit default over the plan default', () => {
    const plan = new CutoverPlan<Ctx>({
      default: 'legacy-only',
      units: { north: { default: 'shadow', resourceTypes: { Observation: 'dual-write' } }, south: 'live' },
      unitOf,
    });
    expect(plan.stageOf('north', 'Observation')).toBe('dual-write');
    expect(plan.stageOf('north', 'Patient')).toBe('shadow');
    expect(plan.stageOf('south', 'Patient')).toBe('live');
    expect(plan.stageOf('east', 'Patient')).toBe('legacy-only');
  });

  it('changes a stage at run time, one stage forward at a time', async () => {
    const plan = new CutoverPlan<Ctx>({ default: 'shadow', unitOf });
    const change = await plan.set('north', 'live', { reason: 'gates green', by: 'ops:maria' });
    expect(change).toMatchObject({
      unit: 'north',
      from: 'shadow',
      to: 'live',
      forced: false,
      by: 'ops:maria',
    });
    expect(plan.routeOf('north', 'Patient')).toMatchObject({
      stage: 'live',
      authority: 'medplum',
      mirrorTo: 'legacy',
    });
    await plan.set('north', 'shadow', { resourceType: 'Patient' });
    expect(plan.stageOf('north', 'Patient')).toBe('shadow');
    expect(plan.stageOf('north', 'Encounter')).toBe('live');
  });

  it('refuses to move forward more than one stage at once unless forced; stepping back is always allowed', async () => {
    const plan = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    await expect(plan.set('north', 'live')).rejects.toMatchObject({
      name: 'StageChangeRefusedError',
      from: 'dual-write',
      to: 'live',
      message: expect.stringMatching(/next is shadow/) as string,
    });
    expect(plan.stageOf('north', 'Patient')).toBe('dual-write');
    expect(await plan.set('north', 'live', { force: true })).toMatchObject({ forced: true });
    expect(await plan.set('north', 'legacy-only')).toMatchObject({
      from: 'live',
      to: 'legacy-only',
      forced: false,
    });
    expect(plan.stageOf('north', 'Patient')).toBe('legacy-only');
  });

  it('refuses a forward move while the unit fails its readiness gates, unless forced', async () => {
    const plan = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    const failing = [{ gate: 'maxConflicts' as const, value: 12, limit: 10 }];
    plan.useReadiness((unit) =>
      Promise.resolve({
        unit,
        window: { from: '', to: '' },
        figures: {
          mirrorLagMs: { p50: 1, p95: 2, samples: 3 },
          conflicts: 12,
          comparisons: 3,
          divergence: 0,
          deadLetters: 0,
          pending: 0,
        },
        gates: DEFAULT_GATES,
        plan: { revision: undefined, stale: false },
        unknown: [],
        verdict: unit === 'north' ? ('not-ready' as const) : ('ready' as const),
        failing: unit === 'north' ? failing : [],
      }),
    );
    const refused = await plan.set('north', 'shadow').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(StageChangeRefusedError);
    expect((refused as StageChangeRefusedError).readiness?.failing).toEqual(failing);
    expect(await plan.set('south', 'shadow')).toMatchObject({ to: 'shadow' });
    expect(await plan.set('north', 'shadow', { force: true })).toMatchObject({ forced: true });
    // Back is always allowed, ready or not.
    expect(await plan.set('north', 'dual-write')).toMatchObject({ to: 'dual-write' });
  });

  it('is shared through a store: another instance picks a change up on refresh, and changes are recorded', async () => {
    const store = new MemoryStore();
    const a = new CutoverPlan<Ctx>({ default: 'legacy-only', units: { north: 'dual-write' }, unitOf });
    const b = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    await a.attach(store, { refreshMs: 60_000 });
    await b.attach(store, { refreshMs: 60_000 });
    try {
      // The first attached plan was stored; the second took it over.
      expect(b.stageOf('north', 'Patient')).toBe('dual-write');
      await a.set('north', 'shadow', { reason: 'clean for two weeks', by: 'ops:maria' });
      expect(b.stageOf('north', 'Patient')).toBe('dual-write');
      await b.refresh();
      expect(b.stageOf('north', 'Patient')).toBe('shadow');
      await b.set('north', 'dual-write', { reason: 'divergence', by: 'ops:li' });
      await a.refresh();
      expect(a.stageOf('north', 'Patient')).toBe('dual-write');
      expect(await a.history({ unit: 'north' })).toMatchObject([
        { from: 'shadow', to: 'dual-write', reason: 'divergence', by: 'ops:li' },
        { from: 'dual-write', to: 'shadow', reason: 'clean for two weeks', by: 'ops:maria' },
      ]);
      // Another unit's newer changes do not crowd a unit's history out of its limit.
      await a.set('south', 'dual-write', { reason: 'pilot', by: 'ops:li' });
      expect(await a.history({ unit: 'north', limit: 1 })).toMatchObject([
        { unit: 'north', to: 'dual-write' },
      ]);
    } finally {
      a.detach();
      b.detach();
    }
  });

  it('keeps units named like what every object inherits (__proto__, toString, constructor) as units like any other', async () => {
    const store = new MemoryStore();
    const a = new CutoverPlan<Ctx>({
      default: 'legacy-only',
      units: { toString: 'dual-write' as const },
      unitOf,
    });
    const b = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    await a.attach(store, { refreshMs: 60_000 });
    await b.attach(store, { refreshMs: 60_000 });
    try {
      await a.set('__proto__', 'dual-write', { resourceType: 'Patient' });
      await b.refresh();
      for (const plan of [a, b]) {
        expect(plan.stageOf('__proto__', 'Patient')).toBe('dual-write');
        expect(plan.stageOf('__proto__', 'Observation')).toBe('legacy-only');
        expect(plan.stageOf('toString', 'Patient')).toBe('dual-write');
        expect(plan.stageOf('constructor', 'Patient')).toBe('legacy-only');
        expect(Object.keys(plan.toJSON().units).sort()).toEqual(['__proto__', 'toString']);
        expect(Object.hasOwn(plan.toJSON().units, 'constructor')).toBe(false);
      }
      expect(await b.history({ unit: '__proto__' })).toMatchObject([{ unit: '__proto__', to: 'dual-write' }]);
    } finally {
      a.detach();
      b.detach();
    }
  });

  it('picks up a stored change by itself within its refresh interval', async () => {
    const store = new MemoryStore();
    const a = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    const b = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    await a.attach(store, { refreshMs: 20 });
    await b.attach(store, { refreshMs: 20 });
    try {
      await a.set('north', 'shadow');
      await vi.waitFor(() => expect(b.stageOf('north', 'Patient')).toBe('shadow'), { timeout: 2_000 });
    } finally {
      a.detach();
      b.detach();
    }
  });

  it('routes each stage as the stage table says', () => {
    expect(
      STAGES.map((stage) => [
        stage,
        routeOf(stage).authority,
        routeOf(stage).mirrorTo,
        routeOf(stage).readFrom,
      ]),
    ).toEqual([
      ['legacy-only', 'legacy', undefined, 'legacy'],
      ['dual-write', 'legacy', 'medplum', 'legacy'],
      ['shadow', 'legacy', 'medplum', 'legacy'],
      ['live', 'medplum', 'legacy', 'medplum'],
      ['rampdown', 'medplum', 'legacy', 'medplum'],
      ['medplum-only', 'medplum', undefined, 'medplum'],
    ]);
  });

  it('rejects an unknown stage name at construction, naming the option', () => {
    expect(() => new CutoverPlan<Ctx>({ default: 'dual_write' as never, unitOf })).toThrow(
      expect.objectContaining({ name: 'ConfigurationError', field: 'plan.default' }) as Error,
    );
    expect(
      () => new CutoverPlan<Ctx>({ default: 'live', units: { north: 'Live' as never }, unitOf }),
    ).toThrow(ConfigurationError);
  });

  it('rejects a unit function that returns no unit', () => {
    const plan = new CutoverPlan<Ctx>({ default: 'live', unitOf: () => '' });
    expect(() => plan.unitOf({ clinic: 'x' })).toThrow(InvalidInputError);
  });

  it('rejects setting an unknown stage or an empty unit, naming the argument', async () => {
    const plan = new CutoverPlan<Ctx>({ default: 'live', unitOf });
    await expect(plan.set('north', 'done' as never)).rejects.toMatchObject({ field: 'stage' });
    await expect(plan.set('', 'live')).rejects.toMatchObject({ field: 'unit' });
    await expect(plan.set('north', 'live', { reason: 42 } as never)).rejects.toMatchObject({
      field: 'reason',
    });
    await expect(plan.set('north', 'live', { by: '' })).rejects.toMatchObject({ field: 'by' });
    await expect(plan.set('north', 'live', { force: 'yes' } as never)).rejects.toMatchObject({
      field: 'force',
    });
    await expect(plan.set('north', 'live', { resourceType: '' })).rejects.toMatchObject({
      field: 'resourceType',
    });
    expect(plan.stageOf('north', 'Patient')).toBe('live');
  });

  it('refuses to attach to something that is not a store, naming it', async () => {
    const plan = new CutoverPlan<Ctx>({ default: 'live', unitOf });
    await expect(plan.attach({} as never)).rejects.toMatchObject({
      name: 'ConfigurationError',
      field: 'store.loadPlan',
    });
    await expect(plan.attach(new MemoryStore(), { refreshMs: 0 })).rejects.toMatchObject({
      field: 'refreshMs',
    });
  });
});
