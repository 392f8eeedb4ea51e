import { createHash, createHmac } from 'node:crypto';
import { ConfigurationError } from '../errors.ts';
import { anObject, refuse, refuseUnknownKeys } from '../option-checks.ts';

/**
 * How {@link valueHash} hashes.
 *
 * @example
 * ```ts
 * const options: ValueHashOptions = { key: process.env.DIVERGENCE_HASH_KEY };
 * ```
 */
export interface ValueHashOptions {
  /**
   * A secret for an HMAC. Without one, anyone holding the logs can confirm a guess of a value
   * by hashing it: a birth date is one of about 40,000 days, a gender one of four codes, a
   * phone number one of some billions — all enumerable in seconds. With a key kept out of the
   * log store the hashes cannot be reversed by guessing; whoever holds the key can still hash a
   * candidate value and compare. Hashes made under different keys do not compare, so rotating
   * the key breaks comparison across the rotation.
   * @default undefined (a plain, unkeyed SHA-256)
   */
  readonly key?: string | Uint8Array | undefined;
}

/** Hex digits kept: 64 bits tell two values apart in a log without naming either. */
const HEX_DIGITS = 16;

/**
 * A short, log-safe fingerprint of a JSON value: SHA-256 (or HMAC-SHA-256 with a key) of the
 * value's canonical JSON (object keys sorted at every level, nothing dropped), truncated to 64
 * bits. Equal values give equal hashes regardless of key order, so two sides of a divergence can
 * be compared without logging either. Without a key the hash of a low-entropy value (a birth
 * date, a gender) can be reversed by trying every candidate: pass a secret `key` wherever the
 * logs may be read by people who must not see PHI.
 *
 * @param value - Any JSON value (`undefined` hashes as `null`).
 * @param options - An optional HMAC key.
 * @returns `sha256:` or, with a key, `hmac-sha256:`, then 16 hex digits.
 * @throws {@link ConfigurationError} naming `options`, an unknown option or `key`.
 * @example
 * ```ts
 * valueHash('1980-05-06'); // 'sha256:…' — guessable: enumerate dates
 * valueHash('1980-05-06', { key: secret }); // 'hmac-sha256:…' — not without the key
 * valueHash({ a: 1, b: 2 }) === valueHash({ b: 2, a: 1 }); // true
 * ```
 */
export function valueHash(value: unknown, options?: ValueHashOptions): string {
  if (options !== undefined) {
    // Only the type is shown: a key passed in place of the options must not reach a log.
    if (!anObject.test(options))
      refuse(
        'configuration',
        'options',
        (options as unknown) === null ? null : typeof options,
        'must be an object such as { key }',
      );
    refuseUnknownKeys(options, 'configuration', ['key']);
  }
  const json = canonicalJson(value);
  const key = options?.key;
  if (key === undefined) {
    return `sha256:${createHash('sha256').update(json).digest('hex').slice(0, HEX_DIGITS)}`;
  }
  if ((typeof key !== 'string' && !(key instanceof Uint8Array)) || key.length === 0) {
    // The key's value is never put in the message.
    throw new ConfigurationError('key', typeof key, 'must be a non-empty string or Uint8Array');
  }
  return `hmac-sha256:${createHmac('sha256', key).update(json).digest('hex').slice(0, HEX_DIGITS)}`;
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const source = v as Record<string, unknown>;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(source).sort()) {
      Object.defineProperty(sorted, k, {
        value: source[k],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return sorted;
  });
}
