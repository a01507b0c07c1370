#!/usr/bin/env node
// Edge projection catch-up: a store's log of N events is written by a Worker with no
// projections; then the same state is served by a Worker that has a keyed projection, and we
// time its ProjectionDO folding the whole log from position 0 (a newly deployed projection).
// Local workerd through Miniflare; prints one markdown section. Env: EDGE_PROJ_EVENTS (100000).
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from '../../packages/server/scripts/dev-secret.mjs';
import { serveWorker } from './miniflare-worker.mjs';

const EVENTS = Number(process.env.EDGE_PROJ_EVENTS ?? 100_000);
const BATCH = 1000;
const SECRET = 'edgelog-bench-secret';
const STORE = 'projbench';
const log = (m) => process.stderr.write(`${m}\n`);

function token() {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ store: STORE, role: 'writer', exp: now + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

const serve = (entry, persist) => serveWorker({ entry, persist, bindings: { EDGELOG_JWT_SECRET: SECRET } });

const auth = { authorization: `Bearer ${token()}` };
const persist = mkdtempSync(join(tmpdir(), 'edgelog-projbench-'));
try {
  // 1. Write the log with the plain server (no projections configured).
  const writer = await serve(join(root, 'packages', 'server', 'src', 'worker.ts'), persist);
  log(`writing ${EVENTS} events`);
  for (let written = 0; written < EVENTS; written += BATCH * 8) {
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        const events = Array.from({ length: BATCH }, (_, i) => ({
          id: randomUUID(),
          type: 'Reserved',
          data: { sku: `sku-${(written + w * BATCH + i) % 1000}`, qty: 1 },
        }));
        const res = await fetch(`${writer.url}/v1/stores/${STORE}/streams/order-${w}/events`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ events }),
        });
        if (!res.ok) throw new Error(`append ${res.status}: ${await res.text()}`);
      }),
    );
  }
  const head = (
    await (await fetch(`${writer.url}/v1/stores/${STORE}/events?limit=1`, { headers: auth })).json()
  ).head;
  await writer.dispose();

  // 2. Serve the same state with the projection configured, and time the catch-up.
  const reader = await serve(join(root, 'test', 'bench', 'edge-projection', 'worker.ts'), persist);
  const start = performance.now();
  let status;
  for (;;) {
    status = await (
      await fetch(`${reader.url}/v1/stores/${STORE}/projections/stock/status`, { headers: auth })
    ).json();
    if (status.checkpoint >= head) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - start;
  const row = await (
    await fetch(`${reader.url}/v1/stores/${STORE}/projections/stock/sku-1`, { headers: auth })
  ).json();
  await reader.dispose();
  if (row.state?.events !== head / 1000) throw new Error(`wrong fold: ${JSON.stringify(row)}`);
  const rate = Math.round(head / (ms / 1000)).toLocaleString('en-US');
  console.log(`## Edge projection catch-up (workerd via Miniflare): \`test/bench/edge-projection.bench.mjs\`

A keyed projection (1,000 keys) deployed over an existing log folds it from position 0 in
pages of 10,000 read from the SequencerDO, writing the touched rows and the checkpoint in one
SQLite transaction per page. One run (the time includes the status polls, every 20 ms).

| events | catch-up | events/s | target |
|---:|---:|---:|---|
| ${head.toLocaleString('en-US')} | ${Math.round(ms).toLocaleString('en-US')} ms | ${rate} | ≥ 100,000 events/s |`);
} finally {
  rmSync(persist, { recursive: true, force: true });
}
