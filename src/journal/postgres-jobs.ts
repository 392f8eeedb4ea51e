import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import {
  mergeJobResult,
  OPEN_JOB_STATES,
  type Job,
  type JobFilter,
  type JobPageLease,
  type JobPageResult,
  type JobSpec,
  type JobState,
  type SeenCopy,
} from './job.ts';
import { iso, jsonParam, millis, optional, parseJson, type JournalTables } from './postgres-tables.ts';

/*
 * The jobs of `PostgresStore`. Every change to a job's pages runs in one transaction that first
 * locks the job's row (`FOR UPDATE`): taking, ending and completing pages of one job are
 * serialised, which is cheap (one short transaction per page of a few hundred records) and
 * makes the frontier rule (one page with an unknown end at a time) a plain check.
 */

interface JobRow {
  readonly id: string;
  readonly kind: Job['kind'];
  readonly resource_type: string;
  readonly unit: string | null;
  readonly direction: Job['direction'];
  readonly sample_size: number;
  readonly state: JobState;
  readonly cursor: string | null;
  readonly scan_complete: boolean;
  readonly pages: number;
  readonly pages_done: number;
  readonly counts: string;
  readonly samples: string;
  readonly reason: string | null;
  readonly created_at: string;
  readonly updated_at: string;
  readonly finished_at: string | null;
}

function tablesOf(tables: JournalTables): { jobs: string; pages: string; seen: string } {
  return {
    jobs: `${tables.schema}.jobs`,
    pages: `${tables.schema}.job_pages`,
    seen: `${tables.schema}.job_seen_copies`,
  };
}

const JOB_COLUMNS = `j.id::text AS id, j.kind, j.resource_type, j.unit, j.direction, j.sample_size, j.state,
  j.cursor, j.scan_complete, j.pages, j.pages_done, j.counts::text AS counts, j.samples::text AS samples,
  j.reason, ${iso('j.created_at')} AS created_at, ${iso('j.updated_at')} AS updated_at,
  ${iso('j.finished_at')} AS finished_at`;

function jobOf(row: JobRow): Job {
  return {
    id: row.id,
    kind: row.kind,
    resourceType: row.resource_type,
    unit: optional(row.unit),
    direction: row.direction,
    sampleSize: row.sample_size,
    state: row.state,
    cursor: optional(row.cursor),
    scanComplete: row.scan_complete,
    pages: row.pages,
    pagesDone: row.pages_done,
    counts: parseJson(row.counts) as Job['counts'],
    samples: parseJson(row.samples) as Job['samples'],
    reason: optional(row.reason),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: optional(row.finished_at),
  };
}

async function lockedJob(tx: SqlQueryable, tables: JournalTables, id: string): Promise<Job | undefined> {
  const { rows } = await tx.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM ${tablesOf(tables).jobs} j WHERE j.id = $1::bigint FOR UPDATE`,
    [id],
  );
  const row = rows[0];
  return row === undefined ? undefined : jobOf(row);
}

/** See `JobStore.createJob`. */
export async function createJob(sql: SqlClient, tables: JournalTables, spec: JobSpec): Promise<Job> {
  const { rows } = await sql.query<JobRow>(
    `WITH j AS (
       INSERT INTO ${tablesOf(tables).jobs} (kind, resource_type, unit, direction, sample_size)
       VALUES ($1, $2, $3, $4, $5) RETURNING *
     ) SELECT ${JOB_COLUMNS} FROM j`,
    [spec.kind, spec.resourceType, spec.unit ?? null, spec.direction, spec.sampleSize ?? 10],
  );
  const row = rows[0];
  if (row === undefined) throw new Error('INSERT … RETURNING gave no row');
  return jobOf(row);
}

/** See `JobStore.getJob`. */
export async function getJob(sql: SqlClient, tables: JournalTables, id: string): Promise<Job | undefined> {
  if (!/^\d{1,18}$/.test(id)) return undefined;
  const { rows } = await sql.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM ${tablesOf(tables).jobs} j WHERE j.id = $1::bigint`,
    [id],
  );
  const row = rows[0];
  return row === undefined ? undefined : jobOf(row);
}

/** See `JobStore.listJobs`. */
export async function listJobs(sql: SqlClient, tables: JournalTables, filter: JobFilter): Promise<Job[]> {
  const { rows } = await sql.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM ${tablesOf(tables).jobs} j
     WHERE ($1::text IS NULL OR j.kind = $1) AND ($2::text IS NULL OR j.resource_type = $2)
       AND ($3::text IS NULL OR j.unit = $3) AND ($4::text IS NULL OR j.state = $4)
     ORDER BY j.id DESC LIMIT $5`,
    [
      filter.kind ?? null,
      filter.resourceType ?? null,
      filter.unit ?? null,
      filter.state ?? null,
      filter.limit ?? null,
    ],
  );
  return rows.map(jobOf);
}

/** See `JobStore.leaseJobPage`. */
export function leaseJobPage(
  sql: SqlClient,
  tables: JournalTables,
  jobId: string,
  owner: string,
  leaseMs: number,
): Promise<JobPageLease | undefined> {
  const { jobs, pages } = tablesOf(tables);
  return sql.transaction(async (tx) => {
    const job = await lockedJob(tx, tables, jobId);
    if (job?.state !== 'running') return undefined;
    const lapsed = await tx.query<{ page: number; after: string | null; scanned: boolean; token: string }>(
      `UPDATE ${pages} p SET lease_owner = $2, lease_token = nextval('${tables.leaseTokens}'),
         lease_expires_at = clock_timestamp() + ${millis('$3')}
       WHERE (p.job_id, p.page) = (
         SELECT q.job_id, q.page FROM ${pages} q
         WHERE q.job_id = $1::bigint AND NOT q.done AND q.lease_expires_at <= clock_timestamp()
         ORDER BY q.page LIMIT 1)
       RETURNING p.page, p.after, p.scanned, p.lease_token::text AS token`,
      [jobId, owner, leaseMs],
    );
    const taken = lapsed.rows[0];
    if (taken !== undefined) {
      return {
        jobId,
        page: taken.page,
        after: optional(taken.after),
        scanned: taken.scanned,
        owner,
        token: taken.token,
      };
    }
    const open = await tx.query<{ unscanned: number; undone: number }>(
      `SELECT count(*) FILTER (WHERE NOT scanned)::integer AS unscanned, count(*) FILTER (WHERE NOT done)::integer AS undone
       FROM ${pages} WHERE job_id = $1::bigint`,
      [jobId],
    );
    const { unscanned = 0, undone = 0 } = open.rows[0] ?? {};
    if (!job.scanComplete && unscanned === 0) {
      const page = job.pages + 1;
      const inserted = await tx.query<{ token: string }>(
        `INSERT INTO ${pages} (job_id, page, after, lease_owner, lease_token, lease_expires_at)
         VALUES ($1::bigint, $2, $3, $4, nextval('${tables.leaseTokens}'), clock_timestamp() + ${millis('$5')})
         RETURNING lease_token::text AS token`,
        [jobId, page, job.cursor ?? null, owner, leaseMs],
      );
      await tx.query(`UPDATE ${jobs} SET pages = $2, updated_at = clock_timestamp() WHERE id = $1::bigint`, [
        jobId,
        page,
      ]);
      return { jobId, page, after: job.cursor, scanned: false, owner, token: inserted.rows[0]?.token ?? '' };
    }
    if (job.scanComplete && undone === 0) await finish(tx, tables, jobId, 'done');
    return undefined;
  });
}

/** Locks the job and checks the lease is current; `false` when fenced. */
async function holds(tx: SqlQueryable, tables: JournalTables, lease: JobPageLease): Promise<Job | undefined> {
  const job = await lockedJob(tx, tables, lease.jobId);
  if (job === undefined) return undefined;
  const { rows } = await tx.query(
    `SELECT 1 FROM ${tablesOf(tables).pages}
     WHERE job_id = $1::bigint AND page = $2 AND lease_token = $3::bigint AND NOT done`,
    [lease.jobId, lease.page, lease.token],
  );
  return rows.length > 0 ? job : undefined;
}

/** See `JobStore.endJobPage`. */
export function endJobPage(
  sql: SqlClient,
  tables: JournalTables,
  lease: JobPageLease,
  next: string | undefined,
): Promise<'done' | 'fenced'> {
  const { jobs, pages } = tablesOf(tables);
  return sql.transaction(async (tx) => {
    if ((await holds(tx, tables, lease)) === undefined) return 'fenced';
    const { rows } = await tx.query(
      `UPDATE ${pages} SET scanned = true WHERE job_id = $1::bigint AND page = $2 AND NOT scanned RETURNING 1`,
      [lease.jobId, lease.page],
    );
    if (rows.length > 0) {
      await tx.query(
        `UPDATE ${jobs} SET cursor = $2, scan_complete = $3, updated_at = clock_timestamp() WHERE id = $1::bigint`,
        [lease.jobId, next ?? null, next === undefined],
      );
    }
    return 'done';
  });
}

/** See `JobStore.renewJobPage`. */
export async function renewJobPage(
  sql: SqlClient,
  tables: JournalTables,
  lease: JobPageLease,
  leaseMs: number,
): Promise<'done' | 'fenced'> {
  const { rows } = await sql.query(
    `UPDATE ${tablesOf(tables).pages} SET lease_expires_at = clock_timestamp() + ${millis('$4')}
     WHERE job_id = $1::bigint AND page = $2 AND lease_token = $3::bigint AND NOT done RETURNING 1`,
    [lease.jobId, lease.page, lease.token, leaseMs],
  );
  return rows.length > 0 ? 'done' : 'fenced';
}

/** See `JobStore.completeJobPage`. */
export function completeJobPage(
  sql: SqlClient,
  tables: JournalTables,
  lease: JobPageLease,
  result: JobPageResult,
): Promise<'done' | 'fenced'> {
  const { jobs, pages } = tablesOf(tables);
  return sql.transaction(async (tx) => {
    const job = await holds(tx, tables, lease);
    if (job === undefined) return 'fenced';
    const done = await tx.query(
      `UPDATE ${pages} SET done = true WHERE job_id = $1::bigint AND page = $2 AND scanned RETURNING 1`,
      [lease.jobId, lease.page],
    );
    if (done.rows.length === 0) return 'fenced';
    const merged = mergeJobResult({ ...job, sampleSize: job.sampleSize ?? 10 }, result);
    await tx.query(
      `UPDATE ${jobs} SET counts = $2::text::jsonb, samples = $3::text::jsonb, pages_done = pages_done + 1,
         updated_at = clock_timestamp() WHERE id = $1::bigint`,
      [lease.jobId, jsonParam(merged.counts), jsonParam(merged.samples)],
    );
    const open = await tx.query(`SELECT 1 FROM ${pages} WHERE job_id = $1::bigint AND NOT done LIMIT 1`, [
      lease.jobId,
    ]);
    if (job.state === 'running' && job.scanComplete && open.rows.length === 0)
      await finish(tx, tables, lease.jobId, 'done');
    return 'done';
  });
}

async function finish(tx: SqlQueryable, tables: JournalTables, id: string, state: JobState): Promise<void> {
  await tx.query(`DELETE FROM ${tablesOf(tables).seen} WHERE job_id = $1::bigint`, [id]);
  await tx.query(
    `UPDATE ${tablesOf(tables).jobs} SET state = $2, updated_at = clock_timestamp(), finished_at = clock_timestamp()
     WHERE id = $1::bigint`,
    [id, state],
  );
}

/** See `JobStore.setJobState`. */
export async function setJobState(
  sql: SqlClient,
  tables: JournalTables,
  id: string,
  state: JobState,
  options: { readonly from?: readonly JobState[] | undefined; readonly reason?: string | undefined },
): Promise<Job | undefined> {
  if (!/^\d{1,18}$/.test(id)) return undefined;
  const { rows } = await sql.query<JobRow>(
    `WITH j AS (
       UPDATE ${tablesOf(tables).jobs} SET state = $2, reason = COALESCE($4, reason), updated_at = clock_timestamp(),
         finished_at = CASE WHEN $2 IN ('running', 'paused') THEN finished_at ELSE clock_timestamp() END
       WHERE id = $1::bigint AND state = ANY($3::text[]) RETURNING *
     ), dropped AS (
       DELETE FROM ${tablesOf(tables).seen} s USING j WHERE s.job_id = j.id AND j.state IN ('done', 'cancelled')
     ) SELECT ${JOB_COLUMNS} FROM j`,
    [id, state, [...(options.from ?? OPEN_JOB_STATES)], options.reason ?? null],
  );
  const row = rows[0];
  return row === undefined ? undefined : jobOf(row);
}

interface SeenCopyRow {
  readonly legacy_id: string;
  readonly medplum_id: string;
  readonly medplum_version: string | null;
  readonly unit: string;
}

function seenCopyOf(row: SeenCopyRow): SeenCopy {
  return {
    legacyId: row.legacy_id,
    medplumId: row.medplum_id,
    medplumVersion: optional(row.medplum_version),
    unit: row.unit,
  };
}

/** See `JobStore.noteSeenCopies`: one statement for a page of copies. */
export async function noteSeenCopies(
  sql: SqlClient,
  tables: JournalTables,
  jobId: string,
  copies: readonly SeenCopy[],
): Promise<void> {
  if (!/^\d{1,18}$/.test(jobId) || copies.length === 0) return;
  // One copy per legacy id in the statement (ON CONFLICT cannot touch a row twice): the last wins.
  const unique = [...new Map(copies.map((copy) => [copy.legacyId, copy])).values()];
  const { jobs, seen } = tablesOf(tables);
  await sql.query(
    `INSERT INTO ${seen} (job_id, legacy_id, medplum_id, medplum_version, unit)
     SELECT j.id, c.legacy_id, c.medplum_id, c.medplum_version, c.unit
       FROM ${jobs} j,
            unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS c(legacy_id, medplum_id, medplum_version, unit)
      WHERE j.id = $1::bigint
     ON CONFLICT (job_id, legacy_id) DO UPDATE
       SET medplum_id = EXCLUDED.medplum_id, medplum_version = EXCLUDED.medplum_version, unit = EXCLUDED.unit`,
    [
      jobId,
      unique.map((copy) => copy.legacyId),
      unique.map((copy) => copy.medplumId),
      unique.map((copy) => copy.medplumVersion ?? null),
      unique.map((copy) => copy.unit),
    ],
  );
}

/** See `JobStore.takeSeenCopies`. */
export async function takeSeenCopies(
  sql: SqlClient,
  tables: JournalTables,
  jobId: string,
  legacyIds: readonly string[],
): Promise<Map<string, SeenCopy>> {
  const taken = new Map<string, SeenCopy>();
  if (!/^\d{1,18}$/.test(jobId) || legacyIds.length === 0) return taken;
  const { rows } = await sql.query<SeenCopyRow>(
    `DELETE FROM ${tablesOf(tables).seen} WHERE job_id = $1::bigint AND legacy_id = ANY($2::text[])
     RETURNING legacy_id, medplum_id, medplum_version, unit`,
    [jobId, [...legacyIds]],
  );
  for (const row of rows) taken.set(row.legacy_id, seenCopyOf(row));
  return taken;
}

/** See `JobStore.listSeenCopies`. */
export async function listSeenCopies(
  sql: SqlClient,
  tables: JournalTables,
  jobId: string,
  options: { readonly after?: string | undefined; readonly limit: number },
): Promise<SeenCopy[]> {
  if (!/^\d{1,18}$/.test(jobId)) return [];
  const { rows } = await sql.query<SeenCopyRow>(
    `SELECT legacy_id, medplum_id, medplum_version, unit FROM ${tablesOf(tables).seen}
      WHERE job_id = $1::bigint AND ($2::text IS NULL OR legacy_id > $2::text)
      ORDER BY legacy_id LIMIT $3`,
    [jobId, options.after ?? null, options.limit],
  );
  return rows.map(seenCopyOf);
}
