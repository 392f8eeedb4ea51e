import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { notRun } from './real-medplum.ts';

const run = promisify(execFile);

const baseUrl = process.env.MEDPLUM_DEFAULT_QUOTA_BASE_URL ?? '';
const why =
  notRun ??
  (baseUrl === '' ? 'no server with Medplum’s default quotas (MEDPLUM_DEFAULT_QUOTA_BASE_URL)' : undefined);
if (why !== undefined) console.log(`demo on a default Medplum not run: ${why}`);

describe.skipIf(why !== undefined)('npm run demo against a real Medplum with its default quotas', () => {
  it('passes: every record once on each side and agreeing, with the writer and the Medplum app sharing the quota', async () => {
    // A non-zero exit (the demo found something wrong) rejects.
    const { stdout } = await run(process.execPath, ['examples/demo.ts'], {
      env: {
        ...process.env,
        MEDPLUM_BASE_URL: baseUrl,
        MEDPLUM_CLIENT_ID: process.env.MEDPLUM_DEFAULT_QUOTA_CLIENT_ID ?? '',
        MEDPLUM_CLIENT_SECRET: process.env.MEDPLUM_DEFAULT_QUOTA_CLIENT_SECRET ?? '',
        LEGACY_DATABASE_URL: '',
        // The units' story must not depend on the machine's speed (see test/examples/demo.test.ts).
        DEMO_MAX_MIRROR_LAG_MS: '300000',
      },
      // Only ends a run that never finishes: 56–124 s measured on a loaded 2-core machine.
      timeout: 400_000,
    });
    expect(stdout).toMatch(/a real Medplum: no outage is injected/);
    for (const unit of ['north', 'east', 'south']) {
      for (const type of ['Patient', 'Encounter', 'Observation']) {
        const line = new RegExp(String.raw`^${unit}\s+\S+\s+${type}\s+([1-9]\d*)\s+\1\s+0\s+0\s+\1/\1$`, 'm');
        expect(stdout).toMatch(line);
      }
    }
    // The Medplum app's saves all went through (a 429 waited out, never given up on).
    expect(stdout).not.toMatch(/^failed: /m);
    expect(stdout).toMatch(/^outbox: 0 pending, 0 dead letters$/m);
    expect(stdout).toMatch(/^comparisons: .*, 0 divergent$/m);
    expect(stdout).toMatch(/every record exists once on each side and the copies agree/);
  }, 420_000);
});
