/**
 * The Medplum server box (a real Medplum 5.0.10 that starts in seconds; see its README): where
 * it is, and starting and stopping its servers. Used by the real-Medplum suite's global setup
 * and by the bench's real-server rows.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository's root. */
export const REPO = resolve(import.meta.dirname, '..');

/** A server started from the box: its variables (`MEDPLUM_BASE_URL`, …) and state folder. */
export interface BoxServer {
  readonly box: string;
  readonly state: string;
  readonly variables: Readonly<Record<string, string>>;
  /** The server's process id. */
  readonly pid: number;
}

/**
 * `MEDPLUM_SERVER_BOX` when set (and only it), else `../shared/medplum-server` beside the
 * repository, else `/work/shared/medplum-server`.
 *
 * @returns The box's folder, or `undefined` when there is none.
 */
export function findServerBox(): string | undefined {
  const given = process.env.MEDPLUM_SERVER_BOX;
  const candidates =
    given !== undefined && given !== ''
      ? [given]
      : [resolve(REPO, '../shared/medplum-server'), '/work/shared/medplum-server'];
  return candidates.find((dir) => existsSync(join(dir, 'start')));
}

/**
 * A database name unique to this checkout and purpose: concurrent runs from different clones
 * get their own databases.
 *
 * @param purpose - A short word (`it`, `bench`).
 * @returns The name.
 */
export function boxDatabase(purpose: string): string {
  return `mdw_${purpose}_${createHash('sha256').update(REPO).digest('hex').slice(0, 8)}`;
}

/**
 * Starts (or finds running) a server of the box on a free port.
 *
 * @param box - The box's folder.
 * @param db - Its database.
 * @param flags - Quota flags (`--unlimited`, `--fhir-quota N`).
 * @returns The server.
 */
export async function startBoxServer(box: string, db: string, flags: readonly string[]): Promise<BoxServer> {
  const state = join(REPO, '.tmp', `medplum-${db}`);
  const port = await freePort();
  const { stdout } = await run(
    join(box, 'start'),
    ['--db', db, '--port', String(port), '--state', state, ...flags],
    {
      env: boxEnv(),
      encoding: 'utf8',
    },
  );
  const variables: Record<string, string> = {};
  for (const line of stdout.trim().split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) variables[line.slice(0, at)] = line.slice(at + 1);
  }
  if (variables.MEDPLUM_BASE_URL === undefined)
    throw new Error(`the Medplum server box printed no MEDPLUM_BASE_URL for ${db}`);
  return { box, state, variables, pid: Number(readFileSync(join(state, 'server.pid'), 'utf8').trim()) };
}

/**
 * Stops a server of the box and drops its database, resuming it first if a test stopped it.
 *
 * @param server - The server.
 */
export async function stopBoxServer(server: BoxServer): Promise<void> {
  try {
    process.kill(server.pid, 'SIGCONT');
  } catch {
    // Already gone.
  }
  await run(join(server.box, 'stop'), ['--state', server.state, '--drop'], { env: boxEnv() }).catch(
    (error: unknown) => {
      console.error(`stopping the Medplum server of ${server.state} failed: ${String(error)}`);
    },
  );
}

/** The box runs the server on this Node (new enough), whatever is on PATH. */
function boxEnv(): NodeJS.ProcessEnv {
  return { ...process.env, MEDPLUM_NODE: process.env.MEDPLUM_NODE ?? process.execPath };
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

/**
 * A new project on a Medplum server with a client application of its own, created by the
 * server box's seeded super admin (`admin@example.com`; test servers only): a new user, so a
 * FHIR quota window of its own — a test or a bench row that measures the quota starts on a
 * fresh window, whatever ran before it on the server.
 *
 * @param baseUrl - The server (`http://127.0.0.1:8103/`).
 * @param projectName - The new project's name.
 * @returns The client application's id and secret.
 */
export async function newBoxProject(
  baseUrl: string,
  projectName: string,
): Promise<{ readonly clientId: string; readonly clientSecret: string }> {
  const [first] = await newBoxProjectClients(baseUrl, projectName, 1);
  if (first === undefined) throw new Error('no client application was created');
  return first;
}

/**
 * A new project as {@link newBoxProject} makes, with `count` client applications: each one a
 * user of its own in the same project (the same resources), so each has a FHIR quota window of
 * its own (a writer's and a backfill's client).
 *
 * @param baseUrl - The server.
 * @param projectName - The new project's name.
 * @param count - How many client applications.
 * @returns Each client application's id and secret.
 */
export async function newBoxProjectClients(
  baseUrl: string,
  projectName: string,
  count: number,
): Promise<{ readonly clientId: string; readonly clientSecret: string }[]> {
  const post = async (
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<unknown> => {
    const response = await fetch(new URL(path, baseUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const verifier = `box-${randomUUID()}${randomUUID()}`;
  const { login } = (await post('auth/login', {
    email: 'admin@example.com',
    password: 'medplum_admin',
    projectId: 'new',
    codeChallenge: verifier,
    codeChallengeMethod: 'plain',
    scope: 'openid',
  })) as { login: string };
  const { code } = (await post('auth/newproject', { login, projectName })) as { code: string };
  const tokenResponse = await fetch(new URL('oauth2/token', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier }),
  });
  if (!tokenResponse.ok) throw new Error(`POST oauth2/token: ${tokenResponse.status}`);
  const token = (await tokenResponse.json()) as { access_token: string; project: { reference: string } };
  const projectId = token.project.reference.split('/')[1] ?? '';
  const apps: { readonly clientId: string; readonly clientSecret: string }[] = [];
  for (let i = 0; i < count; i++) {
    const app = (await post(
      `admin/projects/${projectId}/client`,
      { name: i === 0 ? projectName : `${projectName}-${String(i + 1)}` },
      { authorization: `Bearer ${token.access_token}` },
    )) as { id: string; secret: string };
    apps.push({ clientId: app.id, clientSecret: app.secret });
  }
  return apps;
}
