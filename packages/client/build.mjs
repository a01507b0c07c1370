// Bundles the page entry and the prebuilt worker with esbuild and prints their gzipped sizes.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
await mkdir(dist, { recursive: true });

const targets = [
  { name: 'page entry', entry: 'src/index.ts', out: 'index.js', budget: 10 * 1024 },
  { name: 'worker', entry: 'src/default-worker.ts', out: 'worker.js', budget: 40 * 1024 },
  { name: 'worker library', entry: 'src/worker.ts', out: 'worker-lib.js', budget: 40 * 1024 },
];

const rows = [];
for (const t of targets) {
  const outfile = join(dist, t.out);
  const result = await build({
    entryPoints: [join(here, t.entry)],
    outfile,
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    sourcemap: false,
    metafile: true,
    logLevel: 'warning',
  });
  const code = await readFile(outfile);
  const gz = gzipSync(code, { level: 9 }).length;
  // Modules that put bytes in the output (parsed but tree-shaken ones do not count).
  const output = Object.values(result.metafile.outputs)[0];
  const inputs = Object.entries(output.inputs)
    .filter(([, v]) => v.bytesInOutput > 0)
    .map(([k]) => k);
  rows.push({ ...t, min: code.length, gz, inputs });
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log('| bundle | minified | gzip | budget (gzip) |');
console.log('|---|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.name} (dist/${r.out}) | ${kb(r.min)} | ${kb(r.gz)} | ${kb(r.budget)}${r.gz > r.budget ? ' OVER' : ''} |`,
  );
const zodInPage = rows[0].inputs.some((i) => i.includes('node_modules/zod/'));
if (zodInPage) console.log('warning: zod is in the page entry');
// The worker may use zod/mini; full zod (the classic API, ~440 KiB) must stay out.
const fullZod = rows.slice(1).some((r) => r.inputs.some((i) => i.includes('node_modules/zod/v4/classic/')));
if (fullZod) console.log('warning: full zod is in a worker bundle');
await writeFile(
  join(dist, 'sizes.json'),
  JSON.stringify(
    rows.map(({ inputs, ...r }) => r),
    null,
    2,
  ),
);
if (rows.some((r) => r.gz > r.budget) || zodInPage || fullZod) process.exitCode = 1;
