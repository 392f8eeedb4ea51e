/**
 * Medplum as the demo finds it: the library's in-process HTTP FHIR test server with injected
 * faults, or a real Medplum project at `MEDPLUM_BASE_URL` with `MEDPLUM_CLIENT_ID` and
 * `MEDPLUM_CLIENT_SECRET`. (The legacy database is `legacy-database.ts`.)
 */
import type { MedplumClient } from '@medplum/core';
import { createMedplumClient } from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';

/** Medplum: the client the writer uses, a separate one for staff using the Medplum app. */
export interface MedplumSystem {
  readonly medplum: MedplumClient;
  /** A second client: writes made directly in Medplum, behind the writer's back. */
  readonly app: MedplumClient;
  /** The in-process server, when there is no real Medplum (its faults can be steered). */
  readonly server: FhirTestServer | undefined;
  readonly where: string;
}

/**
 * Opens Medplum: a real project when `MEDPLUM_BASE_URL` is set, else the in-process FHIR server
 * with the failures a real deployment sees (overload, Medplum's transient serialisation 409s,
 * dropped connections, a rate limit, an HTML 502 from a proxy).
 *
 * @returns The writer's client, the app's client and the server.
 */
export async function openMedplum(): Promise<MedplumSystem> {
  const baseUrl = process.env.MEDPLUM_BASE_URL;
  if (baseUrl !== undefined && baseUrl !== '') {
    const login = async (): Promise<MedplumClient> => {
      const client = createMedplumClient({ baseUrl });
      await client.startClientLogin(
        process.env.MEDPLUM_CLIENT_ID ?? '',
        process.env.MEDPLUM_CLIENT_SECRET ?? '',
      );
      return client;
    };
    return { medplum: await login(), app: await login(), server: undefined, where: `Medplum at ${baseUrl}` };
  }
  const server = await startFhirTestServer({ seed: 7 });
  server.faults
    .failShare(0.06, 503)
    .serializationFailureShare(0.03)
    .dropShare(0.015)
    // One 429: its RateLimit header says the quota is spent for 1 s, and every request of the
    // writer waits for that reset (a quota is the user's, not the request's).
    .failNext(1, 429, { rateLimitResetSeconds: 1 })
    .htmlBadGatewayNext(2);
  return {
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    app: createMedplumClient({ baseUrl: server.baseUrl }),
    server,
    where: 'in-process FHIR server (fhir-router) with injected faults',
  };
}

/**
 * Runs `task` over `items` with at most `limit` in flight.
 *
 * @param items - The items.
 * @param limit - Most tasks at once.
 * @param task - What to do with one.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
