import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigurationError, DualWriteError, InvalidInputError } from '../errors.ts';
import { valueFreeError } from '../error-values.ts';
import {
  anObject,
  checkOptions,
  checkValue,
  nonEmptyString,
  positiveInteger,
  positiveMs,
  trueOrFalse,
  type Rule,
} from '../option-checks.ts';
import { ConsoleAccess, isLoopback, sessionTag, type ConsoleSession } from './console-access.ts';
import type { ConsoleJournal, ConsoleOperator, ConsoleSelection } from './console-operator.ts';
import {
  confirmPage,
  dashboardPage,
  diffPage,
  inputErrorPage,
  loginPage,
  messagePage,
} from './console-page.ts';
import { BacklogRecorder, DEFAULT_BACKLOG_HISTORY } from '../journal/backlog-recorder.ts';
import { readConsoleView } from './console-view.ts';
import { recordDiff, type RecordDiff, type RecordSources } from './record-diff.ts';

/**
 * What {@link startConsole} serves, and to whom.
 *
 * @example
 * ```ts
 * const options: ConsoleOptions = { operator, journal: store, host: '127.0.0.1', port: 4780 };
 * ```
 */
export interface ConsoleOptions<L = unknown> {
  /** The operator API the console reads and acts through (`Operator` is one). */
  readonly operator: ConsoleOperator;
  /** The journal: the charts' history, the backlog samples, the audit events (a `SyncStore`). */
  readonly journal: ConsoleJournal;
  /**
   * The address to listen on. Anything but a loopback address needs `token`.
   * @default '127.0.0.1'
   */
  readonly host?: string | undefined;
  /**
   * The port; `0` takes any free one (see {@link ConsoleServer.url}).
   * @default 4780
   */
  readonly port?: number | undefined;
  /**
   * The access token (at least 16 characters): when given, or when `host` is not loopback,
   * every request needs it (signed in once per browser session, or `Authorization: Bearer`).
   */
  readonly token?: string | undefined;
  /**
   * How far back the charts reach.
   * @default 86400000 (a day)
   */
  readonly historyMs?: number | undefined;
  /**
   * The charts' step: one backlog sample and one lag point per unit per step.
   * @default 60000
   */
  readonly stepMs?: number | undefined;
  /**
   * Record the backlog into the journal every step while the console runs (every instance
   * and console recording share one series; see `SyncStore.recordBacklog`).
   * @default true
   */
  readonly recordBacklog?: boolean | undefined;
  /**
   * How long backlog samples are kept.
   * @default 2592000000 (30 days)
   */
  readonly keepMs?: number | undefined;
  /**
   * Where one record's two copies are read from, for its diff (a button on each dead letter).
   * Without it the console offers no diff.
   */
  readonly records?: RecordSources<L> | undefined;
  /**
   * Show the values in a record's diff. Off, a diff shows the paths that differ and how, never
   * a value; on, the person who asks for one record's diff sees that record's values (the
   * request is audited; values are never logged or stored).
   * @default false
   */
  readonly revealValues?: boolean | undefined;
  /**
   * How many open dead letters the page lists (the oldest).
   * @default 500
   */
  readonly deadLetterLimit?: number | undefined;
}

/**
 * A running console.
 *
 * @example
 * ```ts
 * await using console = await startConsole({ operator, journal: store });
 * process.stdout.write(`${console.url}\n`);
 * ```
 */
export interface ConsoleServer {
  /** Where it listens, e.g. `http://127.0.0.1:4780/`. */
  readonly url: string;
  /** Whether every request needs the access token. */
  readonly requiresToken: boolean;
  /** Stops listening and recording. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const OPTION_RULES = {
  operator: anObject,
  journal: anObject,
  host: nonEmptyString,
  port: {
    test: (value: unknown): value is number =>
      typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65_535,
    problem: 'must be an integer from 0 to 65535',
  } satisfies Rule<number>,
  token: {
    test: (value: unknown): value is string => typeof value === 'string' && value.length >= 16,
    problem: 'must be a string of at least 16 characters',
    secret: true,
  } satisfies Rule<string>,
  historyMs: positiveMs,
  stepMs: positiveMs,
  recordBacklog: trueOrFalse,
  keepMs: positiveMs,
  deadLetterLimit: positiveInteger,
  records: anObject,
  revealValues: trueOrFalse,
} satisfies Record<keyof ConsoleOptions, Rule>;

/** The most a form may send: a few fields. */
const MAX_BODY = 16 * 1024;

const SECURITY_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // Not no-referrer: with it a browser sends `Origin: null` on a form's POST, which the CSRF check refuses.
  'Referrer-Policy': 'same-origin',
  'Content-Security-Policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

/**
 * Serves the web console: a page of units × stages with each readiness gate and its evidence,
 * the outbox backlog and mirror lag over time, dead letters grouped by reason (retry and
 * discard behind a confirmation), the latest reconciliation and the backfill jobs. Bound to
 * 127.0.0.1 by default; bound elsewhere it needs `token`. Every action is an operator call,
 * recorded in the journal as a `console-action` event (action, ids, outcome, a one-way session
 * tag, the client's address). Pages carry ids, units, types, counts and error names, never a
 * field of a record; nothing is logged.
 *
 * @param options - What to serve, where, and to whom.
 * @returns The running console.
 * @throws {@link ConfigurationError} naming the option at fault (a non-loopback `host` without
 *   `token` included); the listen error when the port is taken.
 * @example
 * ```ts
 * const operator = new Operator({ store, mappings, plan });
 * const console = await startConsole({ operator, journal: store, port: 4780 });
 * process.stdout.write(`console at ${console.url}\n`);
 * // … later
 * await console.close();
 * ```
 */
export async function startConsole<L>(options: ConsoleOptions<L>): Promise<ConsoleServer> {
  const given = checkOptions(options, 'options', 'configuration', OPTION_RULES);
  checkValue(given.operator, anObject, 'operator', 'configuration');
  checkValue(given.journal, anObject, 'journal', 'configuration');
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  if (!loopback && options.token === undefined)
    throw new ConfigurationError(
      'token',
      undefined,
      `is required to listen on ${host}, which is not a loopback address`,
    );
  const settings = {
    historyMs: options.historyMs ?? 86_400_000,
    stepMs: options.stepMs ?? 60_000,
    deadLetterLimit: options.deadLetterLimit ?? 500,
  };
  const access = new ConsoleAccess({
    token: options.token,
    requireToken: options.token !== undefined || !loopback,
    loopbackOnly: loopback,
  });
  const handler = new ConsoleHandler(options.operator, options.journal, access, {
    ...settings,
    records: options.records,
    revealValues: options.revealValues ?? false,
  });
  const server = createServer((request, response) => {
    // What failed may not be the library's (a legacy adapter's read, for a diff): the page shows
    // the value-free copy.
    handler.handle(request, response).catch((err: unknown) => {
      const error = messageOf(err);
      if (!response.headersSent) response.writeHead(500, SECURITY_HEADERS);
      response.end(messagePage('Error', `The console failed to answer: ${error}`));
    });
  });
  await listen(server, host, options.port ?? 4780);
  const recorder =
    options.recordBacklog === false
      ? undefined
      : new BacklogRecorder(
          options.journal,
          { stepMs: settings.stepMs, keepMs: options.keepMs ?? DEFAULT_BACKLOG_HISTORY.keepMs },
          // A failed recording is tried again at the next step; the page shows the gap.
          () => undefined,
        );
  recorder?.start();
  const { port } = server.address() as AddressInfo;
  const close = async () => {
    await recorder?.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    requiresToken: access.requireToken,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Listens, rejecting with the listen error (a port taken, an address not on this machine). */
function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The actions a form may post, and what each confirms. */
const ACTIONS = {
  retry: (f: Readonly<Record<string, string>>) => `Queue dead letter ${f.id ?? '?'} for another mirror?`,
  discard: (f: Readonly<Record<string, string>>) =>
    `Discard dead letter ${f.id ?? '?'}? It is kept, closed, with your note; nothing is mirrored.`,
  'retry-reason': (f: Readonly<Record<string, string>>) =>
    `Queue every open dead letter whose reason is ${f.reason ?? '?'} for another mirror?`,
  'discard-reason': (f: Readonly<Record<string, string>>) =>
    `Discard every open dead letter whose reason is ${f.reason ?? '?'}? They are kept, closed, with your note.`,
} as const;
type ActionName = keyof typeof ACTIONS;

/** The action a form names, when it is one of {@link ACTIONS} (own keys: `toString` is none). */
function knownAction(name: string | undefined): ActionName | 'unknown' {
  return name !== undefined && Object.hasOwn(ACTIONS, name) ? (name as ActionName) : 'unknown';
}

/** How the handler reads pages and diffs. */
interface HandlerSettings {
  readonly historyMs: number;
  readonly stepMs: number;
  readonly deadLetterLimit: number;
  readonly records: RecordSources<unknown> | undefined;
  readonly revealValues: boolean;
}

/**
 * One request being answered: its session, and the client's address taken when it arrived (a
 * socket destroyed later has none to give the audit).
 */
interface Visit {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly session: ConsoleSession;
  readonly client: string;
}

/** Answers the console's requests. */
class ConsoleHandler {
  readonly #operator: ConsoleOperator;
  readonly #journal: ConsoleJournal;
  readonly #access: ConsoleAccess;
  readonly #settings: HandlerSettings;

  constructor(
    operator: ConsoleOperator,
    journal: ConsoleJournal,
    access: ConsoleAccess,
    settings: HandlerSettings,
  ) {
    this.#operator = operator;
    this.#journal = journal;
    this.#access = access;
    this.#settings = settings;
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const client = request.socket.remoteAddress ?? 'unknown';
    if (!this.#access.hostAllowed(request)) {
      send(
        response,
        421,
        messagePage('Refused', 'This console answers requests to a loopback address only.'),
      );
      return;
    }
    const session = this.#access.session(request, response);
    const visit: Visit = { request, response, session, client };
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'POST' && path === '/login') return this.#login(visit);
    if (!this.#access.allowed(request, session)) {
      send(response, 401, loginPage(session.csrf, false));
      return;
    }
    if (request.method === 'GET' && path === '/') return this.#dashboard(response, session);
    if (request.method === 'POST' && path === '/actions') return this.#action(visit);
    if (request.method === 'POST' && path === '/diff') return this.#diff(visit);
    send(response, 404, messagePage('Not found', 'The console has no such page.'));
  }

  /**
   * The fields of a POST that may act (a same-origin form with the session's CSRF token, or a
   * bearer request), or `undefined` after refusing it — 413 for a body over 16 KiB, 403 for the
   * rest — and auditing the refusal.
   *
   * @param visit - The request.
   * @param action - What the POST is for (`unknown` for an action form: its `action` field says).
   */
  async #acceptedForm(visit: Visit, action: string): Promise<Readonly<Record<string, string>> | undefined> {
    const reading = await readForm(visit.request);
    if ('problem' in reading && reading.problem === 'too-large') {
      await this.#audit(visit, { action, outcome: 'refused', problem: 'too-large' });
      // The connection is not kept: the next request starts clean.
      visit.response.setHeader('Connection', 'close');
      send(
        visit.response,
        413,
        messagePage('Refused', `The form was too large (the console takes ${MAX_BODY / 1024} KiB at most).`),
      );
      return undefined;
    }
    const fields = 'fields' in reading ? reading.fields : undefined;
    if (fields === undefined || !this.#access.postAllowed(visit.request, visit.session, fields.csrf)) {
      await this.#audit(visit, {
        // An action form's own name only when it is one (its field is the sender's text).
        action: action === 'unknown' ? knownAction(fields?.action) : action,
        outcome: 'refused',
        problem: fields === undefined ? 'not-a-form' : 'forged',
      });
      send(
        visit.response,
        403,
        messagePage('Refused', 'The form had expired or came from another site; reload the page.'),
      );
      return undefined;
    }
    return fields;
  }

  async #dashboard(response: ServerResponse, session: ConsoleSession): Promise<void> {
    const view = await readConsoleView(this.#operator, this.#journal, this.#settings);
    const flash = session.flash;
    session.flash = undefined;
    send(
      response,
      200,
      dashboardPage(view, { csrf: session.csrf, flash, diffs: this.#settings.records !== undefined }),
    );
  }

  /** One record's diff, asked for by a POST (its ids stay out of the URL), audited. */
  async #diff(visit: Visit): Promise<void> {
    const { response } = visit;
    const form = await this.#acceptedForm(visit, 'diff');
    if (form === undefined) return;
    const records = this.#settings.records;
    if (records === undefined) {
      send(response, 404, messagePage('No diffs', 'This console reads no records.'));
      return;
    }
    const resourceType = form.resourceType ?? '';
    const legacyId = form.legacyId ?? '';
    const revealed = this.#settings.revealValues;
    let diff: RecordDiff;
    try {
      diff = await recordDiff(records, resourceType, legacyId);
    } catch (err) {
      // Bad input is the asker's: a 400 naming the field, not a failure of the console. Any
      // other failure is audited as a diff asked for, then answered by the 500 page.
      if (!(err instanceof InvalidInputError)) {
        await this.#audit(visit, {
          action: 'diff',
          resourceType,
          legacyId,
          revealed,
          outcome: 'failed',
          error: valueFreeError(err).name,
        });
        throw err;
      }
      await this.#audit(visit, {
        action: 'diff',
        outcome: 'refused',
        error: err.name,
        field: err.field,
      });
      send(response, 400, inputErrorPage(err));
      return;
    }
    await this.#audit(visit, {
      action: 'diff',
      resourceType,
      legacyId,
      revealed,
      differences: diff.differences.length,
      outcome: 'done',
    });
    send(response, 200, diffPage(diff, revealed));
  }

  async #login(visit: Visit): Promise<void> {
    const { response, session } = visit;
    const form = await this.#acceptedForm(visit, 'sign-in');
    if (form === undefined) return;
    const accepted = this.#access.matches(form.token ?? '');
    await this.#audit(visit, { action: 'sign-in', outcome: accepted ? 'done' : 'refused' });
    if (!accepted) {
      send(response, 401, loginPage(session.csrf, true));
      return;
    }
    this.#access.signIn(session, response);
    redirect(response);
  }

  async #action(visit: Visit): Promise<void> {
    const { response, session } = visit;
    const form = await this.#acceptedForm(visit, 'unknown');
    if (form === undefined) return;
    const action = form.action;
    // Own keys only: `toString` is `in` every object.
    if (action === undefined || !Object.hasOwn(ACTIONS, action)) {
      send(response, 400, messagePage('Unknown action', 'The console has no such action.'));
      return;
    }
    const name = action as ActionName;
    if (form.confirm !== 'yes' || (name.startsWith('discard') && (form.note ?? '').trim() === '')) {
      send(response, 200, confirmPage(form, ACTIONS[name](form), session.csrf));
      return;
    }
    session.flash = await this.#perform(visit, name, form);
    redirect(response, '#dead-letters');
  }

  /** Does an action through the operator, audits it, and says how it went. */
  async #perform(visit: Visit, action: ActionName, form: Readonly<Record<string, string>>): Promise<string> {
    const id = form.id ?? '';
    const note = (form.note ?? '').trim();
    const selection: ConsoleSelection = { reason: form.reason ?? '' };
    const target = action.endsWith('-reason') ? { reason: selection.reason } : { deadLetter: id };
    try {
      if (action === 'retry' || action === 'discard') {
        const done =
          action === 'retry'
            ? await this.#operator.retryDeadLetter(id)
            : await this.#operator.discardDeadLetter(id, note);
        await this.#audit(visit, { action, ...target, outcome: done ? 'done' : 'closed-already' });
        const verb = action === 'retry' ? 'queued again' : 'discarded';
        return done ? `Dead letter ${id} ${verb}.` : `Dead letter ${id} was closed already.`;
      }
      const outcome =
        action === 'retry-reason'
          ? await this.#operator.retryDeadLetters(selection)
          : await this.#operator.discardDeadLetters(selection, note);
      await this.#audit(visit, {
        action,
        ...target,
        outcome: 'done',
        matched: outcome.matched,
        done: outcome.done.length,
        skipped: outcome.skipped.length,
      });
      const verb = action === 'retry-reason' ? 'queued again' : 'discarded';
      return `${outcome.done.length} of ${outcome.matched} dead letters ${verb} (${outcome.skipped.length} closed already).`;
    } catch (err) {
      await this.#audit(visit, { action, ...target, outcome: 'failed', error: valueFreeError(err).name });
      return `${action} failed: ${messageOf(err)}`;
    }
  }

  /** Records an action as a `console-action` event: what, the outcome, a session tag, the client. */
  async #audit(visit: Visit, data: Readonly<Record<string, unknown>>): Promise<void> {
    await this.#journal.appendEvent({
      type: 'console-action',
      data: { ...data, session: sessionTag(visit.session), client: visit.client },
    });
  }
}

/** Sends a page. */
function send(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, SECURITY_HEADERS);
  response.end(body);
}

/** After a POST, back to the dashboard (POST/redirect/GET: a reload does not act twice). */
function redirect(response: ServerResponse, fragment = ''): void {
  response.writeHead(303, { Location: `/${fragment}`, 'Cache-Control': 'no-store' });
  response.end();
}

/** A POST's body: an urlencoded form's fields, or why it is not one. */
type FormReading =
  { readonly fields: Readonly<Record<string, string>> } | { readonly problem: 'not-a-form' | 'too-large' };

/**
 * Reads a POST's body as an urlencoded form. A body over {@link MAX_BODY} is read to its end and
 * dropped, not cut off: leaving the loop early destroys the request and its socket, and then no
 * answer can be sent (the old code's 500, on a socket already gone). The server's
 * `requestTimeout` bounds how long a sender may keep sending.
 */
async function readForm(request: IncomingMessage): Promise<FormReading> {
  const type = request.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    request.resume();
    return { problem: 'not-a-form' };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  }
  if (size > MAX_BODY) return { problem: 'too-large' };
  // Own keys only, whatever the names: `__proto__` is a field like any other.
  const fields = Object.create(null) as Record<string, string>;
  for (const [name, value] of new URLSearchParams(Buffer.concat(chunks).toString('utf8')))
    fields[name] = value;
  return { fields };
}

/**
 * An error as a page or a flash message may show it: the library's as it is (its messages name
 * fields, ids and codes, never values); any other by its name alone. Its message follows no
 * pattern — a legacy adapter's `TypeError: Cannot convert 555-0100 to a BigInt` names the value
 * bare — so blanking quoted text is not enough (the old page showed that one in full).
 */
function messageOf(err: unknown): string {
  if (err instanceof DualWriteError) return `${err.name}: ${err.message}`;
  const copy = valueFreeError(err, { message: 'dropped' });
  // valueFreeError keeps a code only when it is a string or a number.
  const code = (copy as { code?: string | number }).code;
  return `${copy.name}${code === undefined ? '' : ` (${String(code)})`}: its message is not shown, as it may quote values`;
}
