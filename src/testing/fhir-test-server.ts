import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import {
  badRequest,
  getStatus,
  isCreated,
  normalizeOperationOutcome,
  notFound,
  unauthorized,
} from '@medplum/core';
import type { FhirRequest, FhirRouter, HttpMethod } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from './fhir-definitions.ts';
import { FaultInjector } from './fault-injector.ts';
import type { InjectedFault } from './fault-options.ts';
import type { FaultResponse } from './fault-responses.ts';
import { FhirTestRepository } from './fhir-test-repository.ts';
import { fhirRouter } from './fhir-peers.ts';

/**
 * Options of {@link startFhirTestServer}.
 * @example
 * ```ts
 * const server = await startFhirTestServer({ seed: 7, requireAuth: true });
 * ```
 */
export interface FhirTestServerOptions {
  /**
   * The port to listen on, on 127.0.0.1.
   * @default 0, any free port
   */
  readonly port?: number;
  /**
   * Seed of the fault injector's pseudo-random generator, for reproducible fault shares.
   * @default a random seed
   */
  readonly seed?: number;
  /**
   * When true, FHIR requests need `Authorization: Bearer <token>` with a token issued by this
   * server's `POST /oauth2/token` (client credentials); others get 401, which makes a
   * `MedplumClient` configured with `clientId`/`clientSecret` log in and retry.
   * @default false
   */
  readonly requireAuth?: boolean;
}

/**
 * A running FHIR test server; see {@link startFhirTestServer}.
 * @example
 * ```ts
 * const server: FhirTestServer = await startFhirTestServer();
 * await server.repo.createResource({ resourceType: 'Patient' }); // seed without HTTP
 * server.faults.dropNext(1);
 * await server.close();
 * ```
 */
export interface FhirTestServer {
  /** `http://127.0.0.1:<port>/`, the `baseUrl` for `MedplumClient`; FHIR is under `fhir/R4/`. */
  readonly baseUrl: string;
  /** The faults applied to incoming requests, changeable at any time. */
  readonly faults: FaultInjector;
  /** The data behind the server, for seeding and inspecting without HTTP. */
  readonly repo: FhirTestRepository;
  /** HTTP requests received so far, including faulted ones. */
  readonly requests: number;
  /**
   * Stops listening and closes open connections.
   * @returns A promise that settles once the server is closed.
   */
  close(): Promise<void>;
}

interface RoutedResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const FHIR_PREFIX = '/fhir/R4/';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const TOKEN_LIFETIME_SECONDS = 3600;

/**
 * Starts an HTTP FHIR R4 server backed by `@medplum/fhir-router` and an in-memory repository,
 * answering the way a Medplum server does where it matters to a client: 201 with `Location`
 * and `ETag` on create, conditional create with `If-None-Exist`, 412 on a stale
 * `If-Match: W/"<versionId>"`, 410 Gone after delete, unchanged updates keeping their version,
 * paged searches with absolute links, batches posted to the base, and
 * `application/fhir+json` everywhere. Faults can be injected at run time via `faults`.
 *
 * @param options - Port, fault seed and authentication; see {@link FhirTestServerOptions}.
 * @returns The running server; call `close()` when done.
 * @example
 * ```ts
 * const server = await startFhirTestServer();
 * const medplum = new MedplumClient({
 *   baseUrl: server.baseUrl,
 *   fetch: globalThis.fetch.bind(globalThis),
 *   maxRetries: 0,
 * });
 * const patient = await medplum.createResource({ resourceType: 'Patient' });
 * server.faults.failNext(1, 503);
 * await expect(medplum.readResource('Patient', patient.id)).rejects.toThrow();
 * await server.close();
 * ```
 */
export async function startFhirTestServer(options: FhirTestServerOptions = {}): Promise<FhirTestServer> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new TypeError(`port must be an integer from 0 to 65535, got ${inspect(options.port)}`);
  }
  const requireAuth = options.requireAuth ?? false;
  if (typeof requireAuth !== 'boolean') {
    throw new TypeError(`requireAuth must be a boolean, got ${inspect(options.requireAuth)}`);
  }
  indexFhirDefinitions();
  const faults = new FaultInjector(options.seed === undefined ? {} : { seed: options.seed });

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const repo = new FhirTestRepository({ baseUrl });
  const router = new fhirRouter.FhirRouter();
  const tokens = new Set<string>();
  let requests = 0;

  const route = (req: IncomingMessage, url: URL, body: Buffer): Promise<RoutedResponse> => {
    if (url.pathname === '/oauth2/token' && req.method === 'POST') {
      return Promise.resolve(issueToken(req, body, tokens));
    }
    if (!url.pathname.startsWith(FHIR_PREFIX)) {
      return Promise.resolve(outcomeResponse(notFound));
    }
    if (requireAuth && !tokens.has(bearerToken(req) ?? '')) {
      return Promise.resolve(outcomeResponse(unauthorized));
    }
    return handleFhir(req, url, body, router, repo, baseUrl, faults);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    serve(req, res, faults, route).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        send(res, outcomeResponse(normalizeOperationOutcome(err), 500));
      }
    });
  });

  return {
    baseUrl,
    faults,
    repo,
    get requests() {
      return requests;
    },
    close: () => closeServer(server),
  };
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  faults: FaultInjector,
  route: (req: IncomingMessage, url: URL, body: Buffer) => Promise<RoutedResponse>,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1/');
  // MedplumClient posts batches to `fhir/R4`, without the trailing slash.
  if (url.pathname === FHIR_PREFIX.slice(0, -1)) {
    url.pathname = FHIR_PREFIX;
  }
  // The whole request arrives before any fault, as it would at a server that then fails.
  const body = await readBody(req);
  const { delayMs, fault } = faults.decide(req.method ?? 'GET', faultPath(url.pathname));
  if (delayMs > 0) {
    await sleep(delayMs);
  }
  if (fault && !fault.afterProcessing) {
    applyFault(res, fault);
    return;
  }
  const response = await route(req, url, body);
  if (fault) {
    applyFault(res, fault);
    return;
  }
  send(res, response);
}

async function handleFhir(
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  router: FhirRouter,
  repo: FhirTestRepository,
  baseUrl: string,
  faults: FaultInjector,
): Promise<RoutedResponse> {
  let parsedBody: unknown;
  try {
    parsedBody = parseBody(req.headers['content-type'], body);
  } catch {
    return outcomeResponse(badRequest('Request body is not valid JSON'));
  }
  if (req.method === 'POST' && url.pathname === FHIR_PREFIX && isBatch(parsedBody)) {
    return handleBatch(req, parsedBody, router, repo, baseUrl, faults);
  }
  const request: FhirRequest = {
    method: (req.method ?? 'GET') as HttpMethod,
    url: url.pathname.slice(FHIR_PREFIX.length) + url.search,
    pathname: '',
    body: parsedBody,
    params: {},
    query: {},
    headers: req.headers,
  };
  const [outcome, resource] = await router.handleRequest(request, repo);
  return fhirResponse(outcome, resource, baseUrl);
}

/**
 * A batch, with the injector's faults applied to each entry as to a request of its own: an
 * entry faulted before processing is not processed and answers the fault; one faulted after
 * processing is processed, and answers the fault instead of its result.
 */
async function handleBatch(
  req: IncomingMessage,
  batch: Bundle,
  router: FhirRouter,
  repo: FhirTestRepository,
  baseUrl: string,
  faults: FaultInjector,
): Promise<RoutedResponse> {
  const entries = batch.entry ?? [];
  const decided = entries.map((entry) => {
    const method = entry.request?.method ?? 'GET';
    return faults.decideEntry(method, (entry.request?.url ?? '').split('?')[0] ?? '');
  });
  const processed = entries.filter((_, n) => decided[n]?.afterProcessing !== false);
  const request: FhirRequest = {
    method: 'POST',
    url: '',
    pathname: '',
    body: { ...batch, entry: processed },
    params: {},
    query: {},
    headers: req.headers,
  };
  const [outcome, answer] = await router.handleRequest(request, repo);
  if (!isBatchResponse(answer)) return fhirResponse(outcome, answer, baseUrl);
  const answered = [...(answer.entry ?? [])];
  const entry = entries.map((_, n): BundleEntry => {
    const fault = decided[n];
    const own = fault === undefined || fault.afterProcessing ? answered.shift() : undefined;
    if (fault?.response === undefined) return own ?? {};
    const faultOutcome = JSON.parse(fault.response.body) as OperationOutcome;
    return { response: { status: String(fault.response.status), outcome: faultOutcome } };
  });
  const response = fhirResponse(outcome, { ...answer, entry }, baseUrl);
  // As Medplum does, the batch's own answer announces the quota its entries ran out of.
  const rateLimit = decided.find((fault) => fault?.response?.headers.RateLimit !== undefined)?.response
    ?.headers.RateLimit;
  return rateLimit === undefined
    ? response
    : { ...response, headers: { ...response.headers, RateLimit: rateLimit } };
}

function isBatch(body: unknown): body is Bundle {
  return (
    typeof body === 'object' &&
    body !== null &&
    (body as { resourceType?: unknown }).resourceType === 'Bundle' &&
    (body as { type?: unknown }).type === 'batch'
  );
}

function isBatchResponse(resource: Resource | undefined): resource is Bundle {
  return resource?.resourceType === 'Bundle' && resource.type === 'batch-response';
}

function fhirResponse(
  outcome: OperationOutcome,
  resource: Resource | undefined,
  baseUrl: string,
): RoutedResponse {
  if (!resource) {
    return outcomeResponse(outcome);
  }
  const headers: Record<string, string> = { 'Content-Type': FHIR_JSON };
  const { versionId, lastUpdated } = resource.meta ?? {};
  if (versionId) {
    headers.ETag = `W/"${versionId}"`;
  }
  if (lastUpdated) {
    headers['Last-Modified'] = new Date(lastUpdated).toUTCString();
  }
  if (isCreated(outcome) && resource.id) {
    headers.Location = `${baseUrl}fhir/R4/${resource.resourceType}/${resource.id}`;
  }
  return { status: getStatus(outcome), headers, body: JSON.stringify(resource) };
}

// Client credentials only, any secret accepted. The token is a JWT so MedplumClient can read its expiry, unsigned
// because nothing verifies it, and without `login_id` so the client skips `GET auth/me`.
function issueToken(req: IncomingMessage, body: Buffer, tokens: Set<string>): RoutedResponse {
  const form = new URLSearchParams(body.toString('utf8'));
  const clientId = form.get('client_id') ?? basicClientId(req);
  if (form.get('grant_type') !== 'client_credentials') {
    return oauthError(400, 'unsupported_grant_type', 'Only client_credentials is supported');
  }
  if (!clientId) {
    return oauthError(400, 'invalid_request', 'Missing client_id');
  }
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'fhir-test-server',
    client_id: clientId,
    iat: now,
    exp: now + TOKEN_LIFETIME_SECONDS,
    jti: randomUUID(),
  };
  const token =
    [{ alg: 'none', typ: 'JWT' }, claims].map((part) => base64Url(JSON.stringify(part))).join('.') + '.';
  tokens.add(token);
  const payload = {
    token_type: 'Bearer',
    access_token: token,
    expires_in: TOKEN_LIFETIME_SECONDS,
    scope: 'openid',
  };
  return { status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) };
}

function oauthError(status: number, error: string, description: string): RoutedResponse {
  const body = JSON.stringify({ error, error_description: description });
  return { status, headers: { 'Content-Type': 'application/json' }, body };
}

function basicClientId(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header?.startsWith('Basic ')) {
    return undefined;
  }
  const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
  return decoded.split(':')[0];
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

function parseBody(contentType: string | undefined, body: Buffer): unknown {
  if (body.length === 0) {
    return undefined;
  }
  const text = body.toString('utf8');
  if (contentType?.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  // Any other content type is read as JSON: FHIR, JSON Patch and plain JSON all are.
  return JSON.parse(text);
}

function faultPath(pathname: string): string {
  if (pathname.startsWith(FHIR_PREFIX)) {
    return pathname.slice(FHIR_PREFIX.length);
  }
  return pathname.replace(/^\//, '');
}

function applyFault(res: ServerResponse, fault: InjectedFault): void {
  if (fault.response) {
    send(res, fault.response);
  } else {
    // No response at all: the client's fetch rejects as on a connection reset.
    res.socket?.destroy();
  }
}

function outcomeResponse(outcome: OperationOutcome, status = getStatus(outcome)): RoutedResponse {
  return { status, headers: { 'Content-Type': FHIR_JSON }, body: JSON.stringify(outcome) };
}

function send(res: ServerResponse, response: RoutedResponse | FaultResponse): void {
  if (res.destroyed) {
    return;
  }
  const body = Buffer.from(response.body, 'utf8');
  res.writeHead(response.status, { ...response.headers, 'Content-Length': String(body.length) });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function base64Url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Keep-alive connections from fetch would otherwise hold close() open for seconds.
    server.closeAllConnections();
  });
}
