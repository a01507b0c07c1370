import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The repository's Worker under `wrangler dev` (root wrangler.toml), with its own port and state dir. */
export interface EdgeServer {
  url: string;
  stop(): Promise<void>;
}

/** Starts `wrangler dev` and resolves once /health answers; `vars` become `--var KEY:VALUE`. */
export async function startEdgeServer(
  port: number,
  secret: string,
  vars: Record<string, string> = {},
): Promise<EdgeServer> {
  const persist = await mkdtemp(join(tmpdir(), 'edgelog-edge-state-'));
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
      ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
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
      throw new Error(`the edge server did not start:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
