/**
 * Finds or starts the real Medplum servers of the suite and hands their address and client
 * credentials to the test files through environment variables:
 *
 * - `MEDPLUM_BASE_URL`, `MEDPLUM_CLIENT_ID`, `MEDPLUM_CLIENT_SECRET`: a server with unlimited
 *   quotas (or whatever the caller points at);
 * - `MEDPLUM_QUOTA_BASE_URL`, `…_CLIENT_ID`, `…_CLIENT_SECRET`: a server whose FHIR quota is
 *   {@link QUOTA_POINTS} points a minute, for the quota test;
 * - `MEDPLUM_SERVER_PID`: the first server's process, for the test that stops it (`SIGSTOP`).
 *
 * Given `MEDPLUM_BASE_URL` (and its client), the suite uses that server and starts nothing; the
 * quota and stop tests then run only if their variables are given too. Otherwise it starts the
 * servers from the Medplum server box: `MEDPLUM_SERVER_BOX` when set, else
 * `../shared/medplum-server` beside the repository, else `/work/shared/medplum-server`, and stops them (dropping their
 * databases) at the end. Without either, `MEDPLUM_IT_NOT_RUN` says why, and every test of the
 * suite is reported skipped — never passed.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');

/** FHIR points a minute on the quota server: 25 writes (100 points each) a window. */
export const QUOTA_POINTS = 2500;

interface Started {
  readonly box: string;
  readonly state: string;
}
const started: Started[] = [];

export async function setup(): Promise<void> {
  if (process.env.MEDPLUM_BASE_URL !== undefined && process.env.MEDPLUM_BASE_URL !== '') {
    for (const name of ['MEDPLUM_CLIENT_ID', 'MEDPLUM_CLIENT_SECRET']) {
      if ((process.env[name] ?? '') === '')
        throw new Error(`MEDPLUM_BASE_URL is set but ${name} is not: the suite needs a client application`);
    }
    console.log(`real-Medplum suite: using the server at MEDPLUM_BASE_URL (${process.env.MEDPLUM_BASE_URL})`);
    return;
  }
  const box = serverBox();
  if (box === undefined) {
    const why =
      'neither MEDPLUM_BASE_URL nor a Medplum server box (MEDPLUM_SERVER_BOX, ../shared/medplum-server, /work/shared/medplum-server) is available';
    process.env.MEDPLUM_IT_NOT_RUN = why;
    console.log(`real-Medplum suite did NOT run: ${why}; its tests are reported skipped`);
    return;
  }
  // Per checkout: concurrent runs from different clones get their own databases and ports.
  const tag = createHash('sha256').update(repo).digest('hex').slice(0, 8);
  const [main, quota] = await Promise.all([
    startServer(box, `mdw_it_${tag}`, ['--unlimited']),
    startServer(box, `mdw_itq_${tag}`, ['--fhir-quota', String(QUOTA_POINTS)]),
  ]);
  Object.assign(process.env, main.variables);
  process.env.MEDPLUM_SERVER_PID = readFileSync(join(main.state, 'server.pid'), 'utf8').trim();
  process.env.MEDPLUM_QUOTA_BASE_URL = quota.variables.MEDPLUM_BASE_URL;
  process.env.MEDPLUM_QUOTA_CLIENT_ID = quota.variables.MEDPLUM_CLIENT_ID;
  process.env.MEDPLUM_QUOTA_CLIENT_SECRET = quota.variables.MEDPLUM_CLIENT_SECRET;
  process.env.MEDPLUM_QUOTA_POINTS = String(QUOTA_POINTS);
  console.log(`real-Medplum suite: Medplum 5.0.10 from ${box} at ${main.variables.MEDPLUM_BASE_URL}`);
}

export async function teardown(): Promise<void> {
  await Promise.all(
    started.map(async ({ box, state }) => {
      // A server the stop test left stopped must be resumed to shut down gracefully.
      const pidFile = join(state, 'server.pid');
      if (existsSync(pidFile)) {
        try {
          process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGCONT');
        } catch {
          // Already gone.
        }
      }
      await run(join(box, 'stop'), ['--state', state, '--drop'], { env: boxEnv() }).catch(
        (error: unknown) => {
          console.error(`stopping the Medplum server of ${state} failed: ${String(error)}`);
        },
      );
    }),
  );
}

/** `MEDPLUM_SERVER_BOX` when set (and only it), else the usual places. */
function serverBox(): string | undefined {
  const given = process.env.MEDPLUM_SERVER_BOX;
  const candidates =
    given !== undefined && given !== ''
      ? [given]
      : [resolve(repo, '../shared/medplum-server'), '/work/shared/medplum-server'];
  return candidates.find((dir) => existsSync(join(dir, 'start')));
}

/** The box runs the server on this Node (the suite's own, new enough), whatever is on PATH. */
function boxEnv(): NodeJS.ProcessEnv {
  return { ...process.env, MEDPLUM_NODE: process.env.MEDPLUM_NODE ?? process.execPath };
}

async function startServer(
  box: string,
  db: string,
  flags: readonly string[],
): Promise<{ state: string; variables: Record<string, string> }> {
  const state = join(repo, '.tmp', `medplum-${db}`);
  const port = await freePort();
  const entry = { box, state };
  started.push(entry);
  const { stdout } = await run(
    join(box, 'start'),
    ['--db', db, '--port', String(port), '--state', state, ...flags],
    { env: boxEnv(), encoding: 'utf8' },
  );
  const variables: Record<string, string> = {};
  for (const line of stdout.trim().split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) variables[line.slice(0, at)] = line.slice(at + 1);
  }
  if (variables.MEDPLUM_BASE_URL === undefined)
    throw new Error(`the Medplum server box printed no MEDPLUM_BASE_URL for ${db}`);
  return { state, variables };
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
