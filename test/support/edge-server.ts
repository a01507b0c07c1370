import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The repository's Worker under `wrangler dev` (root wrangler.toml), with its own port and state dir. */
export interface EdgeServer {
  url: string;
  /** The `--persist-to` directory (SQLite files of every Durable Object). */
  persist: string;
  /** Stops wrangler and deletes the state directory (unless `keepState`). */
  stop(): Promise<void>;
  /**
   * Kills wrangler (SIGKILL when `hard`, else SIGTERM) and starts it again on the same port and
   * state directory; resolves once /health answers again.
   */
  restart(options?: { hard?: boolean }): Promise<void>;
}

export interface EdgeServerOptions {
  /** Becomes `--var KEY:VALUE`. */
  vars?: Record<string, string>;
  /** A fixed state directory (kept by `stop()`); default a new temporary directory, deleted by `stop()`. */
  persistTo?: string;
  /** Keep the state directory on `stop()`. Default: true when `persistTo` is given. */
  keepState?: boolean;
}

/** Starts `wrangler dev` and resolves once /health answers. */
export async function startEdgeServer(
  port: number,
  secret: string,
  options: EdgeServerOptions = {},
): Promise<EdgeServer> {
  const persist = options.persistTo ?? (await mkdtemp(join(tmpdir(), 'edgelog-edge-state-')));
  const keepState = options.keepState ?? options.persistTo !== undefined;
  const url = `http://127.0.0.1:${port}`;
  let wrangler: ChildProcess;
  let log = '';

  const spawnWrangler = () => {
    log = '';
    wrangler = spawn(
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
        ...Object.entries(options.vars ?? {}).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
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
    wrangler.stdout?.on('data', (d) => {
      log += String(d);
    });
    wrangler.stderr?.on('data', (d) => {
      log += String(d);
    });
  };

  const kill = async (signal: NodeJS.Signals) => {
    if (wrangler.pid && wrangler.exitCode === null && wrangler.signalCode === null) {
      const exited = new Promise((resolve) => wrangler.once('exit', resolve));
      try {
        process.kill(-wrangler.pid, signal);
      } catch {
        // already gone
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    }
  };

  const stop = async () => {
    await kill('SIGTERM');
    // workerd may still be flushing its SQLite files for a moment after it exits.
    if (!keepState) await rm(persist, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  };

  const waitHealthy = async () => {
    const start = Date.now();
    for (;;) {
      try {
        const res = await fetch(`${url}/health`);
        if (res.ok) return;
      } catch {
        // not up yet
      }
      if (Date.now() - start > 100_000 || wrangler.exitCode !== null) {
        const tail = log.slice(-3000);
        await stop();
        throw new Error(`the edge server did not start:\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  spawnWrangler();
  await waitHealthy();
  return {
    url,
    persist,
    stop,
    async restart({ hard = false } = {}) {
      await kill(hard ? 'SIGKILL' : 'SIGTERM');
      spawnWrangler();
      await waitHealthy();
    },
  };
}
