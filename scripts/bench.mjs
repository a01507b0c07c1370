#!/usr/bin/env node
// `npm run bench`: runs every benchmark under test/bench (each prints one markdown section)
// and writes them, with the command that produced them, to BENCHMARKS.md.
// `npm run bench -- edge-commit` runs only the benchmarks whose file name contains a word given.
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(root, 'test', 'bench');
const words = process.argv.slice(2);
const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
};

const files = readdirSync(benchDir)
  .filter((f) => /\.bench\.(mjs|ts)$/.test(f))
  .filter((f) => words.length === 0 || words.some((w) => f.includes(w)))
  .sort();

const sections = [];
let failed = false;
for (const file of files) {
  console.error(`== ${file}`);
  const args = file.endsWith('.ts') ? ['--import', 'tsx', join(benchDir, file)] : [join(benchDir, file)];
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    failed = true;
    sections.push(`## ${file}\n\nFailed (exit ${r.status}).\n`);
  } else sections.push(`${r.stdout.trim()}\n`);
  console.log(r.stdout);
}

const header = `# Benchmarks

Produced by \`npm run bench${words.length ? ` -- ${words.join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 10)},
Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}). The machine is shared:
compare ratios and medians measured in the same run, not absolute times across runs.
`;
if (words.length === 0) writeFileSync(join(root, 'BENCHMARKS.md'), `${header}\n${sections.join('\n')}`);
else console.error('(a partial run: BENCHMARKS.md is left as it is)');
process.exit(failed ? 1 : 0);
