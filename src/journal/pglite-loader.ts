import { ConfigurationError } from '../errors.ts';
import type { PgliteDatabase } from '../sql/pglite-client.ts';

/**
 * Starts PGlite, importing it only now: a service on a PostgreSQL server never loads it, and
 * needs it installed only for embedded use.
 *
 * @param dataDir - Where PGlite keeps its data; in memory when `undefined`.
 * @returns The running database, which the caller must close.
 * @throws {@link ConfigurationError} naming `@electric-sql/pglite` when it is not installed.
 * @example
 * ```ts
 * const db = await openPglite('./data/dualwrite');
 * await db.close();
 * ```
 */
export async function openPglite(
  dataDir: string | undefined,
): Promise<PgliteDatabase & { close(): Promise<void> }> {
  let pglite: typeof import('@electric-sql/pglite');
  try {
    pglite = await import('@electric-sql/pglite');
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    const error = new ConfigurationError(
      '@electric-sql/pglite',
      undefined,
      'PostgresStore.openEmbedded needs this package installed (npm install @electric-sql/pglite)',
    );
    error.cause = err;
    throw error;
  }
  return pglite.PGlite.create(dataDir);
}
