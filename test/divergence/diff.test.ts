import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diff } from '../../src/divergence/diff.ts';
import { normalise } from '../../src/divergence/normalise.ts';
import { valueHash } from '../../src/events/redact.ts';
import { fhirOptions, optionSets, patient } from './patient-arbitrary.ts';

const jane = {
  resourceType: 'Patient',
  name: [{ family: 'Doe', given: ['Jane', 'Q'] }],
  birthDate: '1980-05-06',
  telecom: [
    { system: 'phone', value: '555-0100' },
    { system: 'email', value: 'j@example.org' },
  ],
};

describe('diff', () => {
  it('names each changed, added and removed path, with array indices', () => {
    const { birthDate: _, ...withoutBirthDate } = jane;
    const changed = {
      ...withoutBirthDate,
      name: [{ family: 'Doe', given: ['Jane', 'R'] }],
      gender: 'female',
    };
    expect(diff(jane, changed)).toStrictEqual([
      { path: 'birthDate', kind: 'removed' },
      { path: 'name[0].given[1]', kind: 'changed' },
      { path: 'gender', kind: 'added' },
    ]);
  });

  it('holds no values by default', () => {
    for (const entry of diff(jane, { ...jane, birthDate: '1980-06-05' })) {
      expect(Object.keys(entry).sort()).toStrictEqual(['kind', 'path']);
    }
  });

  it('ignores what normalisation removes: bookkeeping, key order, empty values', () => {
    const noisy = { meta: { versionId: '9' }, id: 'x', ...jane, gender: '', address: [] };
    expect(diff(jane, noisy)).toStrictEqual([]);
  });

  it('reports an unordered array once, at the array path, and reordering it not at all', () => {
    const reordered = { ...jane, telecom: jane.telecom.toReversed() };
    expect(diff(jane, reordered, { unordered: ['telecom'] })).toStrictEqual([]);
    const changed = { ...jane, telecom: [{ system: 'phone', value: '555-0199' }, ...jane.telecom.slice(1)] };
    expect(diff(jane, changed, { unordered: ['telecom'] })).toStrictEqual([
      { path: 'telecom', kind: 'changed' },
    ]);
    expect(diff(jane, changed)).toStrictEqual([{ path: 'telecom[0].value', kind: 'changed' }]);
  });

  it('reports an unordered array nested in an ordered one at its own path', () => {
    const changed = { ...jane, name: [{ family: 'Doe', given: ['Q', 'Janet'] }] };
    expect(diff(jane, changed, { unordered: ['name.given'] })).toStrictEqual([
      { path: 'name[0].given', kind: 'changed' },
    ]);
  });

  it('applies ignore and dateTimePrecision', () => {
    const a = { ...jane, extension: [{ url: 'u' }], deceasedDateTime: '2026-01-02T03:04:05Z' };
    const b = { ...jane, deceasedDateTime: '2026-01-02T04:04:05.000+01:00' };
    expect(diff(a, b, { ignore: ['extension'], dateTimePrecision: 'second' })).toStrictEqual([]);
    expect(diff(a, b).map((e) => e.path)).toStrictEqual(['deceasedDateTime', 'extension']);
  });

  it('attaches value hashes on request, keyed with an HMAC when given a key', () => {
    const after = { ...jane, birthDate: '1980-06-05', gender: 'female' };
    expect(diff(jane, after, { hashValues: true })).toStrictEqual([
      { path: 'birthDate', kind: 'changed', before: valueHash('1980-05-06'), after: valueHash('1980-06-05') },
      { path: 'gender', kind: 'added', after: valueHash('female') },
    ]);
    const key = 'not-in-the-logs';
    expect(diff(jane, after, { hashValues: { key } })[0]).toStrictEqual({
      path: 'birthDate',
      kind: 'changed',
      before: valueHash('1980-05-06', { key }),
      after: valueHash('1980-06-05', { key }),
    });
  });

  it('hashes an unordered array as a whole, in normal form', () => {
    const changed = { ...jane, telecom: [{ value: 'x' }] };
    expect(diff(jane, changed, { unordered: ['telecom'], hashValues: true })).toStrictEqual([
      {
        path: 'telecom',
        kind: 'changed',
        before: valueHash(jane.telecom.toReversed()), // sorted by canonical JSON: email before phone
        after: valueHash([{ value: 'x' }]),
      },
    ]);
  });

  it('reveals the normalised values only when asked', () => {
    const removed = { ...jane, name: [{ family: 'Doe', given: ['Jane'] }] };
    expect(diff(jane, removed, { revealValues: true })).toStrictEqual([
      { path: 'name[0].given[1]', kind: 'removed', before: 'Q' },
    ]);
  });

  it('compares whole values at the root when they are not both objects or both arrays', () => {
    expect(diff(undefined, jane)).toStrictEqual([{ path: '', kind: 'added' }]);
    expect(diff(jane, { id: 'only-bookkeeping' })).toStrictEqual([{ path: '', kind: 'removed' }]);
    expect(diff([1], { a: 1 })).toStrictEqual([{ path: '', kind: 'changed' }]);
    expect(diff('a', 'a')).toStrictEqual([]);
  });

  it('quotes keys that are not identifiers', () => {
    expect(diff({ 'a b': 1 }, { 'a b': 2 })).toStrictEqual([{ path: '["a b"]', kind: 'changed' }]);
  });
});

describe('diff: properties', () => {
  it('finds nothing between a value and itself (arbitrary JSON)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(...optionSets), (value, options) => {
        expect(diff(value, value, options)).toStrictEqual([]);
      }),
    );
  });

  it('finds nothing between a Patient and itself, nor its normal form', () => {
    fc.assert(
      fc.property(patient, fc.constantFrom(...optionSets), (p, options) => {
        expect(diff(p, p, options)).toStrictEqual([]);
        expect(diff(p, normalise(p, options), options)).toStrictEqual([]);
      }),
    );
  });

  it('is empty exactly when the normal forms are equal', () => {
    fc.assert(
      fc.property(patient, patient, (a, b) => {
        const equal = JSON.stringify(normalise(a, fhirOptions)) === JSON.stringify(normalise(b, fhirOptions));
        expect(diff(a, b, fhirOptions).length === 0).toBe(equal);
      }),
    );
  });

  it('is symmetric: added one way is removed the other, on the same paths', () => {
    fc.assert(
      fc.property(patient, patient, (a, b) => {
        const flip = { added: 'removed', removed: 'added', changed: 'changed' } as const;
        const forward = diff(a, b, fhirOptions).map((e) => `${e.path} ${flip[e.kind]}`);
        const backward = diff(b, a, fhirOptions).map((e) => `${e.path} ${e.kind}`);
        expect(backward.sort()).toStrictEqual(forward.sort());
      }),
    );
  });
});

describe('diff: keys that objects inherit', () => {
  it('reports a key named like an Object.prototype member as removed or added, with its value', () => {
    expect(diff({ a: 0, toString: 1, constructor: 'x' }, { a: 0 }, { revealValues: true })).toStrictEqual([
      { path: 'constructor', kind: 'removed', before: 'x' },
      { path: 'toString', kind: 'removed', before: 1 },
    ]);
    expect(diff({ a: 0 }, { a: 0, valueOf: 2 }, { hashValues: true })).toStrictEqual([
      { path: 'valueOf', kind: 'added', after: valueHash(2) },
    ]);
  });
});
