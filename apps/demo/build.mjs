#!/usr/bin/env node
// Builds the demo into dist/: the page (app.js), the edgelog worker (worker.js), the service
// worker (sw.js) and the static shell. `--watch` rebuilds on change.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const watch = process.argv.includes('--watch');

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
cpSync(join(here, 'public'), dist, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: true,
  target: 'es2022',
  logLevel: 'warning',
  legalComments: 'none',
};
const app = await esbuild.context({
  ...common,
  entryPoints: { app: join(here, 'src/app.ts'), worker: join(here, 'src/worker.ts') },
  outdir: dist,
  format: 'esm',
  metafile: true,
});
await app.rebuild();

// The service worker's cache name changes whenever the shell does, so a new build replaces it.
const buildId = createHash('sha256')
  .update(
    ['app.js', 'worker.js', 'index.html', 'styles.css'].map((f) => readFileSync(join(dist, f))).join('\n'),
  )
  .digest('hex')
  .slice(0, 12);
const sw = await esbuild.context({
  ...common,
  entryPoints: { sw: join(here, 'src/sw.ts') },
  outdir: dist,
  format: 'iife',
  define: { BUILD_ID: JSON.stringify(buildId) },
});
await sw.rebuild();

console.log(`demo built into ${dist} (build ${buildId})`);
if (watch) {
  await app.watch();
  await sw.watch();
} else {
  await app.dispose();
  await sw.dispose();
}
