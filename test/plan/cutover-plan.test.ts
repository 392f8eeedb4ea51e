import { describe, expect, it } from 'vitest';
import { ConfigurationError, CutoverPlan, InvalidInputError, routeOf, STAGES } from '../../src/index.ts';

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

  it('changes a stage at run time', () => {
    const plan = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    plan.set('north', 'live');
    expect(plan.routeOf('north', 'Patient')).toMatchObject({
      stage: 'live',
      authority: 'medplum',
      mirrorTo: 'legacy',
    });
    plan.set('north', 'shadow', { resourceType: 'Patient' });
    expect(plan.stageOf('north', 'Patient')).toBe('shadow');
    expect(plan.stageOf('north', 'Encounter')).toBe('live');
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

  it('rejects setting an unknown stage, naming the argument', () => {
    const plan = new CutoverPlan<Ctx>({ default: 'live', unitOf });
    expect(() => plan.set('north', 'done' as never)).toThrow(
      expect.objectContaining({ field: 'stage' }) as Error,
    );
  });
});
