#!/usr/bin/env node
// Edge commit benchmark: appends through the sequencer vs bypassing it (bench-only mode), on
// local workerd (Miniflare, the runtime under `wrangler dev`, without its dev proxy, request log and entry worker), batches 1/10/100/1000 x writers 1/8 (one stream per writer).
// Prints one markdown section on stdout; progress on stderr.
// Run: npm run bench -- edge-commit   (or: node test/bench/edge-commit.bench.mjs)
// Env: EDGE_BENCH_SECONDS (per measurement, default 2), EDGE_BENCH_REPEATS (default 3),
// EDGE_BENCH_BATCHES / EDGE_BENCH_WRITERS (comma lists) to run a subset, EDGE_BENCH_IDS=v4 for
// random ids instead of the time-ordered UUIDv7 ids that core's `randomId` (and so the SDK) makes,
// EDGE_BENCH_TMPFS_BATCHES (default 1,100; empty for none): the cells with 8 writers measured
// again with the Durable Objects' SQLite on tmpfs (/dev/shm), where no write waits for the disk.
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from '../../packages/server/scripts/dev-secret.mjs';
import { Connection, uuidv7 } from './load-client.mjs';
import { cpuMs, serveWorker } from './miniflare-worker.mjs';

let PORT = Number(process.env.EDGE_BENCH_PORT ?? 0);
const SECONDS = Number(process.env.EDGE_BENCH_SECONDS ?? 2);
const REPEATS = Number(process.env.EDGE_BENCH_REPEATS ?? 3);
const SECRET = 'edgelog-bench-secret';
const list = (v, d) => (v ? v.split(',').map(Number) : d);
const BATCHES = list(process.env.EDGE_BENCH_BATCHES, [1, 10, 100, 1000]);
const WRITERS = list(process.env.EDGE_BENCH_WRITERS, [1, 8]);
const TMPFS =
  existsSync('/dev/shm') && process.env.EDGE_BENCH_TMPFS_BATCHES !== ''
    ? list(process.env.EDGE_BENCH_TMPFS_BATCHES, [1, 100])
    : [];
const log = (m) => process.stderr.write(`${m}\n`);

function token(store) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ store, role: 'writer', sub: 'bench', exp: now + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

const UNLIMITED = JSON.stringify({
  requestsPerSecond: 1e9,
  requestBurst: 1e9,
  writeBytesPerSecond: 1e12,
  writeBurstBytes: 1e12,
});

/** Bundles the Worker as wrangler would and serves it with Miniflare (workerd) on loopback. */
let PID = 0;
async function startServer(storageDir = tmpdir()) {
  const persist = mkdtempSync(join(storageDir, 'edgelog-bench-'));
  const server = await serveWorker({
    entry: join(root, 'packages', 'server', 'src', 'worker.ts'),
    // Admission stays on (its checks are part of every request's cost) with limits no cell
    // reaches: the 8-writer single-event cells went past the default 1,000 requests/s.
    bindings: { EDGELOG_JWT_SECRET: SECRET, EDGELOG_BENCH: '1', EDGELOG_ADMISSION: UNLIMITED },
    persist: process.env.EDGE_BENCH_MEMORY ? false : persist,
    port: PORT,
  });
  PORT = server.port;
  PID = server.pid;
  return async () => {
    for (const c of connections.values()) c.close();
    connections.clear();
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
  const cpu0 = cpuMs(PID);
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
  const cpuUs = ((cpuMs(PID) - cpu0) * 1000) / latencies.length;
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { eps: events / seconds, p50: q(0.5), p99: q(0.99), cpuUs, commits: latencies.length };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Every cell of `writers` x `batches`: sequencer and bypass runs, alternating. */
async function cells(writersList, batches) {
  const rows = [];
  for (const writers of writersList) {
    for (const batch of batches) {
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
        cpuUs: median(ms.map((m) => m.cpuUs)),
      });
      const s = pick(seq);
      const b = pick(byp);
      const ratios = seq.map((m, i) => m.eps / byp[i].eps);
      const row = { writers, batch, s, b, ratio: median(ratios) };
      rows.push(row);
      log(
        `writers ${writers} batch ${batch}: sequencer ${Math.round(s.eps)} ev/s (${Math.round(s.cpuUs)} us CPU/commit), bypass ${Math.round(b.eps)} ev/s (${Math.round(b.cpuUs)} us), ratio ${row.ratio.toFixed(2)}`,
      );
    }
  }
  return rows;
}

let stop = await startServer();
let rows;
try {
  rows = await cells(WRITERS, BATCHES);
} finally {
  await stop();
}
let tmpfsRows = [];
if (TMPFS.length > 0) {
  log('the same, with the storage on tmpfs:');
  PORT = Number(process.env.EDGE_BENCH_PORT ?? 0);
  stop = await startServer('/dev/shm');
  try {
    tmpfsRows = await cells([8], TMPFS);
  } finally {
    await stop();
  }
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const ms = (n) => n.toFixed(1);
const row = (r) =>
  `| ${r.writers} | ${r.batch} | ${fmt(r.s.eps)} | ${ms(r.s.p50)} | ${ms(r.s.p99)} | ${fmt(r.s.cpuUs)} | ${fmt(r.b.eps)} | ${ms(r.b.p50)} | ${ms(r.b.p99)} | ${fmt(r.b.cpuUs)} | ${r.ratio.toFixed(2)} |`;
const lines = [
  '## Edge commit (workerd via Miniflare, loopback HTTP)',
  '',
  `Each cell: median of ${REPEATS} runs of ${SECONDS} s; sequencer and bypass runs alternate; ratio = median of same-run sequencer/bypass ratios.`,
  `Writers append to their own streams with \`expectedVersion\` any; events carry ~100 bytes of JSON; event ids: ${V4 ? 'random UUIDv4' : "time-ordered UUIDv7 (core's `randomId`)"}.`,
  "Requests reach the Worker's own socket (Miniflare's `unsafeDirectSockets`), not Miniflare's entry worker, a second JavaScript hop per request that only the local emulator has; workerd runs the Worker and every Durable Object on one thread.",
  'The load client runs on the same cores as the server, so it is kept cheap (`load-client.mjs`): one keep-alive connection per writer with a minimal HTTP/1.1 client, ids from a pooled random buffer; the requests are the same.',
  'Bypass: the same appends committed by the StreamDO alone (bench-only header), which then keeps its own id index to answer retries, as a store without a sequencer must; its positions are stand-ins.',
  'Admission (rate limits) is on, as in production, with limits no cell reaches (the default 1,000 requests/s per store would refuse the fastest single-event cells).',
  'CPU µs/commit: CPU time (user + system, every thread) of the workerd process per commit, the median of the runs; unlike events/s it does not count time spent waiting for a core the shared machine gives to others.',
  '',
  '| writers | batch | sequencer events/s | p50 ms | p99 ms | CPU µs/commit | bypass events/s | p50 ms | p99 ms | CPU µs/commit | ratio |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(row),
  '',
];
if (tmpfsRows.length > 0)
  lines.push(
    "The same cells with 8 writers, with the Durable Objects' SQLite files on tmpfs (`/dev/shm`) instead of the disk. On disk the workerd thread also waits for SQLite's writes and fsyncs; on tmpfs nothing waits for a device and the thread's CPU is the limit, so these cells show what each path costs in CPU.",
    '',
    '| writers | batch | sequencer events/s | p50 ms | p99 ms | CPU µs/commit | bypass events/s | p50 ms | p99 ms | CPU µs/commit | ratio |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...tmpfsRows.map(row),
    '',
  );
process.stdout.write(lines.join('\n'));
