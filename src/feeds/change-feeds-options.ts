import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigurationError, type Side } from '../errors.ts';
import { optionsObject, refuseUnknownKeys } from '../option-checks.ts';

/** The keys of {@link ChangeFeedsOptions}; the compiler keeps the list complete. */
const KNOWN = Object.keys({
  pollIntervalMs: true,
  pageSize: true,
  maxPagesPerPoll: true,
  overlapMs: true,
  legacyOverlapMs: true,
  leaseMs: true,
  owner: true,
  existenceCheckIntervalMs: true,
  existenceCheckMaxMissingShare: true,
  existenceCheckMinMissing: true,
  sides: true,
  restHookSecret: true,
  medplumSince: true,
} satisfies Record<keyof ChangeFeedsOptions, true>);

/**
 * Options of the writer's change feeds (its `feeds` option). Every field is optional; each is
 * checked at construction.
 *
 * @example
 * ```ts
 * const options: ChangeFeedsOptions = { pollIntervalMs: 2000, pageSize: 200, sides: ['medplum'] };
 * ```
 */
export interface ChangeFeedsOptions {
  /**
   * Time between the end of one pass and the start of the next, once `start()` was called.
   * @default 5000
   */
  readonly pollIntervalMs?: number | undefined;
  /**
   * Changes read per page (a legacy `changesSince` limit, a Medplum `_count`, links checked per
   * existence search). 1 to 1000.
   * @default 100
   */
  readonly pageSize?: number | undefined;
  /**
   * Pages read per feed and pass at most, so one busy feed cannot starve the others; the rest
   * is read next pass, from the stored cursor.
   * @default 50
   */
  readonly maxPagesPerPoll?: number | undefined;
  /**
   * How far before its stored cursor the Medplum feed starts each pass (`_lastUpdated=ge…`):
   * resources stamped in the same millisecond as the last one seen, or committed by the
   * server slightly out of timestamp order, are read again instead of missed. Re-reads are
   * echoes and cost one link look-up each.
   * @default 2000
   */
  readonly overlapMs?: number | undefined;
  /**
   * How long the legacy feed keeps re-reading changes behind its cursor. A legacy transaction
   * that stamps a row, then commits after a later transaction's row was read, is behind the
   * cursor when it becomes visible; each pass therefore also re-reads, from the cursor the feed
   * stored `legacyOverlapMs` ago, up to where it stands now (a second read, within
   * `maxPagesPerPoll`). A change read again costs a read of its record and a link look-up; it is
   * skipped when the record has a mirror pending or the copies are in sync (an echo). Set it above the longest transaction that writes the
   * legacy tables; 0 turns the re-read off.
   * @default 60000
   */
  readonly legacyOverlapMs?: number | undefined;
  /**
   * How long an instance holds a feed (a side and resource type) once it polled it. Instances
   * sharing a store poll each feed one at a time: the holder renews its lease before each of
   * its feed reads and every third of `leaseMs` while a pass runs (its pass reads every feed it
   * holds in turn, and the existence check), the others skip the feed, and
   * take it over once the lease has run out (its holder died or hung) — so failover takes at
   * most `leaseMs`. Keep it above `pollIntervalMs`.
   * @default 30000
   */
  readonly leaseMs?: number | undefined;
  /**
   * The name this instance holds feed leases under; unique per instance.
   * @default hostname:pid:random
   */
  readonly owner?: string | undefined;
  /**
   * How often the links are walked to find Medplum resources deleted directly in Medplum
   * (its `_lastUpdated` search never shows deletes). Each check costs one `_id` search per
   * `pageSize` links. 0 checks on every pass.
   * @default 300000 (5 minutes)
   */
  readonly existenceCheckIntervalMs?: number | undefined;
  /**
   * The existence check's guard: when more than this share of the linked resources checked in
   * one pass (and more than `existenceCheckMinMissing`) are missing in Medplum, the check
   * journals no delete at all, records an `existence-check-halted` event (counts only) and
   * reports the feed failed. That many missing is what a writer pointed at the wrong Medplum
   * (base URL, project, an emptied database) sees, and taking it for deletes would delete (in
   * `live`) or hold for review (in `dual-write`) every linked record. From 0 to 1; 1 turns the
   * guard off (for a pass an operator confirmed, say).
   * @default 0.1
   */
  readonly existenceCheckMaxMissingShare?: number | undefined;
  /**
   * How many linked resources must be missing in one existence check before the guard
   * (`existenceCheckMaxMissingShare`) looks at their share: a few deletes among few links pass.
   * @default 10
   */
  readonly existenceCheckMinMissing?: number | undefined;
  /**
   * Which systems' direct writes to pick up: `legacy` reads the adapter's `changesSince`;
   * `medplum` polls `_lastUpdated` and runs the existence check.
   * @default ['legacy', 'medplum']
   */
  readonly sides?: readonly Side[] | undefined;
  /**
   * The secret of the Medplum `Subscription` (its `subscription-secret` extension) whose
   * rest-hook calls `writer.handleRestHook`: notifications without a matching
   * `X-Signature` are refused. Without it, every notification is checked against Medplum
   * before anything is queued, so a forged one can do no harm, only cost a read.
   * @default undefined
   */
  readonly restHookSecret?: string | undefined;
  /**
   * Where the Medplum feed starts reading when it has no cursor stored yet (its first pass on
   * a journal): an ISO 8601 instant. Resources last updated before it are not read; existing
   * records are a backfill's job. Without it, the first pass reads the project's whole history,
   * other applications' resources included (each is given to `unitOf`). Ignored once a cursor
   * is stored.
   * @default undefined
   */
  readonly medplumSince?: string | undefined;
}

/** The options with defaults applied. @internal */
export type ChangeFeedsSettings = Required<{
  [K in keyof Omit<ChangeFeedsOptions, 'restHookSecret' | 'medplumSince'>]: NonNullable<
    ChangeFeedsOptions[K]
  >;
}> & { readonly restHookSecret: string | undefined; readonly medplumSince: string | undefined };

/** A feed-lease owner: the one given (a non-empty string), or one unique to this process. */
function ownerOf(given: unknown, field: string): string {
  if (given === undefined) return `${hostname()}:${String(process.pid)}:${randomUUID().slice(0, 8)}`;
  if (typeof given !== 'string' || given === '')
    throw new ConfigurationError(field, given, 'must be a non-empty string');
  return given;
}

/**
 * Checks {@link ChangeFeedsOptions} and applies the defaults.
 *
 * @param options - What the caller gave (of unknown shape: JavaScript callers get no compiler).
 * @param prefix - Put before the field names in errors (`feeds.` for the writer's option).
 * @param alsoKnown - Keys the caller's options may hold besides these (the writer's `unitOf`).
 * @returns The settings.
 * @throws {@link ConfigurationError} naming the field and the bad value.
 * @internal
 * @example
 * ```ts
 * changeFeedsSettings({ pageSize: 0 }); // ConfigurationError: pageSize: must be an integer from 1 to 1000 (got 0)
 * ```
 */
export function changeFeedsSettings(
  options: unknown,
  prefix = '',
  alsoKnown: readonly string[] = [],
): ChangeFeedsSettings {
  const known = [...alsoKnown, ...KNOWN];
  const given = optionsObject(
    options,
    prefix === '' ? 'options' : prefix.slice(0, -1),
    'configuration',
    known,
  );
  refuseUnknownKeys(given, 'configuration', known, prefix);
  const integer = (field: string, fallback: number, min: number, max: number): number => {
    const value = given[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigurationError(`${prefix}${field}`, value, `must be an integer from ${min} to ${max}`);
    }
    return value;
  };
  const share = (field: string, fallback: number): number => {
    const value = given[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new ConfigurationError(`${prefix}${field}`, value, 'must be a number from 0 to 1');
    }
    return value;
  };
  const day = 86_400_000;
  const sides = given.sides ?? ['legacy', 'medplum'];
  if (
    !Array.isArray(sides) ||
    sides.length === 0 ||
    sides.some((side) => side !== 'legacy' && side !== 'medplum')
  ) {
    throw new ConfigurationError(
      `${prefix}sides`,
      sides,
      "must be a non-empty array of 'legacy' and 'medplum'",
    );
  }
  const secret = given.restHookSecret;
  if (secret !== undefined && (typeof secret !== 'string' || secret === '')) {
    throw new ConfigurationError(`${prefix}restHookSecret`, secret, 'must be a non-empty string', true);
  }
  const since = given.medplumSince;
  if (
    since !== undefined &&
    (typeof since !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(since) || Number.isNaN(Date.parse(since)))
  ) {
    throw new ConfigurationError(`${prefix}medplumSince`, since, 'must be an ISO 8601 instant');
  }
  return {
    pollIntervalMs: integer('pollIntervalMs', 5000, 1, day),
    pageSize: integer('pageSize', 100, 1, 1000),
    maxPagesPerPoll: integer('maxPagesPerPoll', 50, 1, 100_000),
    overlapMs: integer('overlapMs', 2000, 0, day),
    legacyOverlapMs: integer('legacyOverlapMs', 60_000, 0, day),
    leaseMs: integer('leaseMs', 30_000, 1, day),
    owner: ownerOf(given.owner, `${prefix}owner`),
    existenceCheckIntervalMs: integer('existenceCheckIntervalMs', 300_000, 0, 30 * day),
    existenceCheckMaxMissingShare: share('existenceCheckMaxMissingShare', 0.1),
    existenceCheckMinMissing: integer('existenceCheckMinMissing', 10, 0, 1_000_000_000),
    sides: [...new Set(sides as Side[])],
    restHookSecret: secret,
    medplumSince: since === undefined ? undefined : new Date(since).toISOString(),
  };
}

/**
 * The feed options of an object that holds other options too (the writer's `feeds`, with its
 * `unitOf`): each known option read from it, getters and prototypes included, as the checks read
 * them.
 *
 * @param options - The object.
 * @returns Its feed options.
 * @example
 * ```ts
 * const feedOptions = feedOptionsOf(writerOptions.feeds);
 * ```
 */
export function feedOptionsOf(options: Readonly<Record<string, unknown>>): ChangeFeedsOptions {
  const picked: Record<string, unknown> = {};
  for (const key of KNOWN) if (options[key] !== undefined) picked[key] = options[key];
  return picked;
}
