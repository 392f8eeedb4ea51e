import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contentHash, normalise, type NormaliseOptions } from '../../src/divergence/normalise.ts';
import { ConfigurationError } from '../../src/errors.ts';
import { fhirOptions, formatInstant, instant, optionSets, patient } from './patient-arbitrary.ts';

describe('normalise: defaults', () => {
  it('drops id, meta, empty strings, empty arrays and objects left empty, and sorts keys', () => {
    expect(
      normalise({
        resourceType: 'Patient',
        id: '1',
        meta: { versionId: '2' },
        name: [{ given: [''], family: 'Doe' }, { given: [] }],
        active: true,
        address: [{ line: [''] }],
        gender: null,
      }),
    ).toStrictEqual({ active: true, name: [{ family: 'Doe' }], resourceType: 'Patient' });
  });

  it('drops a generated narrative and keeps any other', () => {
    const text = (status: string) => ({ resourceType: 'Patient', text: { status, div: '<div>x</div>' } });
    expect(normalise(text('generated'))).toStrictEqual({ resourceType: 'Patient' });
    expect(normalise(text('additional'))).toStrictEqual(text('additional'));
    expect(normalise(text('extensions'))).toStrictEqual(text('extensions'));
  });

  it('drops bookkeeping only at the top level: a contained resource keeps its id', () => {
    expect(
      normalise({ resourceType: 'Patient', contained: [{ resourceType: 'Practitioner', id: 'pr1' }] }),
    ).toStrictEqual({
      contained: [{ id: 'pr1', resourceType: 'Practitioner' }],
      resourceType: 'Patient',
    });
  });

  it('keeps array order and date-time strings as written', () => {
    const p = {
      resourceType: 'Patient',
      telecom: [{ value: 'b' }, { value: 'a' }],
      deceasedDateTime: '2026-01-02T03:04:05Z',
    };
    expect(normalise(p)).toStrictEqual(p);
  });

  it('keeps a `__proto__` key as data', () => {
    const value = JSON.parse('{"__proto__": {"a": 1}, "b": 2}') as unknown;
    expect(JSON.stringify(normalise(value))).toBe('{"__proto__":{"a":1},"b":2}');
  });

  it('returns undefined when nothing is left', () => {
    expect(normalise({ id: 'x', meta: {}, name: [''] })).toBeUndefined();
  });

  it('keeps the content hash of existing links: a pinned Patient hashes as before the options existed', () => {
    const p = {
      resourceType: 'Patient',
      id: 'p1',
      meta: { versionId: '3' },
      text: { status: 'generated', div: '<div/>' },
      identifier: [{ system: 'urn:legacy', value: 'L1' }],
      name: [{ family: 'Doe', given: ['Jane', ''] }],
      birthDate: '1980-05-06',
      active: true,
      multipleBirthInteger: 2,
    };
    expect(contentHash(p)).toBe('sha256:5a876697c5c7379c84bc34f973bb25bdb81b0819167cb3a7c6b5f75d160f8feb');
  });
});

describe('normalise: ignore', () => {
  it('drops a top-level path', () => {
    expect(
      normalise(
        { resourceType: 'Patient', extension: [{ url: 'u', valueString: 'v' }] },
        { ignore: ['extension'] },
      ),
    ).toStrictEqual({
      resourceType: 'Patient',
    });
  });

  it('drops a nested path in every array element on the way', () => {
    const p = {
      resourceType: 'Patient',
      name: [
        { family: 'Doe', period: { start: '2020-01-01' } },
        { family: 'Roe', period: { end: '2021-01-01' } },
      ],
    };
    expect(normalise(p, { ignore: ['name.period'] })).toStrictEqual({
      name: [{ family: 'Doe' }, { family: 'Roe' }],
      resourceType: 'Patient',
    });
  });

  it('drops text whatever its status', () => {
    expect(
      normalise(
        { resourceType: 'Patient', text: { status: 'additional', div: '<div/>' } },
        { ignore: ['text'] },
      ),
    ).toStrictEqual({
      resourceType: 'Patient',
    });
  });

  it('names one place: a top-level path leaves nested fields of that name alone', () => {
    const p = { resourceType: 'Patient', name: [{ extension: [{ url: 'u' }], family: 'Doe' }] };
    expect(normalise(p, { ignore: ['extension'] })).toStrictEqual(normalise(p));
  });
});

describe('normalise: unordered', () => {
  it('sorts an unordered array by canonical JSON, so order is no difference', () => {
    const a = {
      resourceType: 'Patient',
      telecom: [
        { value: 'b', system: 'phone' },
        { system: 'email', value: 'a' },
      ],
    };
    const b = {
      resourceType: 'Patient',
      telecom: [
        { value: 'a', system: 'email' },
        { system: 'phone', value: 'b' },
      ],
    };
    expect(normalise(a, { unordered: ['telecom'] })).toStrictEqual(normalise(b, { unordered: ['telecom'] }));
    expect(contentHash(a, { unordered: ['telecom'] })).toBe(contentHash(b, { unordered: ['telecom'] }));
    expect(contentHash(a)).not.toBe(contentHash(b));
  });

  it('keeps duplicates: an array is compared as a multiset', () => {
    const p = { resourceType: 'Patient', identifier: [{ value: '1' }, { value: '1' }] };
    expect(normalise(p, { unordered: ['identifier'] })).toStrictEqual(p);
  });

  it('sorts a nested array inside every element of an ordered one', () => {
    const p = { resourceType: 'Patient', name: [{ given: ['Q', 'Jane'] }, { given: ['b', 'a'] }] };
    expect(normalise(p, { unordered: ['name.given'] })).toStrictEqual({
      name: [{ given: ['Jane', 'Q'] }, { given: ['a', 'b'] }],
      resourceType: 'Patient',
    });
  });
});

describe('normalise: dateTimePrecision', () => {
  const at = (value: string, dateTimePrecision: NormaliseOptions['dateTimePrecision']) =>
    (normalise({ value }, { dateTimePrecision }) as { value: string }).value;

  it("'millisecond' writes Z, offset, and with or without a fraction the same UTC instant", () => {
    for (const form of [
      '2026-01-02T03:04:05Z',
      '2026-01-02T03:04:05.000Z',
      '2026-01-02T03:04:05+00:00',
      '2026-01-02T04:04:05+01:00',
      '2026-01-01T22:04:05.0-05:00',
    ]) {
      expect(at(form, 'millisecond')).toBe('2026-01-02T03:04:05.000Z');
    }
  });

  it("'millisecond' truncates extra fraction digits instead of rounding", () => {
    expect(at('2026-01-02T03:04:05.123999Z', 'millisecond')).toBe('2026-01-02T03:04:05.123Z');
    expect(at('2026-01-02T03:04:05.9999+00:00', 'millisecond')).toBe('2026-01-02T03:04:05.999Z');
    expect(at('2026-01-02T03:04:05.1Z', 'millisecond')).toBe('2026-01-02T03:04:05.100Z');
  });

  it("'second' drops the fraction", () => {
    expect(at('2026-01-02T03:04:05.999Z', 'second')).toBe('2026-01-02T03:04:05Z');
    expect(at('2026-01-02T03:04:05.999+00:00', 'second')).toBe(at('2026-01-02T03:04:05Z', 'second'));
  });

  it('converts across a day, month and year boundary', () => {
    expect(at('2026-01-01T00:30:00+01:00', 'second')).toBe('2025-12-31T23:30:00Z');
    expect(at('2025-12-31T23:30:00-14:00', 'second')).toBe('2026-01-01T13:30:00Z');
  });

  it('leaves dates, partial dates, times, zone-less date-times and impossible dates alone', () => {
    for (const value of [
      '2026',
      '2026-01',
      '2026-01-02',
      '03:04:05',
      '2026-01-02T03:04:05',
      '2026-02-30T03:04:05Z',
      '2016-12-31T23:59:60Z',
      'T',
      'not a dateTime at all, long enough',
    ]) {
      expect(at(value, 'millisecond')).toBe(value);
      expect(at(value, 'second')).toBe(value);
    }
  });

  it("'as-is' (the default) compares the strings exactly", () => {
    expect(at('2026-01-02T03:04:05Z', 'as-is')).toBe('2026-01-02T03:04:05Z');
    expect(at('2026-01-02T03:04:05.000Z', undefined)).toBe('2026-01-02T03:04:05.000Z');
  });

  it('any way of writing an instant normalises to its ISO string', () => {
    fc.assert(
      fc.property(instant, ({ time, offsetMinutes, fraction, zulu }) => {
        const written = formatInstant(time, offsetMinutes, fraction, zulu);
        const iso = new Date(time).toISOString().slice(0, 19);
        expect(at(written, 'second')).toBe(`${iso}Z`);
        expect(at(written, 'millisecond')).toBe(`${iso}.${fraction.slice(0, 3).padEnd(3, '0')}Z`);
      }),
    );
  });
});

describe('normalise: options are validated', () => {
  it.each([
    [{ ignore: 'meta' }, 'ignore'],
    [{ ignore: ['name..period'] }, 'ignore[0]'],
    [{ unordered: ['telecom', 'name[0]'] }, 'unordered[1]'],
    [{ dateTimePrecision: 'minute' }, 'dateTimePrecision'],
  ])('%j is rejected naming %s', (options, field) => {
    expect(() => normalise({}, options as NormaliseOptions)).toThrow(ConfigurationError);
    expect(() => normalise({}, options as NormaliseOptions)).toThrow(
      expect.objectContaining({ field }) as Error,
    );
  });
});

describe('normalise: properties', () => {
  it('is idempotent on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(...optionSets), (value, options) => {
        const once = normalise(value, options);
        expect(normalise(once, options)).toStrictEqual(once);
      }),
    );
  });

  it('is idempotent on FHIR-like Patients, with and without options', () => {
    fc.assert(
      fc.property(patient, fc.constantFrom(...optionSets), (p, options) => {
        const once = normalise(p, options);
        expect(normalise(once, options)).toStrictEqual(once);
        expect(contentHash(once, options)).toBe(contentHash(p, options));
      }),
    );
  });

  it('does not depend on key order', () => {
    fc.assert(
      fc.property(patient, (p) => {
        const reversed = Object.fromEntries(Object.entries(p).reverse());
        expect(contentHash(reversed, fhirOptions)).toBe(contentHash(p, fhirOptions));
      }),
    );
  });

  it('does not depend on the order of unordered arrays', () => {
    fc.assert(
      fc.property(patient, (p) => {
        const shuffled = {
          ...p,
          telecom: p.telecom?.toReversed(),
          name: p.name?.toReversed(),
          address: p.address?.toReversed(),
        };
        expect(contentHash(shuffled, fhirOptions)).toBe(contentHash(p, fhirOptions));
      }),
    );
  });
});
