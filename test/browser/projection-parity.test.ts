import 'fake-indexeddb/auto';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HttpTransport, WorkerCore } from '@edgelog/client/worker';
import type { EventEnvelope } from '@edgelog/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { projections, registry } from '../../apps/demo/src/domain/index.ts';
import { type EdgeServer, root, startEdgeServer } from '../support/edge-server.ts';
import { testPort } from '../support/ports.ts';

// One projection definition, two runners: the client worker (over fake-indexeddb here, with
// the real sync engine) and the edge (ProjectionDO under wrangler dev, the demo's Worker).
// For random histories written by two clients offline and by a third writer straight to the
// server (old schema versions and a poison event included), every row must be the same.

const PORT = testPort(3);
const SECRET = 'parity-e2e-secret';
const api = `http://127.0.0.1:${PORT}`;

function token(store: string, role: 'writer' | 'admin' = 'writer'): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ store, role, iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

/** The test's own calls run as admin: it reads parked events too. */
async function http<T>(store: string, path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${api}/v1/stores/${store}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token(store, 'admin')}`, 'content-type': 'application/json' },
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const head = async (store: string) => (await http<{ head: number }>(store, '/events?after=0&limit=1')).head;

type Input = { type: string; data: unknown; schemaVersion?: number };
type Op = { who: 0 | 1 | 'server'; stream: string; event: Input };

const sku = fc.constantFrom('tea', 'cake');
const orderId = fc.constantFrom('o1', 'o2');
const qty = fc.integer({ min: 1, max: 9 });
const productOp = sku.chain((s) =>
  fc
    .oneof(
      fc.record({
        type: fc.constant('ProductListed'),
        data: fc.constant({ sku: s, name: `N ${s}`, priceCents: 250 }),
      }),
      fc.record({ type: fc.constant('StockReceived'), data: qty.map((q) => ({ sku: s, quantity: q })) }),
      fc.record({
        type: fc.constant('StockReserved'),
        data: fc.tuple(orderId, qty).map(([o, q]) => ({ sku: s, orderId: o, quantity: q })),
      }),
      fc.record({
        type: fc.constant('StockReleased'),
        data: fc.tuple(orderId, qty).map(([o, q]) => ({ sku: s, orderId: o, quantity: q })),
      }),
    )
    .map((event): Omit<Op, 'who'> => ({ stream: `product-${s}`, event })),
);
const orderOp = orderId.chain((o) =>
  fc
    .oneof(
      fc.constant<Input>({ type: 'OrderOpened', data: { orderId: o, customer: 'Ada', openedBy: 'u' } }),
      fc.tuple(sku, qty).map(
        ([s, q]): Input => ({
          type: 'LineAdded',
          data: { sku: s, quantity: q, unitPriceCents: 100 * q },
        }),
      ),
      // Stored at schema version 1: both sides read it upcast.
      fc
        .tuple(sku, qty)
        .map(([s, q]): Input => ({ type: 'LineAdded', schemaVersion: 1, data: { sku: s, qty: q } })),
      sku.map((s): Input => ({ type: 'LineRemoved', data: { sku: s } })),
      fc.constant<Input>({ type: 'OrderPlaced', data: { placedAt: '2026-01-01', totalCents: 1 } }),
      fc.constant<Input>({ type: 'OrderCancelled', data: { reason: 'r' } }),
    )
    .map((event): Omit<Op, 'who'> => ({ stream: `order-${o}`, event })),
);
/** Stored at version 1 with data that version 1 refuses: it cannot be upcast, so it is parked. */
const poison = orderId.map(
  (o): Op => ({
    who: 'server',
    stream: `order-${o}`,
    event: { type: 'LineAdded', schemaVersion: 1, data: { sku: 'NOT A SKU', qty: 1 } },
  }),
);
const opArb = fc
  .tuple(fc.constantFrom<Op['who']>(0, 0, 1, 1, 'server'), fc.oneof(productOp, orderOp))
  .map(([who, op]): Op => ({ who, ...op }));
const historyArb = fc.record({
  first: fc.array(opArb, { minLength: 1, maxLength: 25 }),
  poison: fc.array(poison, { minLength: 1, maxLength: 2 }),
  second: fc.array(opArb, { maxLength: 25 }),
});

let server: EdgeServer | undefined;
const open: WorkerCore[] = [];
let runs = 0;

async function client(store: string): Promise<WorkerCore> {
  const core = new WorkerCore({
    projections,
    registry,
    transport: (o, t) =>
      new HttpTransport(o.url, o.store, t, fetch, (u) => new WebSocket(u) as unknown as globalThis.WebSocket),
    engine: { backoffBase: 5, backoffCap: 200 },
  });
  open.push(core);
  await core.init({
    url: api,
    store,
    dbName: `parity-${store}`,
    online: false,
    token: token(store),
    live: false,
  });
  return core;
}

async function settle(store: string, clients: WorkerCore[]): Promise<number> {
  for (let i = 0; i < 300; i++) {
    const h = await head(store);
    let done = true;
    for (const c of clients) {
      const s = await c.syncNow();
      if (s.pending > 0 || s.lastConfirmedPosition < h) done = false;
    }
    if (done) return h;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the clients did not settle');
}

async function write(store: string, clients: WorkerCore[], ops: readonly Op[]): Promise<void> {
  for (const op of ops) {
    if (op.who === 'server') {
      const event = { id: crypto.randomUUID(), metadata: {}, schemaVersion: 2, ...op.event };
      if (op.event.type !== 'LineAdded') event.schemaVersion = 1;
      await http(store, `/streams/${op.stream}/events`, {
        method: 'POST',
        body: JSON.stringify({ events: [event] }),
      });
    } else {
      await clients[op.who]!.append(op.stream, [op.event]);
    }
  }
}

async function edgeRows(store: string, name: string, minPosition: number) {
  const page = await http<{ rows: Array<{ key: string; state: unknown }> }>(
    store,
    `/projections/${name}?minPosition=${minPosition}&timeoutMs=30000&limit=1000`,
  );
  return page.rows;
}

const ready = existsSync(join(root, 'wrangler.toml'));

describe.skipIf(!ready)('client and edge projections agree (wrangler dev)', () => {
  beforeAll(async () => {
    // The server writer stores history as it was before the current schemas (the poison events
    // are version-1 data that version 1 refuses), so the edge does not check writes here.
    server = await startEdgeServer(PORT, SECRET, { vars: { EDGELOG_WRITE_VALIDATION: 'off' } });
  }, 120_000);
  afterAll(async () => {
    for (const c of open.splice(0)) await c.close();
    await server?.stop();
  });

  it('gives identical read models for the same random history, poison events parked on both sides', async () => {
    await fc.assert(
      fc.asyncProperty(historyArb, async (h) => {
        const store = `parity-${Date.now().toString(36)}-${++runs}`;
        const clients = [await client(store), await client(store)];
        try {
          // Both clients write offline; the server gets the third writer's events meanwhile.
          await write(store, clients, h.first);
          await write(store, clients, h.poison);
          clients[0]!.setOnline(true);
          await settle(store, [clients[0]!]);
          // The second client's pending events now interleave with confirmed foreign ones.
          await write(store, clients, h.second);
          clients[1]!.setOnline(true);
          const position = await settle(store, clients);
          for (const d of projections) {
            const edge = await edgeRows(store, d.name, position);
            for (const c of clients) {
              const local = await c.queryProjection(d.name, { limit: 1000 });
              expect(local).toEqual(edge);
            }
          }
          const parked = await http<{ events: EventEnvelope[] }>(store, '/projections/orders/parked');
          expect(parked.events.length).toBe(h.poison.length);
          for (const c of clients) {
            const status = await c.projectionStatus();
            expect(status.find((s) => s.name === 'orders')?.parked).toBe(h.poison.length);
          }
        } finally {
          for (const c of clients) await c.close();
        }
      }),
      { numRuns: 6, endOnFailure: true },
    );
  });
});
