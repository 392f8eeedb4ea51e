import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run demo', () => {
  it('migrates three units through their stages under faults and an outage, and every record agrees', async () => {
    // The demo's own embedded defaults, whatever this shell points at. A non-zero exit rejects.
    const env = { ...process.env, DATABASE_URL: '', MEDPLUM_BASE_URL: '' };
    // The limits only end a run that never finishes: the demo took 100–120 s at a load of 20.
    const { stdout } = await run(process.execPath, ['examples/demo.ts'], { env, timeout: 600_000 });

    // The auditor's table: every legacy row has exactly one Medplum copy, and they agree.
    for (const unit of ['north', 'east', 'south']) {
      const line = new RegExp(String.raw`^${unit}\s+\S+\s+(\d+)\s+\1\s+0\s+0\s+\1/\1$`, 'm');
      expect(stdout).toMatch(line);
    }
    expect(stdout).toMatch(/Medplum outage: \d+ ms in round 2, [1-9]\d* requests refused/);
    expect(stdout).toMatch(/south: rolled back live → shadow \(Medplum outage/);
    expect(stdout).toMatch(/conflicts\s+[1-9]\d* on \d+ records: .*; [1-9]\d* resolved/);
    expect(stdout).toMatch(/^outbox: 0 pending, 0 dead letters$/m);
    expect(stdout).toMatch(/every record exists once on each side and the copies agree/);
    // It ends with `dualwrite status`: each unit's stage and an empty backlog.
    const status = stdout.slice(stdout.indexOf('$ dualwrite status'));
    expect(status).toMatch(/^unit\s+stage\s+pending\s+waiting\s+leased\s+dead\s+oldest$/m);
    for (const unit of ['north', 'east', 'south']) {
      expect(status).toMatch(new RegExp(String.raw`^${unit}\s+\S+\s+0\s+0\s+0\s+0\s+-$`, 'm'));
    }
  }, 600_000);
});
