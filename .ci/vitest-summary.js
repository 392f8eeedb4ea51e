// @ts-check
// Reads Vitest JSON reports and prints one line over all of them: `N passed, N failed[, N skipped]`.
// Exits non-zero when a test failed, a test file failed to run, a report is missing, or no test ran.
// Usage: node .ci/vitest-summary.js .tmp/vitest.json [.tmp/vitest-medplum.json …]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const paths = process.argv.length > 2 ? process.argv.slice(2) : ['.tmp/vitest.json'];

let passed = 0;
let failed = 0;
let skipped = 0;
let ok = true;
for (const path of paths) {
  /** @type {{ numPassedTests: number, numFailedTests: number, numPendingTests: number, numTodoTests: number, success: boolean, testResults: { name: string, status: string, message: string }[] }} */
  let report;
  try {
    report = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    console.error(
      `no readable Vitest report at ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exit(2);
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  if (report.numFailedTests > 0 || !report.success) ok = false;
  // A file that fails to import or whose hooks throw fails without counting a test.
  for (const file of report.testResults) {
    if (file.status === 'failed' && file.message !== '') {
      console.error(
        `test file failed: ${relative(process.cwd(), file.name)}: ${file.message.split('\n')[0] ?? ''}`,
      );
      ok = false;
    }
  }
}
if (passed + failed === 0) {
  console.error('no test ran');
  ok = false;
}

console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);
