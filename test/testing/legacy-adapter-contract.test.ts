import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { LegacyRecord, LegacyWriteOptions } from '../../src/sides/legacy-adapter.ts';
import {
  checkLegacyAdapter,
  formatContractReport,
  type ContractRow,
} from '../../src/testing/legacy-adapter-contract.ts';
import { MemoryLegacyAdapter } from '../../src/testing/memory-legacy-adapter.ts';

const run = promisify(execFile);

/** Forgets the version guard on update: the classic lost-update bug. */
class UnguardedAdapter extends MemoryLegacyAdapter<ContractRow> {
  override update(
    type: string,
    id: string,
    row: ContractRow,
    _options?: LegacyWriteOptions,
  ): Promise<LegacyRecord<ContractRow>> {
    return super.update(type, id, row);
  }
}

describe('the legacy adapter contract kit', () => {
  it('passes the reference in-memory adapter without a framework', async () => {
    const report = await checkLegacyAdapter(() =>
      Promise.resolve({ adapter: new MemoryLegacyAdapter<ContractRow>(), resourceType: 'Patient' }),
    );
    expect(report.failed).toEqual([]);
    expect(report.passed.length).toBeGreaterThan(20);
  });

  it('fails a broken adapter with a report that names each broken behaviour and why', async () => {
    const report = await checkLegacyAdapter(() =>
      Promise.resolve({ adapter: new UnguardedAdapter(), resourceType: 'Patient' }),
    );
    expect(report.failed.map((failure) => failure.name)).toEqual([
      'update: refuses a stale expectedVersion with the actual version, changing nothing',
      'update: refuses a version it never issued as a conflict',
    ]);
    const text = formatContractReport(report);
    expect(text).toContain(
      '✗ update: refuses a stale expectedVersion with the actual version, changing nothing: update with a stale expectedVersion: expected a LegacyVersionConflictError, but the call succeeded',
    );
    expect(text).toMatch(/\d+ passed, 2 failed, 0 skipped$/);
  });

  it('runs under node:test with its describe and it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualwrite-contract-'));
    const src = (path: string) => fileURLToPath(new URL(`../../src/${path}`, import.meta.url));
    try {
      const file = join(dir, 'contract.test.ts');
      writeFileSync(
        file,
        `import { describe, it } from 'node:test';
import { runLegacyAdapterContract } from ${JSON.stringify(src('testing/legacy-adapter-contract.ts'))};
import { MemoryLegacyAdapter } from ${JSON.stringify(src('testing/memory-legacy-adapter.ts'))};
runLegacyAdapterContract({ describe, it }, 'MemoryLegacyAdapter', async () => ({
  adapter: new MemoryLegacyAdapter(),
  resourceType: 'Patient',
}));
`,
      );
      const { stdout } = await run(process.execPath, ['--test', '--test-reporter=tap', file], {
        timeout: 60_000,
      });
      expect(stdout).toMatch(/# fail 0/);
      expect(Number(/# pass (\d+)/.exec(stdout)?.[1])).toBeGreaterThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
