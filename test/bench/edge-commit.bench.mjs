#!/usr/bin/env node
// Edge commit benchmark: appends through the sequencer vs bypassing it (bench-only mode), on
// local workerd (Miniflare, the runtime under `wrangler dev`, without its dev proxy, request log and entry worker), batches 1/10/100/1000 x writers 1/8 (one stream per writer).
// Prints one markdown section on stdout; progress on stderr.
// Run: npm run bench -- edge-commit   (or: node test/bench/edge-commit.bench.mjs)
// Env: EDGE_BENCH_SECONDS (per measurement, default 2), EDGE_BENCH_REPEATS (default 3),
// EDGE_BENCH_BATCHES / EDGE_BENCH_WRITERS (comma lists) to run a subset, EDGE_BENCH_IDS=v4 for
// random ids instead of the time-ordered UUIDv7 ids that core's `randomId` (and so the SDK) makes.
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from '../../packages/server/scripts/dev-secret.mjs';
import { Connection, uuidv7 } from './load-client.mjs';
import { serveWorker } from './miniflare-worker.mjs';

let PORT = Number(process.env.EDGE_BENCH_PORT ?? 0);
const SECONDS = Number(process.env.EDGE_BENCH_SECONDS ?? 2);
const REPEATS = Number(process.env.EDGE_BENCH_REPEATS ?? 3);
const SECRET = 'edgelog-bench-secret';
const list = (v, d) => (v ? v.split(',').map(Number) : d);
const BATCHES = list(process.env.EDGE_BENCH_BATCHES, [1, 10, 100, 1000]);
const WRITERS = list(process.env.EDGE_BENCH_WRITERS, [1, 8]);
const log = (m) => process.stderr.write(`${m}\n`);

function token(store) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ store, role: 'writer', sub: 'bench', exp: now + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

/** Bundles the Worker as wrangler would and serves it with Miniflare (workerd) on loopback. */
async function startServer() {
  const persist = mkdtempSync(join(tmpdir(), 'edgelog-bench-'));
  const server = await serveWorker({
    entry: join(root, 'packages', 'server', 'src', 'worker.ts'),
    bindings: { EDGELOG_JWT_SECRET: SECRET, EDGELOG_BENCH: '1' },
    persist: process.env.EDGE_BENCH_MEMORY ? false : persist,
    port: PORT,
  });
  PORT = server.port;
  return async () => {
    await server.dispose();
    rmSync(persist, { recursive: true, force: true });
  };
}

const V4 = process.env.EDGE_BENCH_IDS === 'v4';
const payload = 'x'.repeat(64);
const batchOf = (n, w) => {
  const ms = Date.now();
  const events = new Array(n);
  for (let i = 0; i < n; i++)
    events[i] = { id: V4 ? randomUUID() : uuidv7(ms), type: 'BenchEvent', data: { w, i, payload } };
  return events;
};

// One keep-alive connection per writer, driven by a minimal HTTP/1.1 client (load-client.mjs):
// the client shares the machine's cores with the server, so its own cost is kept small.
const connections = new Map();
async function append(store, auth, stream, events, bypass) {
  let connection = connections.get(stream);
  if (!connection) {
    connection = new Connection(PORT);
    connections.set(stream, connection);
  }
  const headers = { authorization: `Bearer ${auth}`, 'content-type': 'application/json' };
  if (bypass) headers['x-edgelog-bench'] = 'bypass';
  const path = `/v1/stores/${store}/streams/${stream}/events`;
  const res = await connection.request('POST', path, headers, JSON.stringify({ events }));
  if (res.status !== 200) throw new Error(`append ${res.status}: ${res.body.slice(0, 200)}`);
}

let run = 0;
/** One measurement: `writers` loops appending `batch`-event commits for SECONDS. */
async function measure(batch, writers, bypass) {
  const store = `bench-${process.pid}-${run++}`;
  const auth = token(store);
  // Warm the Worker, the sequencer and each writer's StreamDO outside the timed window.
  await Promise.all(
    Array.from({ length: writers }, (_, w) => append(store, auth, `w-${w}`, batchOf(1, w), bypass)),
  );
  const bodies = Array.from({ length: writers }, () => null);
  const latencies = [];
  let events = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  await Promise.all(
    bodies.map(async (_, w) => {
      let commits = 0;
      while (performance.now() < deadline || commits < 3) {
        const t0 = performance.now();
        await append(store, auth, `w-${w}`, batchOf(batch, w), bypass);
        latencies.push(performance.now() - t0);
        events += batch;
        commits++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { eps: events / seconds, p50: q(0.5), p99: q(0.99), commits: latencies.length };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const stop = await startServer();
const rows = [];
try {
  for (const writers of WRITERS) {
    for (const batch of BATCHES) {
      const seq = [];
      const byp = [];
      // Alternate the two modes so drift on the shared machine hits both alike.
      for (let r = 0; r < REPEATS; r++) {
        const order = r % 2 === 0 ? [false, true] : [true, false];
        for (const bypass of order) (bypass ? byp : seq).push(await measure(batch, writers, bypass));
      }
      const pick = (ms) => ({
        eps: median(ms.map((m) => m.eps)),
        p50: median(ms.map((m) => m.p50)),
        p99: median(ms.map((m) => m.p99)),
      });
      const s = pick(seq);
      const b = pick(byp);
      const ratios = seq.map((m, i) => m.eps / byp[i].eps);
      const row = { writers, batch, s, b, ratio: median(ratios) };
      rows.push(row);
      log(
        `writers ${writers} batch ${batch}: sequencer ${Math.round(s.eps)} ev/s, bypass ${Math.round(b.eps)} ev/s, ratio ${row.ratio.toFixed(2)}`,
      );
    }
  }
} finally {
  for (const c of connections.values()) c.close();
  await stop();
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const ms = (n) => n.toFixed(1);
const lines = [
  '## Edge commit (workerd via Miniflare, loopback HTTP)',
  '',
  `Each cell: median of ${REPEATS} runs of ${SECONDS} s; sequencer and bypass runs alternate; ratio = median of same-run sequencer/bypass ratios.`,
  `Writers append to their own streams with \`expectedVersion\` any; events carry ~100 bytes of JSON; event ids: ${V4 ? 'random UUIDv4' : "time-ordered UUIDv7 (core's `randomId`)"}.`,
  "Requests reach the Worker's own socket (Miniflare's `unsafeDirectSockets`), not Miniflare's entry worker, a second JavaScript hop per request that only the local emulator has; workerd runs the Worker and every Durable Object on one thread.",
  'The load client runs on the same cores as the server, so it is kept cheap (`load-client.mjs`): one keep-alive connection per writer with a minimal HTTP/1.1 client, ids from a pooled random buffer; the requests are the same.',
  'Bypass: the same appends committed by the StreamDO alone (bench-only header), which then keeps its own id index to answer retries, as a store without a sequencer must; its positions are stand-ins.',
  '',
  '| writers | batch | sequencer events/s | p50 ms | p99 ms | bypass events/s | p50 ms | p99 ms | ratio |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.writers} | ${r.batch} | ${fmt(r.s.eps)} | ${ms(r.s.p50)} | ${ms(r.s.p99)} | ${fmt(r.b.eps)} | ${ms(r.b.p50)} | ${ms(r.b.p99)} | ${r.ratio.toFixed(2)} |`,
  ),
  '',
];
process.stdout.write(lines.join('\n'));
