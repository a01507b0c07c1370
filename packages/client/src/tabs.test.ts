import 'fake-indexeddb/auto';
import type { Decider, DomainEvent } from '@edgelog/core';
import { openDB } from 'idb';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DB_VERSION } from './db.ts';
import { FakeServer, type Faults, faulty, seeded } from './testing/fake-server.ts';
import { WorkerCore } from './worker-core.ts';

/** Web Locks for one process: exclusive locks queued per name, as two tabs of one origin see them. */
class Locks {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #pending = new Set<{ name: string }>();
  /** As `navigator.locks.query()`: the requests still waiting. */
  async query(): Promise<{ pending: Array<{ name: string }> }> {
    return { pending: [...this.#pending] };
  }
  async request(name: string, options: { signal?: AbortSignal }, fn: () => Promise<void>): Promise<void> {
    const before = this.#tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    this.#tails.set(
      name,
      before.then(() => mine),
    );
    const waiting = { name };
    this.#pending.add(waiting);
    // An aborted request leaves the queue at once, as with Web Locks.
    options.signal?.addEventListener('abort', () => this.#pending.delete(waiting), { once: true });
    try {
      await before;
      this.#pending.delete(waiting);
      if (options.signal?.aborted) throw new DOMException('aborted', 'AbortError');
      await fn();
    } finally {
      this.#pending.delete(waiting);
      release();
    }
  }
}

beforeAll(() => {
  (globalThis as { navigator?: unknown }).navigator = { locks: new Locks() };
});

const open: WorkerCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

let n = 0;
async function tab(server: FakeServer, dbName: string, faults?: Faults, sync = true) {
  const random = seeded(++n);
  const core = new WorkerCore({
    transport: () => (faults ? faulty(server.transport(), faults, random) : server.transport()),
    engine: { backoffBase: 1, backoffCap: 5, random },
  });
  open.push(core);
  await core.init({ url: 'http://fake', store: 's', dbName, online: true, token: 't', sync });
  return core;
}

const until = async (check: () => boolean | Promise<boolean>, what: string, tries = 500) => {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('tabs sharing one database', () => {
  it('one leader syncs what every tab wrote; the others see the result', async () => {
    const server = new FakeServer();
    const a = await tab(server, 'tabs-1');
    const b = await tab(server, 'tabs-1');
    await until(() => a.status().leader !== b.status().leader, 'one leader');
    for (let i = 0; i < 5; i++) {
      await a.append('from-a', [{ type: 'Noted', data: { i } }]);
      await b.append('from-b', [{ type: 'Noted', data: { i } }]);
    }
    await until(
      async () => (await server.store.readAll()).events.length === 10,
      'the server to hold 10 events',
    );
    const leader = a.status().leader ? a : b;
    const follower = leader === a ? b : a;
    await until(
      () => follower.status().pending === 0 && follower.status().lastConfirmedPosition === 10,
      'the follower status',
    );
    const all = (await server.store.readAll()).events;
    expect(new Set(all.map((e) => e.id)).size).toBe(10);
    const local = (await follower.readAll()).events;
    expect(local.map((e) => [e.id, e.pending])).toEqual(
      expect.arrayContaining(all.map((e) => [e.id, false])),
    );
    expect(local).toHaveLength(10);
  });

  it('hands over when the leader closes: nothing lost, nothing pushed twice into the log', async () => {
    const server = new FakeServer();
    // The first leader's answers never arrive: the server commits, the tab never learns it.
    const a = await tab(server, 'tabs-2', { dropAnswer: 1 });
    await until(() => a.status().leader, 'tab A to lead');
    const b = await tab(server, 'tabs-2');
    expect(b.status().leader).toBe(false);
    for (let i = 0; i < 6; i++) await (i % 2 ? a : b).append(`s-${i % 3}`, [{ type: 'Noted', data: { i } }]);
    await until(async () => (await server.store.readAll()).events.length === 6, 'the first leader to push');
    expect(a.status().pending).toBeGreaterThan(0);
    await a.close();
    await until(() => b.status().leader, 'tab B to take over');
    await b.syncNow();
    await until(() => b.status().pending === 0, 'the outbox to drain');
    const all = (await server.store.readAll()).events;
    expect(all).toHaveLength(6);
    expect(new Set(all.map((e) => e.id)).size).toBe(6);
    const local = (await b.readAll()).events;
    expect(local).toHaveLength(6);
    expect(local.every((e) => !e.pending && e.serverPosition !== undefined)).toBe(true);
  });

  it('a tab alone posts nothing but its hello; a tab that opens later hears of every write', async () => {
    const posts: string[] = [];
    const post = BroadcastChannel.prototype.postMessage;
    BroadcastChannel.prototype.postMessage = function (this: BroadcastChannel, m: { t: string }) {
      posts.push(m.t);
      post.call(this, m);
    };
    try {
      const server = new FakeServer();
      const a = await tab(server, 'tabs-3');
      for (let i = 0; i < 3; i++) await a.append('s', [{ type: 'Noted', data: { i } }]);
      await until(async () => (await server.store.readAll()).events.length === 3, 'A to sync alone');
      await new Promise((r) => setTimeout(r, 50));
      expect(posts).toEqual(['hello']);
      const b = await tab(server, 'tabs-3');
      // A heard B's hello: it tells B the log's tail, which covers what A wrote alone.
      await until(() => posts.filter((t) => t === 'write').length > 0, 'A to tell B the tail');
      const seen: unknown[] = [];
      await b.subscribe({}, (events) => {
        seen.push(...events.map((e) => e.data));
      });
      await until(() => seen.length === 3, 'B to read what A wrote alone');
      await a.append('s', [{ type: 'Noted', data: { i: 3 } }]);
      await until(() => seen.length === 4, "B to hear of A's next write");
      expect(seen).toEqual([0, 1, 2, 3].map((i) => ({ i })));
    } finally {
      BroadcastChannel.prototype.postMessage = post;
    }
  });

  it("a quiet tab answers a newcomer's hello, so the newcomer announces its writes", async () => {
    const server = new FakeServer();
    // A neither syncs nor writes: it has nothing to announce, yet must say that it exists.
    const a = await tab(server, 'tabs-4', undefined, false);
    const seen: unknown[] = [];
    await a.subscribe({}, (events) => {
      seen.push(...events.map((e) => e.data));
    });
    const b = await tab(server, 'tabs-4', undefined, false);
    for (let i = 0; i < 3; i++) await b.append('s', [{ type: 'Noted', data: { i } }]);
    await until(() => seen.length === 3, 'A to hear of what B wrote');
    expect(seen).toEqual([0, 1, 2].map((i) => ({ i })));
  });
});

describe('tabs of two builds', () => {
  /** Counts; the tab of the newer build has it, the older one not. */
  const counter: Decider<{ kind: 'add' }, DomainEvent<'Added', { n: number }>, number> = {
    initialState: () => 0,
    evolve: (s) => s + 1,
    decide: (_c, s) => [{ type: 'Added', data: { n: s + 1 } }],
  };
  /** A tab of a build with these deciders on database `dbName`, offline. */
  const twoBuilds = async (server: FakeServer, dbName: string, deciders: Record<string, typeof counter>) => {
    const core = new WorkerCore({
      deciders,
      engine: { backoffBase: 1, backoffCap: 5 },
      transport: () => server.transport(),
    });
    open.push(core);
    await core.init({ url: 'http://fake', store: 's', dbName, online: false, token: 't' });
    return core;
  };

  it('a leader without the decider of a conflicting command hands the sync to a tab that has it', async () => {
    const server = new FakeServer();
    // Another client wrote `acc` first: the command below was decided without that event.
    const other = await tab(server, 'tabs-builds-other');
    await other.append('acc', [{ type: 'Added', data: { n: 1 } }]);
    await until(async () => (await server.store.readAll()).events.length === 1, 'the first write');
    const make = (deciders: Record<string, typeof counter>) => twoBuilds(server, 'tabs-builds', deciders);
    const older = await make({});
    await until(() => older.status().leader, 'the older build to lead');
    const newer = await make({ counter });
    await newer.execute('counter', 'acc', { kind: 'add' });
    older.setOnline(true);
    newer.setOnline(true);
    // The older build cannot replay the command: it lets the lock go, the newer build leads
    // and replays it on top of the other client's event.
    await until(() => newer.status().leader, 'the newer build to lead');
    await until(async () => (await server.store.readAll()).events.length === 2, 'the replayed command');
    expect((await server.store.readStream('acc')).events.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(older.status().leader).toBe(false);
    // The older build queued again: it leads once the newer one has gone.
    await newer.close();
    await until(() => older.status().leader, 'the older build to lead again');
  });

  it('hands over to a tab that opens after the command was found undecidable', async () => {
    const server = new FakeServer();
    const other = await tab(server, 'tabs-builds-late-other');
    await other.append('acc', [{ type: 'Added', data: { n: 1 } }]);
    await until(async () => (await server.store.readAll()).events.length === 1, 'the first write');
    const older = await twoBuilds(server, 'tabs-builds-late', {});
    await until(() => older.status().leader, 'the older build to lead');
    const first = await twoBuilds(server, 'tabs-builds-late', { counter });
    await first.execute('counter', 'acc', { kind: 'add' });
    await first.close();
    // Alone, the older build meets the conflict and cannot replay it: nobody to hand over to.
    older.setOnline(true);
    await until(() => older.status().lastError?.code === 'Definition', 'the command to be held back');
    const later = await twoBuilds(server, 'tabs-builds-late', { counter });
    later.setOnline(true);
    await until(() => later.status().leader, 'the later tab to lead', 1000);
    await until(async () => (await server.store.readAll()).events.length === 2, 'the replayed command');
  }, 20_000);
});

describe('a newer version of the app', () => {
  it('takes the database: the leading tab hands leadership on, refuses writes and keeps saying why', async () => {
    const server = new FakeServer();
    const old = await tab(server, 'tabs-upgrade');
    await until(() => old.status().leader, 'the old tab to lead');
    await old.append('a', [{ type: 'T', data: {} }]);
    await until(async () => (await server.store.readAll()).events.length === 1, 'the push');
    // The new version's tab opens the database at the next version; the old one steps aside.
    const next = await openDB('tabs-upgrade', DB_VERSION + 1);
    await until(() => !old.status().leader, 'the old tab to step aside');
    // Leadership is free: the next tab (here a lock request of the same name) gets it.
    let granted = false;
    await (globalThis as unknown as { navigator: { locks: Locks } }).navigator.locks.request(
      'tabs-upgrade:leader',
      {},
      async () => {
        granted = true;
      },
    );
    expect(granted).toBe(true);
    await expect(old.append('a', [{ type: 'T', data: {} }])).rejects.toMatchObject({ code: 'Closed' });
    // The new version's leader announces its status on the tabs' channel: not to this tab.
    const channel = new BroadcastChannel('tabs-upgrade');
    channel.postMessage({ t: 'status', s: { ...old.status(), leader: true, lastError: undefined } });
    await new Promise((r) => setTimeout(r, 50));
    channel.close();
    expect(old.status()).toMatchObject({ leader: false, lastError: { code: 'Closed' } });
    next.close();
  });
});
