import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Patient, Subscription } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DualWriter, RestHookResult } from '../src/index.ts';
import type { PatientRow } from '../test/harness/patient-fixture.ts';
import { north, notRun, startRealFixture, type Ctx, type RealFixture } from './real-medplum.ts';

describe.skipIf(notRun !== undefined)('deletes made directly in a real Medplum', () => {
  let fx: RealFixture;
  let writer: DualWriter<Ctx, PatientRow>;
  const secret = `hook-${Math.random().toString(36).slice(2)}`;

  beforeEach(async () => {
    fx = await startRealFixture({ stage: 'live' });
    writer = fx.another({
      feeds: {
        // Only this run's records: the project holds other runs' Patients too.
        unitOf: (record) =>
          record.row !== undefined ||
          (record.resource as Patient | undefined)?.identifier?.some(
            (i) => i.system === fx.mapping.identifierSystem,
          ) === true
            ? 'north'
            : undefined,
        sides: ['medplum'],
        existenceCheckIntervalMs: 0,
        restHookSecret: secret,
      },
    });
  });
  afterEach(async () => {
    await fx.close();
  });

  async function linked(ids: readonly string[]): Promise<string[]> {
    const medplumIds: string[] = [];
    for (const id of ids) {
      const created = await writer.createResource(
        {
          resourceType: 'Patient',
          identifier: [{ system: fx.mapping.identifierSystem, value: id }],
          name: [{ given: ['D'], family: id }],
        },
        north,
      );
      medplumIds.push(created.medplumId ?? '');
    }
    return medplumIds;
  }

  it('the feeds’ existence check turns the delete into a legacy delete', async () => {
    const ids = await linked(['d-1', 'd-2', 'd-3']);
    await writer.pollFeeds();
    await fx.direct.deleteResource('Patient', ids[1]!);
    const report = await writer.pollFeeds();
    expect(report).toMatchObject({ queued: 1, errors: 0 });
    await writer.drain({ timeoutMs: 30_000 });
    expect(await fx.legacy.read('Patient', 'd-2')).toBeUndefined();
    expect(await fx.legacy.read('Patient', 'd-1')).toBeDefined();
    expect(await fx.legacy.read('Patient', 'd-3')).toBeDefined();
    expect(await writer.pollFeeds()).toMatchObject({ queued: 0 });
  });

  it("Medplum's rest-hook notification of a Subscription brings the delete promptly", async () => {
    const results: RestHookResult[] = [];
    const hook: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        writer
          .handleRestHook({ headers: req.headers, body: Buffer.concat(chunks) })
          .then((result) => {
            results.push(result);
            res.writeHead(result.status === 'refused' ? 401 : 200).end();
          })
          .catch(() => res.writeHead(500).end());
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    let subscription: Subscription | undefined;
    try {
      const { port } = hook.address() as AddressInfo;
      subscription = await fx.direct.createResource<Subscription>({
        resourceType: 'Subscription',
        status: 'active',
        reason: 'medplum-dualwrite integration test',
        criteria: 'Patient',
        channel: {
          type: 'rest-hook',
          endpoint: `http://127.0.0.1:${port}/hook`,
          payload: 'application/fhir+json',
        },
        extension: [
          {
            url: 'https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction',
            valueCode: 'delete',
          },
          // The secret's extension lives under www.medplum.com (Medplum 5.0.10's server source).
          {
            url: 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret',
            valueString: secret,
          },
        ],
      });
      const ids = await linked(['h-1', 'h-2']);
      await fx.direct.deleteResource('Patient', ids[0]!);
      for (let waited = 0; !results.some((r) => r.status === 'queued') && waited < 30_000; waited += 200)
        await sleep(200);
      expect(results.map((r) => r.status)).toContain('queued');
      expect(results.map((r) => r.status)).not.toContain('refused');
      await writer.drain({ timeoutMs: 30_000 });
      expect(await fx.legacy.read('Patient', 'h-1')).toBeUndefined();
      expect(await fx.legacy.read('Patient', 'h-2')).toBeDefined();
    } finally {
      if (subscription !== undefined) await fx.direct.deleteResource('Subscription', subscription.id!);
      await new Promise((resolve) => hook.close(resolve));
    }
  });
});
