#!/usr/bin/env node
// `npm test`: type-check and lint everything, then run every test suite (unit tests in Node,
// Durable Object tests in workerd, browser tests in Chromium), and print one closing line
// `N passed, N failed` counted from vitest's JSON reports.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countResults, resultsDir, suites } from './suites.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  TURBO_TELEMETRY_DISABLED: '1',
};
const only = process.argv.slice(2);

const run = (cmd, args, cwd = root) => spawnSync(cmd, args, { cwd, env, stdio: 'inherit' }).status ?? 1;

let failedSteps = [];
if (only.length === 0) {
  if (run('npx', ['turbo', 'run', 'typecheck', '--output-logs=errors-only']) !== 0)
    failedSteps.push('typecheck');
  if (run('npx', ['biome', 'check', '.']) !== 0) failedSteps.push('lint');
}

// The browser suites run the repository's Worker, which serves the built demo app.
if (only.length === 0 || only.includes('e2e')) {
  if (run(process.execPath, [join(root, 'apps', 'demo', 'build.mjs')]) !== 0) failedSteps.push('demo build');
}

rmSync(join(root, resultsDir), { recursive: true, force: true });
mkdirSync(join(root, resultsDir), { recursive: true });
for (const suite of suites) {
  if (only.length > 0 && !only.includes(suite.name)) continue;
  const cwd = join(root, suite.dir);
  if (!existsSync(join(cwd, suite.config))) continue;
  console.log(`\n== ${suite.name}: vitest in ${suite.dir}`);
  const status = run(
    'npx',
    [
      'vitest',
      'run',
      '--config',
      suite.config,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${join(root, resultsDir, `${suite.name}.json`)}`,
      ...(suite.args ?? []),
    ],
    cwd,
  );
  if (status !== 0) failedSteps.push(suite.name);
}

const { passed, failed, missing } = countResults(root, only);
for (const m of missing) failedSteps.push(`${m} (no report)`);
failedSteps = [...new Set(failedSteps)];
if (failedSteps.length > 0) console.log(`\nfailed steps: ${failedSteps.join(', ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failedSteps.length > 0 || failed > 0 ? 1 : 0);
