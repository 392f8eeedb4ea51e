import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run demo', () => {
  it('mirrors every patient of both clinics under injected faults, and the copies agree', async () => {
    // The demo's own embedded defaults, whatever this shell points at.
    const env = { ...process.env, DATABASE_URL: '', MEDPLUM_BASE_URL: '' };
    const { stdout } = await run(process.execPath, ['examples/demo.ts'], { env, timeout: 120_000 });
    expect(stdout).toMatch(/north\s+dual-write\s+\d+\s+0\s+150\s+150\s+150\/150/);
    expect(stdout).toMatch(/south\s+live\s+\d+\s+0\s+150\s+150\s+150\/150/);
    expect(stdout).toMatch(/medplum 503 ×\d+/);
  }, 120_000);
});
