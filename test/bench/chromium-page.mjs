// One Chromium page for the client benchmarks: builds `page` and `worker` entries with esbuild,
// serves them on 127.0.0.1:`port`, and opens them in a persistent context (IndexedDB on disk).
// CHROMIUM_PATH overrides /usr/bin/chromium; DEBUG=1 prints the page's console.

import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { chromiumArgs, chromiumPath } from '../support/chromium.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * `entries`: more scripts to build beside `page` and `worker` (name → source), served as `<name>.js`.
 * @param {{ page: string, worker: string, port: number, name: string, plugins?: import('esbuild').Plugin[], entries?: Record<string, string> }} o
 */
export async function openBenchPage({ page: pageEntry, worker, port, name, plugins = [], entries = {} }) {
  const dir = await mkdtemp(join(tmpdir(), `edgelog-${name}-`));
  await build({
    plugins,
    nodePaths: [join(here, '../../node_modules')],
    entryPoints: { ...entries, page: pageEntry, worker },
    outdir: dir,
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    logLevel: 'warning',
  });
  await writeFile(
    join(dir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><script type="module" src="./page.js"></script>',
  );
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = join(dir, path === '/' ? 'index.html' : path.slice(1));
    const s = createReadStream(file);
    s.on('error', () => res.writeHead(404).end());
    s.on('open', () => {
      res.writeHead(200, { 'content-type': extname(file) === '.js' ? 'text/javascript' : 'text/html' });
      s.pipe(res);
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const profile = await mkdtemp(join(tmpdir(), `edgelog-${name}-profile-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  if (process.env.DEBUG) page.on('console', (m) => process.stderr.write(`console: ${m.text()}\n`));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => globalThis.bench !== undefined);
  const close = async () => {
    await context.close();
    server.close();
    await rm(dir, { recursive: true, force: true });
    await rm(profile, { recursive: true, force: true });
  };
  return { page, context, close };
}
