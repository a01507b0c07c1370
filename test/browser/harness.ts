import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type BrowserContext, chromium } from 'playwright-core';
import { chromiumArgs, chromiumPath } from '../support/chromium.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Bundles the test app (page + worker) into a temporary directory with an index.html. */
export async function buildApp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgelog-browser-'));
  await build({
    entryPoints: { page: join(here, 'app/page.ts'), worker: join(here, 'app/worker.ts') },
    outdir: dir,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    logLevel: 'warning',
  });
  await writeFile(
    join(dir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><script type="module" src="./page.js"></script>',
  );
  return dir;
}

const types: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html' };

/** Closing the gate makes the API unreachable (the network is up, the server is not). */
export interface Gate {
  open: boolean;
}

/**
 * Serves `dir` on 127.0.0.1:`port` (a fixed port keeps the origin, and so IndexedDB, across
 * runs). With `api`, requests under /v1/ (HTTP and WebSocket) go to that server, so the page
 * and the API share an origin, as when the Worker serves the app.
 */
export function serve(dir: string, port: number, api?: URL, gate: Gate = { open: true }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (api && path.startsWith('/v1/')) {
      if (!gate.open) {
        req.socket.destroy();
        return;
      }
      const upstream = request(
        { host: api.hostname, port: api.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
      return;
    }
    const file = join(dir, path === '/' ? 'index.html' : path.slice(1));
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.writeHead(404).end());
    stream.on('open', () => {
      res.writeHead(200, {
        'content-type': types[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      stream.pipe(res);
    });
  });
  if (api) {
    server.on('upgrade', (req, socket, head) => {
      if (!gate.open) {
        socket.destroy();
        return;
      }
      const upstream = connect(Number(api.port), api.hostname, () => {
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length > 0) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      const close = () => {
        upstream.destroy();
        socket.destroy();
      };
      upstream.on('error', close);
      socket.on('error', close);
      upstream.on('close', close);
      socket.on('close', close);
    });
  }
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

/** A Chromium persistent context (IndexedDB on disk), in a fresh profile unless one is given. */
export async function launch(
  profile?: string,
): Promise<{ context: BrowserContext; profile: string; dispose: () => Promise<void> }> {
  const dir = profile ?? (await mkdtemp(join(tmpdir(), 'edgelog-profile-')));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumPath,
    args: chromiumArgs,
    headless: true,
  });
  return {
    context,
    profile: dir,
    dispose: async () => {
      await context.close();
      if (!profile) await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
