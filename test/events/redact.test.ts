import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redactEvent } from '../../src/events/event-redaction.ts';
import { valueHash } from '../../src/events/redact.ts';
import { ConfigurationError } from '../../src/errors.ts';

describe('valueHash', () => {
  it('is a short sha256 of the canonical JSON', () => {
    expect(valueHash('1980-05-06')).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(valueHash({ a: 1, b: [2, { c: 3, d: 4 }] })).toBe(valueHash({ b: [2, { d: 4, c: 3 }], a: 1 }));
  });

  it('tells values apart, types included', () => {
    expect(valueHash('1')).not.toBe(valueHash(1));
    expect(valueHash([1, 2])).not.toBe(valueHash([2, 1]));
  });

  it('with a key is an HMAC, which differs per key and from the plain hash', () => {
    const keyed = valueHash('1980-05-06', { key: 'k1' });
    expect(keyed).toMatch(/^hmac-sha256:[0-9a-f]{16}$/);
    expect(valueHash('1980-05-06', { key: 'k2' })).not.toBe(keyed);
    expect(valueHash('1980-05-06', { key: new TextEncoder().encode('k1') })).toBe(keyed);
  });

  it('rejects an empty key without echoing it', () => {
    expect(() => valueHash('x', { key: '' })).toThrow(ConfigurationError);
  });

  it('hashes undefined as null', () => {
    expect(valueHash(undefined)).toBe(valueHash(null));
  });

  it('does not depend on key order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (object) => {
        const reversed = Object.fromEntries(Object.entries(object).reverse());
        expect(valueHash(reversed)).toBe(valueHash(object));
      }),
    );
  });
});

describe('redactEvent', () => {
  const event = {
    type: 'divergence',
    resourceType: 'Patient',
    legacyId: 'p-1',
    medplumId: 'm-1',
    unit: 'north',
    source: 'verify',
    differences: [{ path: 'birthDate', kind: 'changed', before: '1980-05-06', after: '1980-06-05' }],
  } as const;

  it('reveals values only for revealValues: true, not for a truthy look-alike', () => {
    for (const revealValues of ['no', 'false', 1, {}]) {
      const shown = JSON.stringify(redactEvent(event, { revealValues } as never));
      expect(shown).not.toContain('1980');
    }
    expect(JSON.stringify(redactEvent(event as never, { revealValues: true }))).toContain('1980-05-06');
  });

  it('rejects hashing options that are not an object', () => {
    expect(() => valueHash('x', 'secret' as never)).toThrow(ConfigurationError);
  });
});
