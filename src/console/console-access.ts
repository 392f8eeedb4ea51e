import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';

/*
 * Who may use the console. Bound to a loopback address (the default), it answers only requests
 * whose Host names the loopback (a web page elsewhere cannot reach it through DNS rebinding);
 * bound to anything else, every request needs the access token — signed in once per browser
 * session through a form (never in a URL), or sent as `Authorization: Bearer` by a script.
 * Every POST from a browser carries the session's CSRF token, and a cross-origin POST is refused.
 */

const COOKIE = 'dualwrite_console';
/**
 * Sessions kept at most, in each of two pools: the anonymous (every first visit makes one, so
 * visitors cannot grow memory without bound; the least recently used goes first) and the signed
 * in (only the token makes one). Anonymous visitors never push a signed-in session out: with one
 * pool, 1,000 anonymous GETs evicted the oldest session, signed in or not.
 */
const MAX_SESSIONS = 1000;

/**
 * A browser session: its CSRF token, whether it signed in, and a message for its next page.
 *
 * @example
 * ```ts
 * const session = access.session(request, response);
 * if (!access.allowed(request, session)) refuse();
 * ```
 */
export interface ConsoleSession {
  /** The session id (a random cookie value). */
  readonly id: string;
  /** The token its forms carry. */
  readonly csrf: string;
  /** Signed in with the access token (see {@link ConsoleAccess.signIn}). */
  readonly signedIn: boolean;
  /** A message shown once on its next page (an action's outcome). */
  flash: string | undefined;
}

/**
 * Whether a host is a loopback address or name (`127.0.0.0/8`, `::1`, `localhost`).
 *
 * @param host - An address or name, without port.
 * @returns Whether it is loopback.
 * @example
 * ```ts
 * isLoopback('127.0.0.1'); // true
 * isLoopback('0.0.0.0'); // false
 * ```
 */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}

/** A token's digest: tokens are compared in constant time, whatever their lengths. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The hostname of a Host header (`127.0.0.1:4780` → `127.0.0.1`, `[::1]:80` → `::1`). */
function hostnameOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(header.trim());
  return match?.[1];
}

/**
 * The console's sessions, access token and CSRF checks.
 *
 * @example
 * ```ts
 * const access = new ConsoleAccess({ token, requireToken: !isLoopback(host), loopbackOnly: isLoopback(host) });
 * ```
 */
export class ConsoleAccess {
  readonly #token: Buffer | undefined;
  readonly #requireToken: boolean;
  readonly #loopbackOnly: boolean;
  /** Sessions not signed in, least recently used first. */
  readonly #anonymous = new Map<string, ConsoleSession>();
  /** Signed-in sessions, oldest first. */
  readonly #signedIn = new Map<string, ConsoleSession>();

  /**
   * @param options - The access token (if any), whether every request needs it, and whether
   *   only loopback Host headers are answered.
   */
  constructor(options: {
    readonly token: string | undefined;
    readonly requireToken: boolean;
    readonly loopbackOnly: boolean;
  }) {
    this.#token = options.token === undefined ? undefined : digest(options.token);
    this.#requireToken = options.requireToken;
    this.#loopbackOnly = options.loopbackOnly;
  }

  /**
   * Whether the request's Host may be answered: any, unless the console is bound to loopback.
   *
   * @param request - The request.
   * @returns Whether to answer it.
   */
  hostAllowed(request: IncomingMessage): boolean {
    if (!this.#loopbackOnly) return true;
    const host = hostnameOf(request.headers.host);
    return host !== undefined && isLoopback(host);
  }

  /**
   * The request's session, or a new one (its cookie set on the response).
   *
   * @param request - The request.
   * @param response - Where a new session's cookie goes.
   * @returns The session.
   */
  session(request: IncomingMessage, response: ServerResponse): ConsoleSession {
    const id = cookieOf(request.headers.cookie, COOKIE);
    if (id !== undefined) {
      const signedIn = this.#signedIn.get(id);
      if (signedIn !== undefined) return signedIn;
      const anonymous = this.#anonymous.get(id);
      if (anonymous !== undefined) {
        // Used again: it moves to the back of the eviction queue.
        this.#anonymous.delete(id);
        this.#anonymous.set(id, anonymous);
        return anonymous;
      }
    }
    return this.#open(this.#anonymous, false, response);
  }

  /**
   * Signs a session in (its form carried the token): it leaves the anonymous pool for the
   * signed-in one under a new id and CSRF token, so an id known before the sign-in (a cookie
   * planted by someone else) is worth nothing after it.
   *
   * @param session - The session that signed in.
   * @param response - Where its new cookie goes.
   * @returns The signed-in session.
   */
  signIn(session: ConsoleSession, response: ServerResponse): ConsoleSession {
    this.#anonymous.delete(session.id);
    return this.#open(this.#signedIn, true, response);
  }

  /** A new session in `pool`, the pool's oldest evicted when full; its cookie set. */
  #open(pool: Map<string, ConsoleSession>, signedIn: boolean, response: ServerResponse): ConsoleSession {
    const session: ConsoleSession = {
      id: randomBytes(24).toString('base64url'),
      csrf: randomBytes(24).toString('base64url'),
      signedIn,
      flash: undefined,
    };
    if (pool.size >= MAX_SESSIONS) {
      const oldest = pool.keys().next().value;
      if (oldest !== undefined) pool.delete(oldest);
    }
    pool.set(session.id, session);
    response.setHeader('Set-Cookie', `${COOKIE}=${session.id}; HttpOnly; SameSite=Strict; Path=/`);
    return session;
  }

  /**
   * Whether the request may see and act: always without a required token; else a signed-in
   * session or a bearer token.
   *
   * @param request - The request.
   * @param session - Its session.
   * @returns Whether it is allowed.
   */
  allowed(request: IncomingMessage, session: ConsoleSession): boolean {
    return !this.#requireToken || session.signedIn || this.#bearer(request);
  }

  /**
   * Whether the request came with a valid bearer token (a script, which sends no cookie and so
   * needs no CSRF token).
   *
   * @param request - The request.
   * @returns Whether its `Authorization` header holds the token.
   */
  #bearer(request: IncomingMessage): boolean {
    const header = request.headers.authorization;
    return header?.startsWith('Bearer ') === true && this.matches(header.slice('Bearer '.length));
  }

  /**
   * Whether a POST may act: a bearer request, or a same-origin form with the session's token.
   *
   * @param request - The request.
   * @param session - Its session.
   * @param csrf - The form's `csrf` field.
   * @returns Whether to act on it.
   */
  postAllowed(request: IncomingMessage, session: ConsoleSession, csrf: string | undefined): boolean {
    if (this.#requireToken && this.#bearer(request)) return true;
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `http://${request.headers.host ?? ''}`) return false;
    return csrf !== undefined && timingSafeEqual(digest(csrf), digest(session.csrf));
  }

  /**
   * Whether a token is the access token (in constant time).
   *
   * @param token - The token offered.
   * @returns Whether it matches.
   */
  matches(token: string): boolean {
    return this.#token !== undefined && timingSafeEqual(digest(token), this.#token);
  }

  /** Whether every request needs the token. */
  get requireToken(): boolean {
    return this.#requireToken;
  }
}

/**
 * A short, one-way name of a session for the audit trail (its id itself would let a reader of
 * the journal take it over).
 *
 * @param session - The session.
 * @returns 12 hex digits.
 * @example
 * ```ts
 * auditData.session = sessionTag(session);
 * ```
 */
export function sessionTag(session: ConsoleSession): string {
  return createHash('sha256').update(session.id).digest('hex').slice(0, 12);
}

/** One cookie's value from a Cookie header. */
function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(';') ?? []) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}
