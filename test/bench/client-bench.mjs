// edgelog client figures in real Chromium (persistent context: IndexedDB on disk).
// Each SDK figure sits beside the raw idb figure for the same work (one record per event),
// measured in the same run; rounds alternate raw and SDK; medians of ROUNDS rounds.
// Run: node test/bench/client-bench.mjs   (CHROMIUM_PATH overrides /usr/bin/chromium)

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBenchPage } from './chromium-page.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PORT = Number(process.env.PORT ?? 8792);

// CLIENT_SRC=<dir> benches another copy of packages/client/src (e.g. the code before a change)
// with the same page and worker, to compare both in one session; CORE_SRC=<dir> likewise
// replaces packages/core/src.
const clientSrc = process.env.CLIENT_SRC;
const coreSrc = process.env.CORE_SRC;
const plugins = [
  {
    name: 'client-src',
    setup(b) {
      if (clientSrc)
        b.onResolve({ filter: /^@edgelog\/client(\/worker)?$/ }, (args) => ({
          path: join(clientSrc, args.path.endsWith('/worker') ? 'worker.ts' : 'index.ts'),
        }));
      if (coreSrc) b.onResolve({ filter: /^@edgelog\/core$/ }, () => ({ path: join(coreSrc, 'index.ts') }));
    },
  },
];
const { page, context, close } = await openBenchPage({
  page: join(here, 'client-app/page.ts'),
  worker: join(here, 'client-app/worker.ts'),
  entries: { 'raw-worker': join(here, 'client-app/raw-worker.ts') },
  port: PORT,
  name: 'bench',
  plugins,
});

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const run = (name, ...args) => page.evaluate(([n, a]) => globalThis.bench[n](...a), [name, args]);

const rows = [];
// ONLY=<regex> runs the figures whose label matches (while iterating; the report runs them all).
const only = process.env.ONLY ? new RegExp(process.env.ONLY) : undefined;
// An SDK function may answer [ms, n]: `{n}` in the label becomes the median n.
async function pair(label, events, raw, sdk, target, rounds = ROUNDS) {
  if (only && !only.test(label)) return;
  const r = [];
  const s = [];
  const notes = [];
  for (let i = 0; i < rounds; i++) {
    if (raw) r.push(await run(...raw));
    const answer = await run(...sdk);
    s.push(Array.isArray(answer) ? answer[0] : answer);
    if (Array.isArray(answer)) notes.push(answer[1]);
  }
  const rawMs = raw ? median(r) : undefined;
  const sdkMs = median(s);
  const shown = notes.length > 0 ? label.replace('{n}', fmt(median(notes))) : label;
  rows.push({ label: shown, events, rawMs, sdkMs, target, rounds });
  process.stderr.write(`${shown}: raw ${rawMs?.toFixed(1) ?? '-'} ms, sdk ${sdkMs.toFixed(1)} ms\n`);
}

// The append rows are timed after the same work was done WARM times, untimed, on other streams
// (both sides; see page.ts). One row keeps the first call of a new worker, for comparison.
const WARM = Number(process.env.WARM ?? 3);
await pair(
  'batched append, 20 × 100 events',
  2000,
  ['rawBatch', 20, 100, WARM],
  ['sdkBatch', 20, 100, WARM],
  '≥ 50,000 ev/s',
);
await pair(
  '100 concurrent single-event appends',
  100,
  ['rawConcurrent', 100, WARM],
  ['sdkConcurrent', 100, WARM],
  '≥ 10,000 ev/s',
);
await pair(
  '100 concurrent single-event appends, the first call of a new client (nothing warmed)',
  100,
  ['rawConcurrent', 100, 0],
  ['sdkConcurrent', 100, 0],
  '',
);
await pair(
  '300 sequential awaited single appends',
  300,
  ['rawSequential', 300, WARM],
  ['sdkSequential', 300, WARM],
  '≥ 0.8 × raw',
);
await pair(
  '300 sequential awaited single appends: the same raw writes made by a dedicated worker, driven from the page (no SDK code: the hop the SDK cannot avoid)',
  300,
  ['rawSequential', 300, WARM],
  ['hopSequential', 300, WARM],
  '',
);
await pair(
  'load a 10,000-event stream (readStream, 2 pages via comlink; written as 100 × 100)',
  10000,
  ['rawLoad', 10000],
  ['sdkLoad', 10000, 100, 'read'],
  '< 100 ms',
);
await pair(
  'load + decide + append on a 10,000-event stream (execute; written as 100 × 100)',
  10000,
  undefined,
  ['sdkLoad', 10000, 100, 'execute'],
  '< 100 ms',
);
await pair(
  'load + decide + append on a 10,000-event stream (execute; written as 10,000 × 1)',
  10000,
  undefined,
  ['sdkLoad', 10000, 1, 'execute'],
  '< 100 ms',
);
await pair(
  'load + decide + append on a 10,000-event stream (execute; written as 10,000 × 1, synced, its settled records merged into {n}; medians of 3 rounds)',
  10000,
  undefined,
  ['sdkLoadSynced', 10000],
  '< 100 ms',
  3,
);
await pair(
  'cold pull of 100,000 confirmed events into IndexedDB (in-worker synthetic server, pages of 1,000)',
  100000,
  undefined,
  ['sdkPull', 100000, 1000],
  '≥ 50,000 ev/s',
);
await pair(
  'cold pull of 100,000 confirmed events (pages of 5,000)',
  100000,
  undefined,
  ['sdkPull', 100000, 5000],
  '≥ 50,000 ev/s',
);

const version = context.browser()?.version() ?? 'chromium';
console.log('## Client SDK in Chromium (test/bench/client-bench.mjs)\n');
console.log(
  `Chromium ${version}, persistent context (IndexedDB on disk), medians of ${ROUNDS} rounds. Append rows are timed after ${WARM} untimed runs of the same work on other streams, on both sides (a new worker's code is not yet compiled by the JIT; the page's raw code is, after the first round). The SDK path is page → worker (appends as arrays on the worker's channel beside comlink's messages, reads through comlink) → IndexedDB; the raw figure is idb on the page's thread, one record per event, in the same run. Pulls read from an in-memory server inside the worker (no network).\n`,
);
console.log('| work | raw idb (1 record/event) | SDK | SDK / raw | target |');
console.log('|---|---:|---:|---:|---|');
for (const r of rows) {
  const rate = (ms) => `${fmt((r.events / ms) * 1000)} ev/s (${ms.toFixed(1)} ms)`;
  const ratio = r.rawMs ? `${(r.rawMs / r.sdkMs).toFixed(2)}×` : '–';
  console.log(
    `| ${r.label} | ${r.rawMs ? rate(r.rawMs) : '–'} | ${rate(r.sdkMs)} | ${ratio} | ${r.target} |`,
  );
}

await close();
