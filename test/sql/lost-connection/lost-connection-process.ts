/**
 * The process of the lost-connection test, run as `node lost-connection-process.ts <url> <schema>`.
 * It opens a `PostgresStore` on a `pg` Pool whose connections the parent's script terminates
 * (`pg_terminate_backend`) at chosen moments, makes the store's calls, and prints one JSON line
 * per call: how it ended. A process that an unhandled `'error'` event ends prints nothing more
 * and exits non-zero.
 *
 * The injected moment is deterministic: the backend of a client checked out for a transaction is
 * terminated right after its BEGIN, and the call goes on only once the client has seen its
 * connection end, so every later statement of the transaction meets a dead connection.
 */
import pg from 'pg';
import { DualWriteError, PostgresStore, sqlClientFromPg, type PgPool } from '../../../src/index.ts';
import type { PgPoolClient } from '../../../src/sql/pg-client.ts';

const [url = '', schema = ''] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: 3, application_name: `dw-lost-${process.pid}` });
const admin = new pg.Client({ connectionString: url });
await admin.connect();

async function terminate(pid: number): Promise<void> {
  await admin.query('SELECT pg_terminate_backend($1)', [pid]);
}

/** Arms the pool: the next transaction's backend is terminated right after its BEGIN. */
let terminateNextTransaction = false;

function injecting(client: pg.PoolClient): PgPoolClient {
  const query = async (...args: unknown[]): Promise<pg.QueryResult> => {
    const result = await (client.query as (...a: unknown[]) => Promise<pg.QueryResult>)(...args);
    if (args[0] === 'BEGIN' && terminateNextTransaction) {
      terminateNextTransaction = false;
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // 'end' comes after the 'error' events of a lost connection: waiting for it lets them all
      // fire while the transaction is between statements, which is what crashed drainers.
      const ended = new Promise((resolve) => client.once('end', resolve));
      await terminate(rows[0]!.pid);
      await ended;
    }
    return result;
  };
  return {
    query: query as PgPoolClient['query'],
    release: (destroy) => client.release(destroy),
    on: (event, listener) => client.on(event, listener),
    removeListener: (event, listener) => client.removeListener(event, listener),
  };
}

const injected: PgPool = {
  query: pool.query.bind(pool),
  connect: async () => injecting(await pool.connect()),
  on: (event, listener) => pool.on(event, listener),
};

function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function report(call: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
    say({ call, outcome: 'resolved' });
  } catch (err) {
    say({
      call,
      outcome: 'rejected',
      typed: err instanceof DualWriteError,
      name: (err as Error).name,
      retryable: (err as { retryable?: unknown }).retryable,
      code: (err as { code?: unknown }).code,
    });
  }
}

const store = await PostgresStore.open({ sql: sqlClientFromPg(injected), schema });
const link = {
  resourceType: 'Patient',
  legacyId: 'p-1',
  medplumId: 'm-1',
  legacyVersion: '1',
  medplumVersion: '1',
  contentHash: 'h',
  syncedAt: new Date(0).toISOString(),
};

// A transaction whose backend is terminated between BEGIN and its first statement.
terminateNextTransaction = true;
await report('saveLink, backend terminated mid-transaction', () => store.saveLink(link));

// Idle connections of the pool terminated: the pool drops them and the next call reconnects.
await store.outboxCounts();
const { rows } = await admin.query<{ pid: number }>(
  'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
  [`dw-lost-${process.pid}`],
);
for (const { pid } of rows) await terminate(pid);
while (pool.idleCount > 0) await new Promise((resolve) => setTimeout(resolve, 10));
await report('outboxCounts, after idle connections were terminated', () => store.outboxCounts());
await report('saveLink, afterwards', () => store.saveLink(link));

await admin.end();
await pool.end();
say({ survived: true });
