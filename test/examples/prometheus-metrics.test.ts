/**
 * Issue 15 §3: the Prometheus example, scraped over HTTP. Writes go through a real writer
 * (PostgreSQL, the in-process HTTP FHIR server); the exporter's text is parsed and checked:
 * the backlog per clinic, then the mirrors, their lag and the retries after the worker's drain,
 * and no record value or id in any label.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerPatients,
  startMetricsExample,
  type MetricsExample,
} from '../../examples/prometheus-metrics.ts';
import { sqlClientFromPg } from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const run = `dw_prom_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

let pool: pg.Pool;
let fhir: FhirTestServer;
let example: MetricsExample;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  fhir = await startFhirTestServer();
  example = await startMetricsExample({
    sql: sqlClientFromPg(pool),
    table: `${run}_patients`,
    schema: run,
    medplumBaseUrl: fhir.baseUrl,
    port: 0,
  });
});
afterAll(async () => {
  await example.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${run}" CASCADE`);
  await pool.query(`DROP TABLE IF EXISTS ${run}_patients`);
  await pool.end();
  await fhir.close();
});

/** One sample of the exposition format: name, labels, value. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

async function scrape(): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(example.url);
  expect(response.status).toBe(200);
  const text = await response.text();
  const samples = text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line): Sample => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (match === null) throw new Error(`not a sample: ${line}`);
      const labels: Record<string, string> = {};
      for (const m of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
        labels[m[1] ?? ''] = m[2] ?? '';
      return { name: match[1] ?? '', labels, value: Number(match[3]) };
    });
  return { text, samples };
}

function total(
  samples: readonly Sample[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('examples/prometheus-metrics.ts, scraped', () => {
  it('shows the backlog per clinic, then the mirrors, their lag and the retries, never a value', async () => {
    await registerPatients(example.app, { north: 3, south: 2 });
    await example.app.create(
      'Patient',
      { clinic: 'north', first_name: 'Zqxmarker', last_name: 'Zqxmarker' },
      { clinic: 'north' },
    );
    const before = await scrape();
    const pending = (unit: string) =>
      total(before.samples, 'dualwrite_outbox_depth', { unit, resource_type: 'Patient', state: 'pending' });
    expect([pending('north'), pending('south')]).toEqual([4, 2]);
    expect(
      before.samples.find((s) => s.name === 'dualwrite_outbox_oldest_age' && s.labels.unit === 'north')
        ?.value,
    ).toBeGreaterThanOrEqual(0);
    expect(total(before.samples, 'dualwrite_mirrors_total')).toBe(0);

    fhir.faults.failNext(2, 503);
    await example.worker.drain();
    // The gauges read the journal at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const after = await scrape();
    expect(total(after.samples, 'dualwrite_outbox_depth')).toBe(0);
    expect(total(after.samples, 'dualwrite_mirrors_total', { unit: 'north', outcome: 'applied' })).toBe(4);
    expect(total(after.samples, 'dualwrite_mirrors_total', { unit: 'south', outcome: 'applied' })).toBe(2);
    expect(total(after.samples, 'dualwrite_mirrors_total', { outcome: 'retrying' })).toBeGreaterThanOrEqual(
      1,
    );
    // How many entries a 503 sends back depends on how the drain bundled them.
    expect(
      total(after.samples, 'dualwrite_retries_total', { side: 'medplum', status: '503' }),
    ).toBeGreaterThanOrEqual(1);
    expect(total(after.samples, 'dualwrite_mirror_lag_count')).toBe(6);
    expect(total(after.samples, 'dualwrite_mirror_lag_bucket', { le: '+Inf' })).toBe(6);

    // Names and ids never reach a label: the record's name, its legacy or Medplum id.
    expect(after.text).not.toContain('Zqxmarker');
    for (const sample of after.samples.filter((s) => s.name !== 'target_info')) {
      for (const [label, value] of Object.entries(sample.labels)) {
        if (['unit', 'resource_type', 'target', 'side', 'state', 'outcome', 'status', 'le'].includes(label))
          continue;
        expect(label).toMatch(/^otel_scope_|^job$|^instance$/);
        expect(value).not.toContain('Zqxmarker');
      }
    }
  });
});
