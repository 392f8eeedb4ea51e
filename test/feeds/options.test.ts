import { describe, expect, it } from 'vitest';
import { validateTombstoneOptions } from '../../src/adapters/postgres-table-tombstones.ts';
import { changeFeedsSettings } from '../../src/feeds/change-feeds-options.ts';
import { ConfigurationError } from '../../src/index.ts';

describe('change feed options', () => {
  it('applies the documented defaults', () => {
    expect(changeFeedsSettings({})).toEqual({
      pollIntervalMs: 5000,
      pageSize: 100,
      maxPagesPerPoll: 50,
      overlapMs: 2000,
      legacyOverlapMs: 60_000,
      leaseMs: 30_000,
      owner: expect.stringMatching(/^.+:\d+:[0-9a-f]{8}$/) as string,
      existenceCheckIntervalMs: 300_000,
      existenceCheckMaxMissingShare: 0.1,
      existenceCheckMinMissing: 10,
      sides: ['legacy', 'medplum'],
      restHookSecret: undefined,
      medplumSince: undefined,
    });
  });

  it.each([
    [{ pageSize: 0 }, 'pageSize'],
    [{ pageSize: 1001 }, 'pageSize'],
    [{ pollIntervalMs: 1.5 }, 'pollIntervalMs'],
    [{ overlapMs: -1 }, 'overlapMs'],
    [{ legacyOverlapMs: 1.5 }, 'legacyOverlapMs'],
    [{ leaseMs: 0 }, 'leaseMs'],
    [{ owner: '' }, 'owner'],
    [{ existenceCheckIntervalMs: '5m' }, 'existenceCheckIntervalMs'],
    [{ existenceCheckMaxMissingShare: 1.5 }, 'existenceCheckMaxMissingShare'],
    [{ existenceCheckMinMissing: -1 }, 'existenceCheckMinMissing'],
    [{ maxPagesPerPoll: 0 }, 'maxPagesPerPoll'],
    [{ sides: [] }, 'sides'],
    [{ sides: ['fhir'] }, 'sides'],
    [{ restHookSecret: '' }, 'restHookSecret'],
    [{ medplumSince: 'yesterday' }, 'medplumSince'],
    [{ medplumSince: '2026-13-45T00:00:00Z' }, 'medplumSince'],
    [{ medplumSince: 1_700_000_000_000 }, 'medplumSince'],
  ])('rejects %o naming %s', (options, field) => {
    const error = (() => {
      try {
        changeFeedsSettings(options);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ field });
  });

  it('names tombstone options at fault', () => {
    expect(() => validateTombstoneOptions({ table: 'x; drop' })).toThrow(/tombstones\.table/);
    expect(() => validateTombstoneOptions('yes')).toThrow(/tombstones/);
    expect(validateTombstoneOptions(true)?.sqlTable).toBe('"public"."dualwrite_tombstones"');
    expect(validateTombstoneOptions(undefined)).toBeUndefined();
  });
});
