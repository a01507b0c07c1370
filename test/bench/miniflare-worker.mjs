// Shared by the edge benchmarks: bundles a Worker entry as wrangler would and serves it with
// Miniflare (workerd) on loopback, with the edgelog Durable Objects backed by SQLite.
// Requests go straight to the Worker's own socket (`unsafeDirectSockets`), not through
// Miniflare's entry worker: that extra JavaScript hop per request exists only in the local
// emulator (Cloudflare routes outside the isolate), and in one workerd process it runs on the
// same thread as the Worker and its Durable Objects.
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';

/** As in wrangler.toml. */
export const COMPATIBILITY_DATE = '2026-04-20';

/**
 * CPU time (user + system, ms) the workerd process of `pid` has used so far, every thread:
 * the Worker, its Durable Objects and their SQLite. Steadier than throughput on a shared
 * machine, since time the process waits for a core does not count.
 */
export function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Starts the Worker; resolves with its URL, its port, the workerd process id and `dispose()`. */
export async function serveWorker({ entry, bindings, persist, port = 0 }) {
  const built = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    external: ['cloudflare:*'],
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    logLevel: 'warning',
  });
  const mf = new Miniflare({
    modules: true,
    script: built.outputFiles[0].text,
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: {
      STREAMS: { className: 'StreamDO', useSQLite: true },
      SEQUENCERS: { className: 'SequencerDO', useSQLite: true },
      PROJECTIONS: { className: 'ProjectionDO', useSQLite: true },
    },
    bindings,
    durableObjectsPersist: persist,
    host: '127.0.0.1',
    unsafeDirectSockets: [{ host: '127.0.0.1', port }],
  });
  await mf.ready;
  const direct = await mf.unsafeGetDirectURL();
  const pid = Number(
    execSync(`pgrep -n -P ${process.pid} workerd`, { encoding: 'utf8' }).trim() || Number.NaN,
  );
  return {
    url: direct.toString().replace(/\/$/, ''),
    port: Number(direct.port),
    pid,
    dispose: () => mf.dispose(),
  };
}
