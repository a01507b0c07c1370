import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The demo Worker under `wrangler dev` (root wrangler.toml), with its own port and state dir. */
export interface DemoServer {
  url: string;
  stop(): Promise<void>;
}

/** Builds the demo into apps/demo/dist (the Worker's static assets). */
export function buildDemo(): void {
  const built = spawnSync(process.execPath, [join(root, 'apps', 'demo', 'build.mjs')], {
    cwd: root,
    encoding: 'utf8',
  });
  if (built.status !== 0) throw new Error(`the demo build failed:\n${built.stdout}\n${built.stderr}`);
}

export async function startDemoServer(port: number, secret: string): Promise<DemoServer> {
  const persist = await mkdtemp(join(tmpdir(), 'edgelog-demo-state-'));
  const url = `http://127.0.0.1:${port}`;
  const wrangler: ChildProcess = spawn(
    process.execPath,
    [
      join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--persist-to',
      persist,
      '--var',
      `EDGELOG_JWT_SECRET:${secret}`,
      '--var',
      'EDGELOG_DEMO:1',
    ],
    {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_SEND_ERROR_REPORTS: 'false',
        WRANGLER_HIDE_BANNER: 'true',
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      },
    },
  );
  let log = '';
  wrangler.stdout?.on('data', (d) => {
    log += String(d);
  });
  wrangler.stderr?.on('data', (d) => {
    log += String(d);
  });
  const stop = async () => {
    if (wrangler.pid && wrangler.exitCode === null) {
      const exited = new Promise((resolve) => wrangler.once('exit', resolve));
      process.kill(-wrangler.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    }
    // workerd may still be flushing its SQLite files for a moment after it exits.
    await rm(persist, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  };
  const start = Date.now();
  for (;;) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return { url, stop };
    } catch {
      // not up yet
    }
    if (Date.now() - start > 100_000 || wrangler.exitCode !== null) {
      await stop();
      throw new Error(`the demo server did not start:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface ServerEvent {
  id: string;
  stream: string;
  type: string;
  version: number;
  position: number;
  data: Record<string, unknown>;
}

/** Every event of the demo store, read over the HTTP API with a token from POST /demo/token. */
export async function serverEvents(url: string): Promise<ServerEvent[]> {
  const t = await fetch(`${url}/demo/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'test-reader' }),
  });
  if (!t.ok) throw new Error(`demo token: ${t.status} ${await t.text()}`);
  const { token } = (await t.json()) as { token: string };
  const out: ServerEvent[] = [];
  for (let after = 0; ; ) {
    const res = await fetch(`${url}/v1/stores/demo/events?after=${after}&limit=5000`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!res.ok) throw new Error(`read all: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { events: ServerEvent[] };
    out.push(...page.events);
    if (page.events.length < 5000) return out;
    after = page.events.at(-1)!.position;
  }
}
