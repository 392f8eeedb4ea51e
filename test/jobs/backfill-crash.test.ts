import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PGlite } from '@electric-sql/pglite';
import type { Patient } from '@medplum/fhirtypes';
import { afterAll, describe, expect, it } from 'vitest';
import { createMedplumClient, PostgresStore } from '../../src/index.ts';
import { CLINIC_TABLE_SQL } from '../../examples/clinic-mapping.ts';
import { FhirServerProcess } from '../../bench/fhir-server-process.ts';
import type { SourcedServer } from '../../bench/drain-trial.ts';
import type { BackfillProcessConfig } from './backfill-process.ts';

/**
 * The acceptance size, 20,000 (`BACKFILL_CRASH_RECORDS` sets another). It took 45 s on a
 * quiet machine (load 0.4) once the FHIR test server's conditional creates used its identifier
 * index; before, each scanned every Patient and the run took 30 minutes at load 10-18, or failed
 * with request timeouts from about 10,000 records on. The time limit grows with the size (250
 * ms a record, at least 15 minutes): a liveness bound for a loaded machine, not a speed check.
 */
const RECORDS = Number(process.env.BACKFILL_CRASH_RECORDS ?? 20_000);
const PROCESS = join(import.meta.dirname, 'backfill-process.ts');
const dirs: string[] = [];
let servers: FhirServerProcess | undefined;
let server: SourcedServer | undefined;

afterAll(async () => {
  await server?.close();
  await servers?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs one backfill process; kills it with SIGKILL once it has completed `killAfterPages` pages. */
function runProcess(
  config: BackfillProcessConfig,
  killAfterPages?: number,
): Promise<{ killed: boolean; jobId: string | undefined; lines: Record<string, unknown>[] }> {
  const child = spawn(process.execPath, [PROCESS, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let jobId: string | undefined;
  let killed = false;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    lines.push(line);
    if (typeof line.jobId === 'string') jobId = line.jobId;
    if (
      killAfterPages !== undefined &&
      typeof line.page === 'number' &&
      line.page >= killAfterPages &&
      !killed
    )
      killed = child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (!killed && code !== 0)
        reject(new Error(`backfill process exited with ${String(code)}:\n${stderr}`));
      else resolve({ killed, jobId, lines });
    });
  });
}

describe('a backfill killed with SIGKILL mid-job', () => {
  it(
    `is resumed by a fresh process from its cursor: each of ${RECORDS} records once in Medplum, linked, counts adding up`,
    async () => {
      // The FHIR server runs in a process of its own, as Medplum does, rather than sharing
      // this process's event loop with the test.
      servers = await FhirServerProcess.start();
      server = await servers.server(0);
      const root = mkdtempSync(join(tmpdir(), 'dw-backfill-crash-'));
      dirs.push(root);
      const legacyDir = join(root, 'legacy');
      const storeDir = join(root, 'store');
      const seed = await PGlite.create(legacyDir);
      await seed.exec(CLINIC_TABLE_SQL('patients'));
      await seed.query(
        `INSERT INTO patients (clinic, first_name, last_name) SELECT 'north', 'F' || n, 'L' || n FROM generate_series(1, $1) AS n`,
        [RECORDS],
      );
      await seed.close();
      const identifierSystem = `https://legacy.example.org/backfill-crash/${Date.now()}`;
      const config: BackfillProcessConfig = {
        storeDir,
        legacyDir,
        baseUrl: server.baseUrl,
        identifierSystem,
        jobId: undefined,
      };

      const first = await runProcess(config, 4);
      expect(first.killed).toBe(true);
      expect(first.jobId).toBeDefined();
      const second = await runProcess({ ...config, jobId: first.jobId });
      expect(second.lines.at(-1)).toMatchObject({
        done: true,
        state: 'done',
        outbox: { pending: 0, leased: 0, dead: 0 },
      });

      // Every record exactly once in Medplum.
      const medplum = createMedplumClient({ baseUrl: server.baseUrl });
      const copies = new Map<string, number>();
      const byId = new Map<string, string>();
      for await (const page of medplum.searchResourcePages('Patient', {
        _count: '1000',
        _sort: '_lastUpdated',
      })) {
        for (const patient of page as Patient[]) {
          const value =
            patient.identifier?.find((identifier) => identifier.system === identifierSystem)?.value ?? '';
          copies.set(value, (copies.get(value) ?? 0) + 1);
          byId.set(value, patient.id ?? '');
        }
      }
      expect(copies.size).toBe(RECORDS);
      expect([...copies.values()].every((n) => n === 1)).toBe(true);

      // Linked, each to its copy; the job's counts add up to the table, counted once.
      const store = await PostgresStore.openEmbedded({ dataDir: storeDir });
      try {
        const job = await store.getJob(first.jobId ?? '');
        expect(job).toMatchObject({ state: 'done', scanComplete: true });
        expect(job?.pagesDone).toBe(job?.pages);
        expect(job?.counts.scanned).toBe(RECORDS);
        const { scanned = 0, ...outcomes } = job?.counts ?? {};
        expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).toBe(scanned);
        expect(job?.counts.created).toBeGreaterThan(0);
        let links = 0;
        let after: string | undefined;
        for (;;) {
          const page = await store.listLinks('Patient', { after, limit: 5000 });
          if (page.length === 0) break;
          for (const link of page) expect(byId.get(link.legacyId)).toBe(link.medplumId);
          links += page.length;
          after = page.at(-1)?.legacyId;
        }
        expect(links).toBe(RECORDS);
      } finally {
        await store.close();
      }
    },
    Math.max(900_000, RECORDS * 250),
  );
});
