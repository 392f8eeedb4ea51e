import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, it, vi } from 'vitest';
import { mergeThreeWay, type MergeCollision } from '../../src/conflict/three-way-merge.ts';
import { ConfigurationError, InvalidInputError } from '../../src/errors.ts';

const base: Patient = {
  resourceType: 'Patient',
  id: 'p1',
  meta: { versionId: '1' },
  gender: 'female',
  birthDate: '1980-05-06',
  name: [{ family: 'Doe', given: ['Jane'] }],
  telecom: [
    { system: 'phone', value: '555-0100' },
    { system: 'email', value: 'j@example.org' },
  ],
  maritalStatus: { coding: [{ system: 'urn:ms', code: 'S' }], text: 'single' },
};

describe('mergeThreeWay', () => {
  it('keeps a change made on one side only, from either side', () => {
    const ours = { ...base, gender: 'other' as const };
    const theirs = { ...base, birthDate: '1980-06-05' };
    const result = mergeThreeWay(base, ours, theirs, { onCollision: 'manual' });
    expect(result).toStrictEqual({
      merged: { ...base, gender: 'other', birthDate: '1980-06-05' },
      collisions: [],
      manual: false,
    });
  });

  it('keeps a removal made on one side', () => {
    const { birthDate: _, ...theirs } = base;
    expect(mergeThreeWay(base, base, theirs, { onCollision: 'manual' }).merged).toStrictEqual(theirs);
  });

  it('takes a change both sides made alike, without a collision', () => {
    const changed = { ...base, gender: 'male' as const };
    expect(mergeThreeWay(base, changed, { ...changed }, { onCollision: 'manual' })).toStrictEqual({
      merged: changed,
      collisions: [],
      manual: false,
    });
  });

  it('takes id and meta from ours', () => {
    const ours = { ...base, id: 'medplum-id', meta: { versionId: '7' } };
    const theirs = { ...base, id: 'other-id', meta: { versionId: '2' }, gender: 'male' as const };
    const { merged } = mergeThreeWay(base, ours, theirs, { onCollision: 'manual' });
    expect(merged).toMatchObject({ id: 'medplum-id', meta: { versionId: '7' }, gender: 'male' });
  });

  it('takes ignored fields and a generated narrative from ours', () => {
    const ours = {
      ...base,
      text: { status: 'generated' as const, div: '<div>ours</div>' },
      extension: [{ url: 'u', valueString: 'ours' }],
    };
    const theirs = {
      ...base,
      text: { status: 'generated' as const, div: '<div>theirs</div>' },
      extension: [{ url: 'u', valueString: 'theirs' }],
    };
    const result = mergeThreeWay(base, ours, theirs, { onCollision: 'manual', ignore: ['extension'] });
    expect(result.merged).toStrictEqual(ours);
    expect(result.collisions).toStrictEqual([]);
  });

  it('does not count representation noise as a change: key order, empty values, dateTime precision', () => {
    const withTime = { ...base, deceasedDateTime: '2026-01-02T03:04:05Z' };
    // The same content in reverse key order, with an empty array and the instant written another way.
    const theirs = Object.fromEntries(
      Object.entries({
        ...withTime,
        address: [],
        deceasedDateTime: '2026-01-02T04:04:05.000+01:00',
      }).reverse(),
    ) as unknown as Patient;
    theirs.gender = 'male';
    const result = mergeThreeWay(withTime, { ...withTime, birthDate: '1981-01-01' }, theirs, {
      onCollision: 'manual',
      dateTimePrecision: 'millisecond',
    });
    expect(result.collisions).toStrictEqual([]);
    // Unchanged fields keep ours's representation.
    expect(result.merged).toStrictEqual({ ...withTime, birthDate: '1981-01-01', gender: 'male' });
  });

  it('treats an array as one value: changes to different elements collide', () => {
    const ours = { ...base, telecom: [{ system: 'phone' as const, value: '555-0199' }, base.telecom![1]!] };
    const theirs = {
      ...base,
      telecom: [base.telecom![0]!, { system: 'email' as const, value: 'jane@example.org' }],
    };
    const result = mergeThreeWay(base, ours, theirs, { onCollision: 'ours' });
    expect(result.collisions).toStrictEqual([{ path: 'telecom', decidedBy: 'ours' }]);
    expect(result.merged?.telecom).toStrictEqual(ours.telecom);
  });

  it('compares an unordered array as a multiset: reordering it is no change', () => {
    const reordered = { ...base, telecom: base.telecom!.toReversed() };
    const theirs = { ...base, telecom: [{ system: 'fax' as const, value: '555-0111' }] };
    const options = { onCollision: 'manual' as const, unordered: ['telecom'] };
    expect(mergeThreeWay(base, reordered, theirs, options)).toStrictEqual({
      merged: theirs,
      collisions: [],
      manual: false,
    });
    // Without the option the reordering is a change, and both sides changed telecom.
    expect(mergeThreeWay(base, reordered, theirs, { onCollision: 'manual' }).manual).toBe(true);
  });

  it('recurses into objects: a collision is reported at the innermost field both changed', () => {
    const ours = { ...base, maritalStatus: { coding: [{ system: 'urn:ms', code: 'M' }], text: 'married' } };
    const theirs = { ...base, maritalStatus: { coding: [{ system: 'urn:ms', code: 'D' }], text: 'single' } };
    const result = mergeThreeWay(base, ours, theirs, { onCollision: 'theirs' });
    expect(result.collisions).toStrictEqual([{ path: 'maritalStatus.coding', decidedBy: 'theirs' }]);
    expect(result.merged?.maritalStatus).toStrictEqual({
      coding: [{ system: 'urn:ms', code: 'D' }],
      text: 'married',
    });
  });

  describe('collisions', () => {
    const ours = { ...base, gender: 'other' as const, birthDate: '1980-05-07' };
    const theirs = { ...base, gender: 'male' as const, name: [{ family: 'Roe' }] };

    it("'ours' keeps ours's value", () => {
      const result = mergeThreeWay(base, ours, theirs, { onCollision: 'ours' });
      expect(result.merged).toStrictEqual({ ...ours, name: [{ family: 'Roe' }] });
      expect(result.collisions).toStrictEqual([{ path: 'gender', decidedBy: 'ours' }]);
      expect(result.manual).toBe(false);
    });

    it("'theirs' keeps theirs's value", () => {
      const result = mergeThreeWay(base, ours, theirs, { onCollision: 'theirs' });
      expect(result.merged).toStrictEqual({ ...ours, gender: 'male', name: [{ family: 'Roe' }] });
      expect(result.collisions).toStrictEqual([{ path: 'gender', decidedBy: 'theirs' }]);
    });

    it("'manual' returns no merged resource and lists every collision", () => {
      const both = { ...theirs, birthDate: '1980-05-08' };
      const result = mergeThreeWay(base, ours, both, { onCollision: 'manual' });
      expect(result).toStrictEqual({
        merged: undefined,
        collisions: [
          { path: 'gender', decidedBy: 'manual' },
          { path: 'birthDate', decidedBy: 'manual' },
        ],
        manual: true,
      });
    });

    it('a function is given path, base, ours and theirs as the resources hold them, and returns the value', () => {
      const decide = vi.fn((c: MergeCollision) => (c.path === 'gender' ? 'unknown' : c.ours));
      const result = mergeThreeWay(base, ours, theirs, { onCollision: decide });
      expect(decide).toHaveBeenCalledExactlyOnceWith({
        path: 'gender',
        base: 'female',
        ours: 'other',
        theirs: 'male',
      });
      expect(result.merged?.gender).toBe('unknown');
      expect(result.collisions).toStrictEqual([{ path: 'gender', decidedBy: 'function' }]);
    });

    it('a function returning undefined removes the field', () => {
      const result = mergeThreeWay(base, ours, theirs, { onCollision: () => undefined });
      expect(result.merged).not.toHaveProperty('gender');
    });
  });

  it('without a base, takes fields one side has and collides where both differ', () => {
    const ours: Patient = { resourceType: 'Patient', gender: 'female', birthDate: '1980-05-06' };
    const theirs: Patient = { resourceType: 'Patient', gender: 'male', active: true };
    const result = mergeThreeWay(undefined, ours, theirs, { onCollision: 'ours' });
    expect(result.merged).toStrictEqual({
      resourceType: 'Patient',
      gender: 'female',
      birthDate: '1980-05-06',
      active: true,
    });
    expect(result.collisions).toStrictEqual([{ path: 'gender', decidedBy: 'ours' }]);
  });

  it('does not modify its inputs', () => {
    const ours = structuredClone({ ...base, gender: 'other' as const });
    const theirs = structuredClone({ ...base, gender: 'male' as const });
    const copies = structuredClone([base, ours, theirs]);
    mergeThreeWay(base, ours, theirs, { onCollision: () => 'unknown' });
    expect([base, ours, theirs]).toStrictEqual(copies);
  });

  it('rejects a bad policy naming onCollision', () => {
    expect(() => mergeThreeWay(base, base, base, { onCollision: 'authority' as 'ours' })).toThrow(
      ConfigurationError,
    );
    expect(() => mergeThreeWay(base, base, base, { onCollision: 'authority' as 'ours' })).toThrow(
      /onCollision/,
    );
  });

  it('rejects copies of different resource types', () => {
    const practitioner = { resourceType: 'Practitioner' } as unknown as Patient;
    expect(() => mergeThreeWay(base, base, practitioner, { onCollision: 'ours' })).toThrow(InvalidInputError);
    expect(() => mergeThreeWay(practitioner, base, base, { onCollision: 'ours' })).toThrow(
      /base.resourceType/,
    );
  });
});

describe('mergeThreeWay: keys that objects inherit', () => {
  it('treats a field named like an Object.prototype member as any other', () => {
    const withField = { ...base, constructor: 'x' } as unknown as Patient;
    const result = mergeThreeWay(base, base, withField, { onCollision: 'manual' });
    expect(result.merged).toStrictEqual(withField);
    expect(mergeThreeWay(withField, base, withField, { onCollision: 'manual' }).merged).toStrictEqual(base);
  });
});
