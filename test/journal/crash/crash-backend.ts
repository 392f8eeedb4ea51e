/**
 * Where a crash-test run keeps its journal and legacy table: PGlite data directories, or a
 * PostgreSQL server with a schema and table of its own. The writer processes open it; the
 * parent opens it again to check the end state once no writer process is alive (PGlite is
 * single-process).
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { PostgresStore, sqlClientFromPg, sqlClientFromPglite, type SqlClient } from '../../../src/index.ts';

/**
 * A run's databases, as passed to the writer processes. On PGlite the journal and the legacy
 * table live in two data directories (so the writer journals and holds each intent before the
 * legacy write); on PostgreSQL they share one pool, which makes the writer use a transactional
 * outbox (the legacy write and its entry commit in one transaction).
 */
export type CrashBackend =
  | { readonly kind: 'pglite'; readonly storeDir: string; readonly legacyDir: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema: string; readonly table: string };

/** The journal and the legacy table, open. */
export interface OpenBackend {
  readonly store: PostgresStore;
  readonly sql: SqlClient;
  readonly table: string;
  close(): Promise<void>;
}

/**
 * Opens the journal (migrating it) and the legacy database.
 *
 * @param backend - The run's databases.
 * @returns Them, open.
 */
export async function openBackend(backend: CrashBackend): Promise<OpenBackend> {
  if (backend.kind === 'pglite') {
    const store = await PostgresStore.openEmbedded({ dataDir: backend.storeDir });
    const legacy = await PGlite.create(backend.legacyDir);
    return {
      store,
      sql: sqlClientFromPglite(legacy),
      table: 'patients',
      close: async () => {
        await store.close();
        await legacy.close();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: backend.url, max: 6 });
  const sql = sqlClientFromPg(pool);
  const store = await PostgresStore.open({ sql, schema: backend.schema });
  return {
    store,
    sql,
    table: backend.table,
    close: async () => {
      await store.close();
      await pool.end();
    },
  };
}
