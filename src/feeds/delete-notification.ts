import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FeedTally } from './feed-report.ts';
import { journalInbound, type ChangeFeedsDeps } from './inbound-change.ts';

/**
 * A rest-hook request from a Medplum `Subscription`, as your HTTP framework received it.
 *
 * @example
 * ```ts
 * app.post('/medplum-hook', express.text({ type: '*\/*' }), async (req, res) => {
 *   const result = await feeds.handleRestHook({ headers: req.headers, body: req.body });
 *   res.sendStatus(result.status === 'refused' ? 401 : 200);
 * });
 * ```
 */
export interface RestHookRequest {
  /** The request headers (any case; Node's lower-cased object or a Fetch `Headers`). */
  readonly headers: Headers | Readonly<Record<string, string | readonly string[] | undefined>>;
  /**
   * The raw body as signed: text, or the bytes as received (a `Buffer` from `express.raw()`).
   * A delete notification's body is `{}`.
   */
  readonly body: string | Uint8Array;
}

/**
 * What `writer.handleRestHook` did with a notification.
 *
 * - `queued` — a delete towards the legacy system was journaled.
 * - `ignored` — not a delete notification of a mapped type (creates and updates come through
 *   polling), or a delete of a resource that exists after all, or one with no link.
 * - `skipped` — the record's unit is in a stage that mirrors nothing, its unit is unknown, or
 *   the legacy copy is already gone (an echo).
 * - `refused` — the signature is missing or wrong (with `restHookSecret`).
 *
 * @example
 * ```ts
 * const result: RestHookResult = { status: 'queued' };
 * ```
 */
export interface RestHookResult {
  /** The outcome. */
  readonly status: 'queued' | 'ignored' | 'skipped' | 'refused';
}

/**
 * Handles one Medplum rest-hook notification. Medplum (checked against its documentation and
 * server source) calls a Subscription's endpoint for a delete only when the Subscription has
 * the extension `https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction`
 * with `valueCode: 'delete'`; the call is a POST whose body is `{}` and whose header
 * `X-Medplum-Deleted-Resource` is `<Type>/<id>` (with `X-Medplum-Interaction: delete`). With a
 * `subscription-secret` extension, `X-Signature` is the hex HMAC-SHA256 of the body.
 *
 * The notification carries only the id, so the record is found through its link. Delivery is
 * at least once and may be lost after Medplum's retries: the existence check is what
 * guarantees a delete is seen; this handler only makes it prompt.
 *
 * @param deps - Sides, store, mappings, routing.
 * @param request - The notification.
 * @param secret - The Subscription's secret, when signatures are checked.
 * @param tally - Where outcomes are counted.
 * @returns What was done.
 * @throws What the store or Medplum threw: answer 5xx so Medplum retries.
 * @internal
 * @example
 * ```ts
 * await handleDeleteNotification(deps, { headers, body }, secret, tally);
 * ```
 */
export async function handleDeleteNotification<L>(
  deps: ChangeFeedsDeps<L>,
  request: RestHookRequest,
  secret: string | undefined,
  tally: FeedTally,
): Promise<RestHookResult> {
  if (secret !== undefined && !signedBy(request, secret)) return { status: 'refused' };
  const deleted = header(request.headers, 'x-medplum-deleted-resource');
  const [resourceType, medplumId, extra] = deleted?.split('/') ?? [];
  if (resourceType === undefined || medplumId === undefined || medplumId === '' || extra !== undefined)
    return { status: 'ignored' };
  if (!deps.mappings.has(resourceType)) return { status: 'ignored' };
  const link = await deps.store.getLinkByMedplumId(resourceType, medplumId);
  if (link === undefined) return { status: 'ignored' };
  // An unsigned notification is a claim, not a fact: Medplum must confirm the resource is gone.
  if ((await deps.medplum.read(resourceType, medplumId)) !== undefined) return { status: 'ignored' };
  const queued = tally.queued;
  await journalInbound(
    deps,
    { source: 'medplum', resourceType, legacyId: link.legacyId, kind: 'delete' },
    tally,
  );
  if (tally.queued === queued) return { status: 'skipped' };
  deps.notify();
  return { status: 'queued' };
}

function signedBy(request: RestHookRequest, secret: string): boolean {
  const given = header(request.headers, 'x-signature');
  if (given === undefined) return false;
  const expected = createHmac('sha256', secret).update(request.body).digest();
  const actual = Buffer.from(given, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function header(headers: RestHookRequest['headers'], name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return typeof value === 'string' ? value : value?.[0];
}
