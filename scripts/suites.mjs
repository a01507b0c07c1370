// The test suites `npm test` runs, in order, and how their vitest JSON reports are counted.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const resultsDir = '.vitest-results';

export const suites = [
  { name: 'core', dir: 'packages/core', config: 'vitest.config.ts' },
  { name: 'server', dir: 'packages/server', config: 'vitest.config.ts' },
  { name: 'client', dir: 'packages/client', config: 'vitest.config.ts' },
  { name: 'demo', dir: 'apps/demo', config: 'vitest.config.ts' },
  { name: 'e2e', dir: 'test', config: 'vitest.config.ts' },
];

/** Sums passed and failed tests over the suites' JSON reports; names suites whose report is missing. */
export function countResults(root, only = []) {
  let passed = 0;
  let failed = 0;
  const missing = [];
  for (const suite of suites) {
    if (only.length > 0 && !only.includes(suite.name)) continue;
    if (!existsSync(join(root, suite.dir, suite.config))) continue;
    const file = join(root, resultsDir, `${suite.name}.json`);
    if (!existsSync(file)) {
      missing.push(suite.name);
      continue;
    }
    const report = JSON.parse(readFileSync(file, 'utf8'));
    passed += report.numPassedTests ?? 0;
    failed += (report.numFailedTests ?? 0) + (report.numRuntimeErrors ?? 0);
  }
  return { passed, failed, missing };
}
