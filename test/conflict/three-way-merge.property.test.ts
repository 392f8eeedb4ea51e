import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeThreeWay, type MergeCollisionPolicy } from '../../src/conflict/three-way-merge.ts';
import { normalise } from '../../src/divergence/normalise.ts';
import { optionSets, patient, patientFields, withFields } from '../divergence/patient-arbitrary.ts';

const policies: readonly MergeCollisionPolicy[] = ['ours', 'theirs', 'manual', (c) => c.theirs];
const options = fc.record({
  normalise: fc.constantFrom(...optionSets),
  onCollision: fc.constantFrom(...policies),
});

describe('mergeThreeWay: properties', () => {
  it('a change on ours alone is the result: merge(base, a, base) = a', () => {
    fc.assert(
      fc.property(patient, patient, options, (base, a, { normalise: n, onCollision }) => {
        const result = mergeThreeWay(base, a, base, { ...n, onCollision });
        expect(result.collisions).toStrictEqual([]);
        expect(normalise(result.merged, n)).toStrictEqual(normalise(a, n));
      }),
    );
  });

  it('a change on theirs alone is the result: merge(base, base, b) = b', () => {
    fc.assert(
      fc.property(patient, patient, options, (base, b, { normalise: n, onCollision }) => {
        const result = mergeThreeWay(base, base, b, { ...n, onCollision });
        expect(result.collisions).toStrictEqual([]);
        expect(normalise(result.merged, n)).toStrictEqual(normalise(b, n));
      }),
    );
  });

  it('the same change on both sides is the result, without a collision', () => {
    fc.assert(
      fc.property(patient, patient, options, (base, a, { normalise: n, onCollision }) => {
        const result = mergeThreeWay(base, a, structuredClone(a), { ...n, onCollision });
        expect(result.collisions).toStrictEqual([]);
        expect(normalise(result.merged, n)).toStrictEqual(normalise(a, n));
      }),
    );
  });

  it('changes to disjoint fields are all in the result, without a collision', () => {
    const split = fc
      .subarray([...patientFields])
      .chain((ourFields) =>
        fc.tuple(fc.constant(ourFields), fc.subarray(patientFields.filter((f) => !ourFields.includes(f)))),
      );
    fc.assert(
      fc.property(patient, patient, patient, split, options, (base, a, b, [ourFields, theirFields], o) => {
        const ours = withFields(base, a, ourFields);
        const theirs = withFields(base, b, theirFields);
        const result = mergeThreeWay(base, ours, theirs, { ...o.normalise, onCollision: o.onCollision });
        expect(result.collisions).toStrictEqual([]);
        const expected = withFields(ours, b, theirFields);
        expect(normalise(result.merged, o.normalise)).toStrictEqual(normalise(expected, o.normalise));
      }),
    );
  });

  it("with 'ours' every collided field holds ours's value; with 'theirs', theirs's", () => {
    const at = (value: unknown, path: string) =>
      path.split('.').reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
    fc.assert(
      fc.property(patient, patient, patient, fc.constantFrom(...optionSets), (base, a, b, n) => {
        const ours = mergeThreeWay(base, a, b, { ...n, onCollision: 'ours' });
        const theirs = mergeThreeWay(base, a, b, { ...n, onCollision: 'theirs' });
        expect(ours.collisions.map((c) => c.path)).toStrictEqual(theirs.collisions.map((c) => c.path));
        for (const { path } of ours.collisions) {
          expect(at(normalise(ours.merged, n), path)).toStrictEqual(at(normalise(a, n), path));
          expect(at(normalise(theirs.merged, n), path)).toStrictEqual(at(normalise(b, n), path));
        }
      }),
    );
  });

  it("'manual' gives a merged resource exactly when nothing collided", () => {
    fc.assert(
      fc.property(patient, patient, patient, (base, a, b) => {
        const result = mergeThreeWay(base, a, b, { onCollision: 'manual' });
        expect(result.manual).toBe(result.collisions.length > 0);
        expect(result.merged === undefined).toBe(result.manual);
      }),
    );
  });
});
