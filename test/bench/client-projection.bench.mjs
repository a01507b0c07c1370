// Client projections and snapshots in real Chromium (persistent context: IndexedDB on disk).
// 1. A cold client pulls 100,000 events with and without a keyed projection (1,000 keys)
//    folding them in the same transactions: the projection's share is the ratio of the two.
// 2. A command on a 100,000-event aggregate: the first load replays the stream (and stores a
//    snapshot), later loads start from the snapshot.
// Both read from an in-memory server inside the worker (no network). Medians of ROUNDS rounds,
// rounds alternating the compared cases. Run: node test/bench/client-projection.bench.mjs
// (CHROMIUM_PATH overrides /usr/bin/chromium; the page server listens on PORT, default 8829).

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBenchPage } from './chromium-page.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PORT = Number(process.env.PORT ?? 8829);
const EVENTS = Number(process.env.CLIENT_PROJ_EVENTS ?? 100_000);

const { page, context, close } = await openBenchPage({
  page: join(here, 'client-projection/page.ts'),
  worker: join(here, 'client-projection/worker.ts'),
  port: PORT,
  name: 'projbench',
});
try {
  const run = (name, ...args) => page.evaluate(([n, a]) => globalThis.bench[n](...a), [name, args]);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  const plain = [];
  const folded = [];
  const cold = [];
  const warm = [];
  for (let i = 0; i < ROUNDS; i++) {
    plain.push(await run('pull', EVENTS, false));
    folded.push(await run('pull', EVENTS, true));
    cold.push(await run('aggregate', EVENTS, true));
    warm.push(await run('aggregate', EVENTS, false));
    process.stderr.write(
      `round ${i + 1}: pull ${plain.at(-1).toFixed(0)} ms, pull+projection ${folded.at(-1).toFixed(0)} ms, ` +
        `aggregate cold ${cold.at(-1).toFixed(1)} ms, from snapshot ${warm.at(-1).toFixed(1)} ms\n`,
    );
  }
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  const rate = (ms) => `${fmt((EVENTS / ms) * 1000)} ev/s (${fmt(ms)} ms)`;
  const p = median(plain);
  const f = median(folded);
  const c = median(cold);
  const w = median(warm);
  const version = context.browser()?.version() ?? 'chromium';
  console.log(`## Client projections and snapshots in Chromium: \`test/bench/client-projection.bench.mjs\`

Chromium ${version}, persistent context (IndexedDB on disk), medians of ${ROUNDS} rounds. A cold
client pulls ${fmt(EVENTS)} confirmed events (pages of 5,000 from an in-memory server inside the
worker) with and without a keyed projection (1,000 keys) folded in the same transactions (the
SDK's default catch-up: the pages that have arrived, up to 50,000 events, per transaction); the
projection's own rate counts only the extra time it adds. Aggregate: \`execute\` (load, decide,
append) on a ${fmt(EVENTS)}-event stream, first with a full replay (which stores a snapshot), then
from the snapshot plus the tail.

| work | figure | target |
|---|---:|---|
| cold pull, no projection | ${rate(p)} | |
| cold pull + keyed projection (catch-up in the worker) | ${rate(f)} | ≥ 50,000 ev/s |
| the projection's share alone (events / extra time) | ${f > p ? rate(f - p) : 'no measurable extra time'} | |
| execute on a ${fmt(EVENTS)}-event aggregate, full replay | ${c.toFixed(1)} ms | |
| execute on a ${fmt(EVENTS)}-event aggregate, from its snapshot | ${w.toFixed(1)} ms (${(c / w).toFixed(0)}× faster) | < 20 ms |`);
} finally {
  await close();
}
