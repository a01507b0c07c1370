import 'fake-indexeddb/auto';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Faults, faulty, seeded } from '@edgelog/client/testing';
import { HttpTransport, type RejectionNotice, WorkerCore } from '@edgelog/client/worker';
import type { EventEnvelope } from '@edgelog/core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type EdgeServer, startEdgeServer } from '../support/edge-server.ts';
import { testPort } from '../support/ports.ts';
import { account } from './app/domain.ts';
import type { App } from './app/page.ts';
import { buildApp, type Gate, launch, serve, waitUntil } from './harness.ts';

declare global {
  var app: App;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const config = join(root, 'wrangler.toml');
const SERVER_PORT = testPort(6);
const PAGE_PORT = testPort(7);
const SECRET = 'client-e2e-secret';
const api = `http://127.0.0.1:${SERVER_PORT}`;

/** A writer's token for `store`; with `streams`, limited to the streams with those prefixes. */
function token(store: string, streams?: string[]): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = { store, role: 'writer', iat: now, exp: now + 3600, ...(streams ? { streams } : {}) };
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

/** Appends `n` events to `stream` over HTTP, as a writer outside the clients. */
async function writeEvents(store: string, stream: string, n: number): Promise<void> {
  const res = await fetch(`${api}/v1/stores/${store}/streams/${stream}/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token(store)}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      events: Array.from({ length: n }, (_, i) => ({ id: randomUUID(), type: 'Noted', data: { i } })),
    }),
  });
  expect(res.status).toBe(200);
}

/** A client over plain HTTP and WebSocket transport, with the fetch it is given. */
function httpCore(fetchImpl: typeof fetch = fetch): WorkerCore {
  const core = new WorkerCore({
    transport: (o, t) =>
      new HttpTransport(
        o.url,
        o.store,
        t,
        fetchImpl,
        (u) => new WebSocket(u) as unknown as globalThis.WebSocket,
      ),
    engine: { backoffBase: 5, backoffCap: 200 },
  });
  open.push(core);
  return core;
}

async function serverEvents(store: string): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = [];
  for (let after = 0; ; ) {
    const res = await fetch(`${api}/v1/stores/${store}/events?after=${after}&limit=5000`, {
      headers: { authorization: `Bearer ${token(store)}` },
    });
    if (!res.ok) throw new Error(`read all: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { events: EventEnvelope[] };
    out.push(...page.events);
    if (page.events.length < 5000) return out;
    after = page.events.at(-1)!.position!;
  }
}

let server: EdgeServer | undefined;
async function startServer(): Promise<void> {
  server = await startEdgeServer(SERVER_PORT, SECRET);
}

const open: WorkerCore[] = [];
let dbs = 0;
async function nodeClient(store: string, faults?: Faults, seed = 1, auth = token(store)) {
  const random = seeded(seed);
  const core = new WorkerCore({
    deciders: { account },
    transport: (o, t) => {
      const http = new HttpTransport(
        o.url,
        o.store,
        t,
        fetch,
        (u) => new WebSocket(u) as unknown as globalThis.WebSocket,
      );
      return faults ? faulty(http, faults, random) : http;
    },
    engine: { backoffBase: 5, backoffCap: 200, random },
  });
  open.push(core);
  const rejected: RejectionNotice[] = [];
  core.onRejected((r) => rejected.push(r));
  await core.init({ url: api, store, dbName: `e2e-${store}-${++dbs}`, online: false, token: auth });
  return { core, rejected };
}

async function settle(store: string, ...clients: WorkerCore[]) {
  for (let i = 0; i < 400; i++) {
    const head = (await serverEvents(store)).length;
    let done = true;
    for (const c of clients) {
      const s = await c.syncNow();
      if (s.pending > 0 || s.lastConfirmedPosition < head) done = false;
    }
    if (done) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the clients did not settle');
}

async function expectConverged(store: string, ...clients: WorkerCore[]) {
  const all = await serverEvents(store);
  expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
  expect(all.map((e) => e.position)).toEqual(all.map((_, i) => i + 1));
  for (const s of new Set(all.map((e) => e.stream))) {
    const onServer = all.filter((e) => e.stream === s);
    expect(onServer.map((e) => e.version)).toEqual(onServer.map((_, i) => i + 1));
    for (const c of clients) {
      const local = await c.readStream(s, { limit: 5000 });
      expect(local.events.map((e) => [e.id, e.version, e.serverPosition, e.pending])).toEqual(
        onServer.map((e) => [e.id, e.version, e.position, false]),
      );
    }
  }
  for (const c of clients) {
    const local = (await c.readAll({ limit: 5000 })).events;
    expect(local.map((e) => e.id).sort()).toEqual(all.map((e) => e.id).sort());
  }
  return all;
}

const ready = existsSync(config);

describe.skipIf(!ready)('sync against the real edge server (wrangler dev)', () => {
  beforeAll(startServer, 120_000);
  afterAll(async () => {
    for (const c of open.splice(0)) await c.close();
    await server?.stop();
  });

  it('offline appends on two clients, to different streams and the same one: once each, replayed or reported', async () => {
    const store = `e2e-${Date.now().toString(36)}`;
    const a = await nodeClient(store);
    const b = await nodeClient(store);
    a.core.setOnline(true);
    b.core.setOnline(true);
    await a.core.execute('account', 'acc-1', { kind: 'deposit', amount: 100 });
    await settle(store, a.core, b.core);
    a.core.setOnline(false);
    b.core.setOnline(false);
    await a.core.append('notes-a', [
      { type: 'Noted', data: { n: 1 } },
      { type: 'Noted', data: { n: 2 } },
    ]);
    await b.core.append('notes-b', [{ type: 'Noted', data: { n: 3 } }]);
    await a.core.execute('account', 'acc-1', { kind: 'withdraw', amount: 80 });
    await b.core.execute('account', 'acc-1', { kind: 'withdraw', amount: 50 });
    await b.core.execute('account', 'acc-1', { kind: 'deposit', amount: 10 });
    await a.core.append('doc', [{ type: 'Edited', data: { by: 'a' } }], { expectedVersion: 'no_stream' });
    await b.core.append('doc', [{ type: 'Edited', data: { by: 'b' } }], { expectedVersion: 0 });
    await b.core.append('doc', [{ type: 'Edited', data: { by: 'b2' } }]);
    a.core.setOnline(true);
    await settle(store, a.core);
    b.core.setOnline(true);
    await settle(store, a.core, b.core);
    await settle(store, a.core, b.core);
    const all = await expectConverged(store, a.core, b.core);
    const acc = all
      .filter((e) => e.stream === 'acc-1')
      .map((e) => [e.type, (e.data as { amount: number }).amount]);
    expect(acc).toEqual([
      ['Deposited', 100],
      ['Withdrawn', 80],
      ['Deposited', 10],
    ]);
    expect(all.filter((e) => e.stream === 'doc').map((e) => (e.data as { by: string }).by)).toEqual([
      'a',
      'b2',
    ]);
    expect(b.rejected.map((r) => r.error.code).sort()).toEqual(['CommandRejected', 'WrongExpectedVersion']);
    expect(a.rejected).toEqual([]);
  });

  it('stays live over the WebSocket: a write on one client reaches the other without a sync call', async () => {
    const store = `e2e-l-${Date.now().toString(36)}`;
    const a = await nodeClient(store);
    const b = await nodeClient(store);
    a.core.setOnline(true);
    b.core.setOnline(true);
    await settle(store, a.core, b.core);
    await waitUntil(() => b.core.status().live, 10_000, 'the WebSocket to open');
    const seen: string[] = [];
    await b.core.subscribe({}, (events) => {
      for (const e of events) seen.push(e.id);
    });
    const started = Date.now();
    const r = await a.core.append('live', [{ type: 'Noted', data: {} }]);
    const [written] = (await a.core.readStream('live')).events;
    await waitUntil(() => seen.includes(written!.id), 10_000, 'the event to reach the other client');
    expect(r.version).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a client whose token sees only some streams catches up over the gaps and past the scan budget', async () => {
    const store = `e2e-s-${Date.now().toString(36)}`;
    const write = (stream: string, n: number) => writeEvents(store, stream, n);
    // 12,000 events the client may not see before its own streams' five: more than one read
    // examines (10,000 positions), so the first page of its pull is empty, short of the head.
    for (let i = 0; i < 12; i++) await write(`other-${i}`, 1000);
    await write('acc-1', 2);
    await write('acc-2', 3);
    const { core } = await nodeClient(store, undefined, 1, token(store, ['acc-']));
    await core.append('acc-3', [{ type: 'Noted', data: { mine: true } }]);
    core.setOnline(true);
    await waitUntil(
      async () => {
        const s = await core.syncNow();
        return s.pending === 0 && s.lastConfirmedPosition === 12_006;
      },
      30_000,
      'the scoped client to reach the head',
    );
    // The local log keeps its own order (acc-3 was written before the pull): compare by position.
    const local = (await core.readAll({ limit: 100 })).events;
    expect(
      local.map((e) => [e.stream, e.serverPosition]).sort((x, y) => Number(x[1]) - Number(y[1])),
    ).toEqual([
      ['acc-1', 12_001],
      ['acc-1', 12_002],
      ['acc-2', 12_003],
      ['acc-2', 12_004],
      ['acc-2', 12_005],
      ['acc-3', 12_006],
    ]);
    expect((await serverEvents(store)).at(-1)).toMatchObject({ stream: 'acc-3', position: 12_006 });
  });

  it('a client whose token sees only some streams takes live events over the gaps without a pull each', async () => {
    const store = `e2e-l-${Date.now().toString(36)}`;
    const write = (stream: string, n: number) => writeEvents(store, stream, n);
    await write('other-0', 3);
    await write('acc-1', 1);
    const pulls: string[] = [];
    const counting: typeof fetch = (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes('/sync/pull')) pulls.push(url);
      return fetch(input, init);
    };
    const core = httpCore(counting);
    await core.init({ url: api, store, dbName: `e2e-${store}`, online: true, token: token(store, ['acc-']) });
    await waitUntil(
      async () => core.status().live && core.status().lastConfirmedPosition === 4,
      10_000,
      'the scoped client to be live at the head',
    );
    // Give the socket's catch-up time to end before counting.
    await new Promise((r) => setTimeout(r, 200));
    const pullsBefore = pulls.length;
    for (let i = 0; i < 5; i++) {
      await write(`other-${i}`, 2);
      await write('acc-1', 1);
    }
    const head = 4 + 5 * 3;
    await waitUntil(
      async () => core.status().lastConfirmedPosition === head,
      10_000,
      'the scoped client to follow the head live',
    );
    const local = (await core.readAll({ limit: 100 })).events;
    expect(local.map((e) => [e.stream, e.serverPosition])).toEqual([
      ['acc-1', 4],
      ['acc-1', 7],
      ['acc-1', 10],
      ['acc-1', 13],
      ['acc-1', 16],
      ['acc-1', 19],
    ]);
    // Each live message said how far it covered: the gaps of others' streams needed no pull.
    expect(pulls.length - pullsBefore).toBe(0);
  });

  it('asks getToken for a new token when the server refuses the old one', async () => {
    const store = `e2e-t-${Date.now().toString(36)}`;
    const asked: boolean[] = [];
    const core = httpCore();
    await core.init(
      { url: api, store, dbName: `e2e-${store}`, online: false, live: false },
      async (refresh) => {
        asked.push(refresh);
        return refresh ? token(store) : 'expired.or.wrong';
      },
    );
    await core.append('t', [{ type: 'Noted', data: {} }]);
    core.setOnline(true);
    await settle(store, core);
    expect(await serverEvents(store)).toHaveLength(1);
    expect(asked).toContain(true);
  });

  it.each([1, 2, 3])(
    'holds each event exactly once through a fault-injecting transport (seed %i)',
    async (seed) => {
      const store = `e2e-f${seed}-${Date.now().toString(36)}`;
      const faults: Faults = {
        dropRequest: 0.15,
        dropAnswer: 0.2,
        duplicate: 0.15,
        reorder: 0.15,
        cutLive: 0.3,
      };
      const a = await nodeClient(store, faults, seed);
      const b = await nodeClient(store, faults, seed + 100);
      a.core.setOnline(true);
      b.core.setOnline(true);
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 30; i++) {
        const c = i % 2 === 0 ? a.core : b.core;
        if (i % 3 === 0) writes.push(c.execute('account', `acc-${i % 4}`, { kind: 'deposit', amount: i }));
        else
          writes.push(
            c.append(`s-${i % 5}`, [
              { type: 'Noted', data: { i } },
              { type: 'Noted', data: { i, j: 2 } },
            ]),
          );
        if (i === 10) a.core.setOnline(false);
        if (i === 20) a.core.setOnline(true);
        if (i % 7 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      await Promise.all(writes);
      await settle(store, a.core, b.core);
      await settle(store, a.core, b.core);
      const all = await expectConverged(store, a.core, b.core);
      expect(all).toHaveLength(10 + 20 * 2);
      expect([...a.rejected, ...b.rejected]).toEqual([]);
    },
    120_000,
  );

  describe('in Chromium', () => {
    /** The test app's page for `store`, its API on the page's own origin (through the gate). */
    const pageUrl = (store: string) =>
      `http://127.0.0.1:${PAGE_PORT}/?store=${store}&server=${encodeURIComponent(`http://127.0.0.1:${PAGE_PORT}`)}&token=${token(store)}`;
    /** `n` pages of `url` in one context (tabs of one origin), each with its worker ready. */
    const openTabs = async (context: BrowserContext, url: string, n: number) => {
      const tabs: Page[] = [];
      for (let i = 0; i < n; i++) {
        const p = await context.newPage();
        await p.goto(url);
        await p.waitForFunction(() => globalThis.app !== undefined);
        await p.evaluate(() => app.client.rejections());
        tabs.push(p);
      }
      return tabs;
    };
    /** Once exactly one of two tabs leads: that one, and the other. */
    const oneLeader = async (tabs: Page[]) => {
      const leads = () => Promise.all(tabs.map((p) => p.evaluate(() => app.client.status.get().leader)));
      await waitUntil(async () => (await leads()).filter(Boolean).length === 1, 10_000, 'one leader');
      const [first, second] = tabs as [Page, Page];
      return (await leads())[0] ? { leader: first, follower: second } : { leader: second, follower: first };
    };

    /** Until the tab's outbox is empty and it has confirmed the log up to `position`. */
    const drained = (page: Page, position = 0) =>
      waitUntil(
        () =>
          page.evaluate(
            (p) =>
              app.client.status.get().pending === 0 && app.client.status.get().lastConfirmedPosition >= p,
            position,
          ),
        30_000,
        'the outbox to drain',
      );

    let dir: string;
    let pageServer: Server;
    const gate: Gate = { open: false };
    beforeAll(async () => {
      dir = await buildApp();
      pageServer = await serve(dir, PAGE_PORT, new URL(api), gate);
    });
    afterAll(async () => {
      await new Promise((r) => pageServer.close(r));
      await rm(dir, { recursive: true, force: true });
    });

    it('appends offline, reloads, reconnects: the events are confirmed exactly once', async () => {
      const store = `e2e-c-${Date.now().toString(36)}`;
      const url = pageUrl(store);
      const { context, dispose } = await launch();
      try {
        const page = await context.newPage();
        await page.goto(url);
        await page.waitForFunction(() => globalThis.app !== undefined);
        await page.evaluate(() => app.client.rejections());
        await context.setOffline(true);
        await waitUntil(() => page.evaluate(() => !app.client.status.get().online), 5000, 'offline');
        const ids = await page.evaluate(async () => {
          await app.client.append('cart-1', [
            { type: 'Added', data: { sku: 'a' } },
            { type: 'Added', data: { sku: 'b' } },
          ]);
          const r = await app.client.execute('account', 'acc-1', { kind: 'deposit', amount: 7 });
          const cart = await app.client.readStream('cart-1');
          return [...cart.events.map((e) => e.id), ...r.events.map((e) => e.id)];
        });
        // Back online but the server unreachable: a reload (no service worker, so not while offline).
        await context.setOffline(false);
        await page.reload();
        await page.waitForFunction(() => globalThis.app !== undefined);
        const before = await page.evaluate(async () => ({
          ids: (await app.client.readAll()).events.map((e) => [e.id, e.pending]),
          pending: (await app.client.syncNow()).pending,
        }));
        expect(before.ids).toEqual(ids.map((id) => [id, true]));
        expect(before.pending).toBe(2);
        expect(await serverEvents(store)).toEqual([]);
        gate.open = true;
        await page.evaluate(() => app.client.syncNow());
        await drained(page, 3);
        const all = await serverEvents(store);
        expect(all.map((e) => e.id).sort()).toEqual([...ids].sort());
        const local = await page.evaluate(() => app.client.readAll());
        expect(local.events.map((e) => [e.id, e.pending])).toEqual(ids.map((id) => [id, false]));
      } finally {
        gate.open = false;
        await dispose();
      }
    });

    it('merges synced single appends into one record; reads and a retry answer as before', async () => {
      const store = `e2e-m-${Date.now().toString(36)}`;
      gate.open = true;
      const { context, dispose } = await launch();
      try {
        const [page] = (await openTabs(context, pageUrl(store), 1)) as [Page];
        const ids = await page.evaluate(async () => {
          const out: string[] = [];
          await app.burst('cart-1', 150, (id) => out.push(id));
          return out;
        });
        await drained(page, 150);
        // The log's records, counted through a second connection to the worker's database.
        const records = () =>
          page.evaluate(
            (name) =>
              new Promise<number>((resolve, reject) => {
                const open = indexedDB.open(name);
                open.onerror = () => reject(open.error);
                open.onsuccess = () => {
                  const db = open.result;
                  const count = db.transaction('log').objectStore('log').count();
                  count.onsuccess = () => {
                    db.close();
                    resolve(count.result);
                  };
                };
              }),
            `edgelog:${store}`,
          );
        await waitUntil(async () => (await records()) === 1, 10_000, '150 records to become one');
        const local = await page.evaluate(() => app.client.readStream('cart-1', { limit: 1000 }));
        expect(local.events.map((e) => [e.id, e.version, e.pending])).toEqual(
          ids.map((id, i) => [id, i + 1, false]),
        );
        expect((await serverEvents(store)).map((e) => e.id)).toEqual(ids);
        // A retry of the first append, made before the merge: the same answer, nothing new.
        const retry = await page.evaluate(
          (id) => app.client.append('cart-1', [{ id, type: 'Burst', data: { i: 0 } }]),
          ids[0]!,
        );
        expect(retry.version).toBe(1);
        await page.evaluate(() => app.client.syncNow());
        expect(await serverEvents(store)).toHaveLength(150);
      } finally {
        gate.open = false;
        await dispose();
      }
    });

    it('a conflict while the server is away: both tabs take back what the replay and the refusal withdrew', async () => {
      const store = `e2e-w-${Date.now().toString(36)}`;
      const url = pageUrl(store);
      const { context, dispose } = await launch();
      try {
        gate.open = true;
        const tabs = await openTabs(context, url, 2);
        const { leader } = await oneLeader(tabs);
        await leader.evaluate(() => app.client.execute('account', 'acc-1', { kind: 'deposit', amount: 100 }));
        // The page's status lags the worker's by a frame: the server says when the deposit landed.
        await waitUntil(async () => (await serverEvents(store)).length === 1, 30_000, 'the deposit to land');
        await waitUntil(
          () =>
            leader.evaluate(
              () =>
                app.client.status.get().pending === 0 && app.client.status.get().lastConfirmedPosition === 1,
            ),
          30_000,
          'the deposit to be confirmed',
        );
        gate.open = false;
        // Decided on a balance of 100 while the server is away: both conflict with the
        // withdrawal of 50 another writer makes meanwhile.
        const [refused, replayed] = await tabs[1]!.evaluate(async () => [
          (await app.client.execute('account', 'acc-1', { kind: 'withdraw', amount: 60 })).events[0]!.id,
          (await app.client.execute('account', 'acc-1', { kind: 'deposit', amount: 5 })).events[0]!.id,
        ]);
        const res = await fetch(`${api}/v1/stores/${store}/streams/acc-1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token(store)}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            expectedVersion: 1,
            events: [{ id: randomUUID(), type: 'Withdrawn', data: { amount: 50 } }],
          }),
        });
        expect(res.status).toBe(200);
        for (const p of tabs)
          await waitUntil(
            () => p.evaluate((ids) => ids.every((id) => app.seen.includes(id)), [refused!, replayed!]),
            5000,
            'both tabs to see the pending events',
          );
        gate.open = true;
        await leader.evaluate(() => app.client.syncNow());
        await drained(leader);
        const all = await serverEvents(store);
        expect(all.map((e) => [e.type, (e.data as { amount: number }).amount])).toEqual([
          ['Deposited', 100],
          ['Withdrawn', 50],
          ['Deposited', 5],
        ]);
        const ids = all.map((e) => e.id).sort();
        for (const p of tabs) {
          await waitUntil(
            async () => JSON.stringify(await p.evaluate(() => app.viewIds())) === JSON.stringify(ids),
            5000,
            'the tab’s folded view to match the server',
          );
          expect((await p.evaluate(() => app.withdrawn)).sort()).toEqual(
            [`rejected ${refused}`, `replayed ${replayed}`].sort(),
          );
        }
      } finally {
        gate.open = false;
        await dispose();
      }
    });

    it('two tabs write while the server is away; the leader closes; the other pushes everything once', async () => {
      const store = `e2e-t-${Date.now().toString(36)}`;
      const url = pageUrl(store);
      const { context, dispose } = await launch();
      try {
        const tabs = await openTabs(context, url, 2);
        const { leader, follower } = await oneLeader(tabs);
        await Promise.all(
          tabs.map((p, i) =>
            p.evaluate(
              (i) =>
                Promise.all(
                  Array.from({ length: 10 }, (_, k) =>
                    app.client.append(`tab-${i}`, [{ type: 'Noted', data: { k } }]),
                  ),
                ),
              i,
            ),
          ),
        );
        await leader.close();
        await waitUntil(
          () => follower.evaluate(() => app.client.status.get().leader),
          10_000,
          'the handover',
        );
        gate.open = true;
        await follower.evaluate(() => app.client.syncNow());
        await drained(follower);
        const all = await serverEvents(store);
        expect(all).toHaveLength(20);
        expect(new Set(all.map((e) => e.id)).size).toBe(20);
        for (const s of ['tab-0', 'tab-1']) {
          expect(all.filter((e) => e.stream === s).map((e) => e.version)).toEqual(
            Array.from({ length: 10 }, (_, k) => k + 1),
          );
        }
        const local = await follower.evaluate(() => app.client.readAll());
        expect(local.events.filter((e) => !e.pending)).toHaveLength(20);
      } finally {
        gate.open = false;
        await dispose();
      }
    });
  });
});
