/**
 * Finds or starts the real Medplum servers of the suite and hands their address and client
 * credentials to the test files through environment variables:
 *
 * - `MEDPLUM_BASE_URL`, `MEDPLUM_CLIENT_ID`, `MEDPLUM_CLIENT_SECRET`: a server with unlimited
 *   quotas (or whatever the caller points at);
 * - `MEDPLUM_QUOTA_BASE_URL`, `…_CLIENT_ID`, `…_CLIENT_SECRET`, `MEDPLUM_QUOTA_POINTS`: a server
 *   whose FHIR quota is {@link QUOTA_POINTS} points a minute, for the quota tests, and
 *   `MEDPLUM_QUOTA_NEW_PROJECTS` = `1`: a test may create a project of its own there (a new
 *   user, so a fresh quota window);
 * - `MEDPLUM_DEFAULT_QUOTA_BASE_URL`, `…_CLIENT_ID`, `…_CLIENT_SECRET`: a server with Medplum's
 *   default quotas, for the demo;
 * - `MEDPLUM_SERVER_PID`: the first server's process, for the test that stops it (`SIGSTOP`).
 *
 * Given `MEDPLUM_BASE_URL` (and its client), the suite uses that server and starts nothing; the
 * quota, demo and stop tests then run only if their variables are given too. Otherwise it starts the
 * servers from the Medplum server box (see `findServerBox`) and stops them, dropping their
 * databases, at the end. Without either, `MEDPLUM_IT_NOT_RUN` says why, and every test of the
 * suite is reported skipped — never passed.
 */
import { boxDatabase, findServerBox, startBoxServer, stopBoxServer, type BoxServer } from './server-box.ts';

/** FHIR points a minute on the quota server: 25 writes (100 points each) a window. */
export const QUOTA_POINTS = 2500;

const started: BoxServer[] = [];

export async function setup(): Promise<void> {
  if (process.env.MEDPLUM_BASE_URL !== undefined && process.env.MEDPLUM_BASE_URL !== '') {
    for (const name of ['MEDPLUM_CLIENT_ID', 'MEDPLUM_CLIENT_SECRET']) {
      if ((process.env[name] ?? '') === '')
        throw new Error(`MEDPLUM_BASE_URL is set but ${name} is not: the suite needs a client application`);
    }
    console.log(`real-Medplum suite: using the server at MEDPLUM_BASE_URL (${process.env.MEDPLUM_BASE_URL})`);
    return;
  }
  const box = findServerBox();
  if (box === undefined) {
    const why =
      'neither MEDPLUM_BASE_URL nor a Medplum server box (MEDPLUM_SERVER_BOX, ../shared/medplum-server, /work/shared/medplum-server) is available';
    process.env.MEDPLUM_IT_NOT_RUN = why;
    console.log(`real-Medplum suite did NOT run: ${why}; its tests are reported skipped`);
    return;
  }
  // One after the other: on a machine where the box never ran, each start creates the shared
  // `medplum` role, and two at once fail with "role already exists". Whatever started is stopped
  // at teardown, even when the other failed to.
  const results: PromiseSettledResult<BoxServer>[] = [];
  for (const [name, flags] of [
    ['it', ['--unlimited']],
    ['itq', ['--fhir-quota', String(QUOTA_POINTS)]],
    ['itd', []],
  ] as const) {
    const [result] = await Promise.allSettled([startBoxServer(box, boxDatabase(name), [...flags])]);
    results.push(result);
  }
  for (const result of results) if (result.status === 'fulfilled') started.push(result.value);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  const [main, quota, defaultQuota] = started as [BoxServer, BoxServer, BoxServer];
  Object.assign(process.env, main.variables);
  process.env.MEDPLUM_SERVER_PID = String(main.pid);
  process.env.MEDPLUM_QUOTA_BASE_URL = quota.variables.MEDPLUM_BASE_URL;
  process.env.MEDPLUM_QUOTA_CLIENT_ID = quota.variables.MEDPLUM_CLIENT_ID;
  process.env.MEDPLUM_QUOTA_CLIENT_SECRET = quota.variables.MEDPLUM_CLIENT_SECRET;
  process.env.MEDPLUM_QUOTA_POINTS = String(QUOTA_POINTS);
  process.env.MEDPLUM_DEFAULT_QUOTA_BASE_URL = defaultQuota.variables.MEDPLUM_BASE_URL;
  process.env.MEDPLUM_DEFAULT_QUOTA_CLIENT_ID = defaultQuota.variables.MEDPLUM_CLIENT_ID;
  process.env.MEDPLUM_DEFAULT_QUOTA_CLIENT_SECRET = defaultQuota.variables.MEDPLUM_CLIENT_SECRET;
  // The box's super admin can create projects: a quota test may start on a window of its own.
  process.env.MEDPLUM_QUOTA_NEW_PROJECTS = '1';
  console.log(`real-Medplum suite: Medplum 5.0.10 from ${box} at ${main.variables.MEDPLUM_BASE_URL}`);
}

export async function teardown(): Promise<void> {
  await Promise.all(started.map((server) => stopBoxServer(server)));
}
