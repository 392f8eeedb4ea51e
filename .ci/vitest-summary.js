// @ts-check
// Reads a Vitest JSON report and prints one line: `N passed, N failed[, N skipped]`.
// Exits non-zero when a test failed, a test file failed to run, or no test ran.
// Usage: node .ci/vitest-summary.js .tmp/vitest.json
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const path = process.argv[2] ?? '.tmp/vitest.json';

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

const passed = report.numPassedTests;
const failed = report.numFailedTests;
const skipped = report.numPendingTests + report.numTodoTests;

let ok = failed === 0 && report.success;
// A file that fails to import or whose hooks throw fails without counting a test.
for (const file of report.testResults) {
  if (file.status === 'failed' && file.message !== '') {
    console.error(
      `test file failed: ${relative(process.cwd(), file.name)}: ${file.message.split('\n')[0] ?? ''}`,
    );
    ok = false;
  }
}
if (passed + failed === 0) {
  console.error('no test ran');
  ok = false;
}

console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);
