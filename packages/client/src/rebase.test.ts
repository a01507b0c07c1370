import 'fake-indexeddb/auto';
import { type Decider, type DomainEvent, defineProjection, error } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type LogDb, openLogDb, type Rejection } from './db.ts';
import { defaultClientLimits } from './local-event-store.ts';
import { LocalLog } from './local-log.ts';
import { loadStream } from './log-reads.ts';
import { ProjectionRunner } from './projections.ts';
import { SyncEngine } from './sync-engine.ts';
import { SyncStore } from './sync-store.ts';
import { FakeServer } from './testing/fake-server.ts';
import type { WireEvent } from './wire.ts';

// A product's stock: a reservation is refused when nothing is left.
type StockEvent = DomainEvent<'Restocked', { n: number }> | DomainEvent<'Reserved', { n: number }>;
// `reserveIfAvailable` decides nothing (no events, no refusal) when too little is left.
type StockCommand = { kind: 'reserve' | 'reserveIfAvailable'; n: number };
const stock: Decider<StockCommand, StockEvent, { left: number }> = {
  initialState: () => ({ left: 0 }),
  evolve: (s, e) => ({ left: s.left + (e.type === 'Restocked' ? e.data.n : -e.data.n) }),
  decide: (c, s) => {
    if (s.left < c.n && c.kind === 'reserveIfAvailable') return [];
    if (s.left < c.n) throw error('CommandRejected', `only ${s.left} left`);
    return [{ type: 'Reserved', data: { n: c.n } }];
  },
};
const left = defineProjection<number>({
  name: 'left',
  version: 1,
  key: (e) => e.stream,
  initialState: () => 0,
  evolve: (n, e) => n + (e.type === 'Restocked' ? 1 : -1) * (e.data as { n: number }).n,
});

let dbs = 0;
const opened: LogDb[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
});

async function local() {
  const db = await openLogDb(`rebase-${++dbs}`);
  opened.push(db);
  const projections = new ProjectionRunner([left]);
  const log = new LocalLog(db, defaultClientLimits, () => undefined, projections);
  const sync = new SyncStore(db, {
    projections,
    deciders: { stock } as never,
    onWrite: () => log.invalidate(),
  });
  return { db, log, sync };
}

let position = 0;
const wire = (stream: string, version: number, type: StockEvent['type'], n: number): WireEvent => ({
  id: crypto.randomUUID(),
  stream,
  type,
  schemaVersion: 1,
  data: { n },
  metadata: {},
  version,
  position: ++position,
  recordedAt: '2026-01-01T00:00:00.000Z',
});

/** The stock a reader of the local log sees now, folded from the stored stream. */
async function stockSeen(db: LogDb, stream: string): Promise<number> {
  const events = await loadStream(db.transaction('log', 'readonly').store, stream);
  let s = stock.initialState();
  for (const e of events) s = stock.evolve(s, e as never);
  return s.left;
}

const reserve = (
  log: LocalLog,
  stream: string,
  expectedVersion: number,
  n = 1,
  kind: StockCommand['kind'] = 'reserve',
) =>
  log.append(stream, [{ id: crypto.randomUUID(), type: 'Reserved', data: { n } }], {
    expectedVersion,
    command: { decider: 'stock', command: { kind, n } },
  });

describe('pulled events and pending commands', () => {
  it('a pending command the pull refuses leaves the view in the pull’s own transaction', async () => {
    position = 0;
    const { db, log, sync } = await local();
    await sync.applyPulled([wire('p-1', 1, 'Restocked', 1)], 1);
    const mine = await reserve(log, 'p-1', 1);
    expect(await stockSeen(db, 'p-1')).toBe(0);
    // Another client reserved the last one first: the server holds it at version 2.
    const applied = await sync.applyPulled([wire('p-1', 2, 'Reserved', 1)], 2);
    // Committed = published: no reader can ever see -1.
    expect(await stockSeen(db, 'p-1')).toBe(0);
    const { reached, rejected } = applied;
    expect(reached).toBe(2);
    expect((await db.get('rows', ['left@1', 'p-1']))?.state).toBe(0);
    expect(rejected.map((r) => [r.commitId, r.error.code])).toEqual([[mine.commitId, 'CommandRejected']]);
    expect(await sync.outbox()).toEqual([]);
    expect((await sync.rejections()).map((r) => r.commitId)).toEqual([mine.commitId]);
  });

  it('a pending command the pull overtakes is decided again on the new state, in place in the outbox', async () => {
    position = 0;
    const { db, log, sync } = await local();
    await sync.applyPulled([wire('p-2', 1, 'Restocked', 6)], 1);
    await reserve(log, 'p-2', 1, 2);
    // A later command decided over the first one's events: its version 2 counts them, so it is
    // decided again too (it cannot have committed without the first: a push stops a stream's
    // commits at its first failure).
    await reserve(log, 'p-2', 2, 2);
    await log.append('other', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 1 } }]);
    const { rejected } = await sync.applyPulled([wire('p-2', 2, 'Reserved', 2)], 2);
    expect(rejected).toEqual([]);
    expect(await stockSeen(db, 'p-2')).toBe(0);
    const outbox = await sync.outbox();
    expect(
      outbox.map((c) => [c.commit.stream, c.commit.expectedVersion, c.events.map((e) => e.version)]),
    ).toEqual([
      ['p-2', 2, [3]],
      ['p-2', 3, [4]],
      ['other', undefined, [1]],
    ]);
    expect((await db.get('rows', ['left@1', 'p-2']))?.state).toBe(0);
  });

  it('a raw append that named a version the pull has passed is rejected; one that named none moves after', async () => {
    position = 0;
    const { db, log, sync } = await local();
    await sync.applyPulled([wire('doc', 1, 'Restocked', 1)], 1);
    const named = await log.append('doc', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 10 } }], {
      expectedVersion: 1,
    });
    await log.append('doc', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 100 } }]);
    const { rejected } = await sync.applyPulled([wire('doc', 2, 'Restocked', 1000)], 2);
    expect(rejected.map((r) => [r.commitId, r.error.code])).toEqual([
      [named.commitId, 'WrongExpectedVersion'],
    ]);
    expect(await stockSeen(db, 'doc')).toBe(1101);
    const outbox = await sync.outbox();
    expect(outbox.map((c) => c.events.map((e) => e.version))).toEqual([[3]]);
  });

  it('a pending command decided on top of one the pull refuses is decided again in the same transaction', async () => {
    position = 0;
    const { db, log, sync } = await local();
    await sync.applyPulled([wire('p-5', 1, 'Restocked', 2)], 1);
    const first = await reserve(log, 'p-5', 1);
    const second = await reserve(log, 'p-5', 2);
    expect(await stockSeen(db, 'p-5')).toBe(0);
    // Another client reserved both first: the first command is refused, and the second, decided
    // on the first one's history, must not stay in view on top of the server's events.
    const { rejected } = await sync.applyPulled([wire('p-5', 2, 'Reserved', 2)], 2);
    expect(await stockSeen(db, 'p-5')).toBe(0);
    expect(rejected.map((r) => r.commitId).sort()).toEqual([first.commitId, second.commitId].sort());
    expect(await sync.outbox()).toEqual([]);
    expect((await db.get('rows', ['left@1', 'p-5']))?.state).toBe(0);
  });

  it('a command decided again to fewer events takes the later commands of its stream with it', async () => {
    position = 0;
    const { db, log, sync } = await local();
    await sync.applyPulled([wire('p-6', 1, 'Restocked', 5)], 1);
    // Offline: reserve 3 if available (2 left), then reserve 2 (0 left), decided on the first.
    await reserve(log, 'p-6', 1, 3, 'reserveIfAvailable');
    const second = await reserve(log, 'p-6', 2, 2);
    // Another client reserved 4 first (1 left): the first command now decides nothing, and the
    // second's version 2 matches the server's by coincidence. Sent as it is, it would commit
    // a reservation of 2 when 1 is left.
    const { rejected } = await sync.applyPulled([wire('p-6', 2, 'Reserved', 4)], 2);
    expect(rejected.map((r) => [r.commitId, r.error.code])).toEqual([[second.commitId, 'CommandRejected']]);
    expect(await sync.outbox()).toEqual([]);
    expect(await stockSeen(db, 'p-6')).toBe(1);
    expect((await db.get('rows', ['left@1', 'p-6']))?.state).toBe(1);
  });

  it('a pending command still ahead of the confirmed version is left to the server', async () => {
    position = 0;
    const { log, sync } = await local();
    await sync.applyPulled([wire('p-3', 1, 'Restocked', 3)], 1);
    const mine = await reserve(log, 'p-3', 1);
    // The pull brings another stream only: nothing about p-3 changed.
    await sync.applyPulled([wire('p-4', 1, 'Restocked', 3)], 2);
    expect((await sync.outbox()).map((c) => c.commit.commitId)).toEqual([mine.commitId]);
  });
});

describe('the sync engine publishes no un-rebased view', () => {
  it('from push conflict to pull: every committed state of the stream is a state the decider allows', async () => {
    position = 0;
    const server = new FakeServer();
    const { db, log, sync } = await local();
    await server.store.append('p-9', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 1 } }]);
    const seen: number[] = [];
    const rejections: Rejection[] = [];
    const engine = new SyncEngine(sync, server.transport(), {
      limits: defaultClientLimits,
      live: false,
      backoffBase: 1,
      backoffCap: 2,
      onRejected: (r) => rejections.push(r),
      // Runs synchronously after every applied page: a read transaction opened here is
      // ordered before any later write, so it sees exactly what the page's commit published.
      onStatus: () => {
        void stockSeen(db, 'p-9').then((n) => seen.push(n));
      },
    });
    await engine.start();
    await engine.settled();
    engine.setOnline(false);
    await reserve(log, 'p-9', 1);
    await server.store.append('p-9', [{ id: crypto.randomUUID(), type: 'Reserved', data: { n: 1 } }], {
      expectedVersion: 1,
    });
    engine.setOnline(true);
    await engine.settled();
    await engine.stop();
    expect(seen.length).toBeGreaterThan(2);
    expect(Math.min(...seen)).toBe(0);
    expect(rejections).toHaveLength(1);
    expect(rejections[0]!.error.code).toBe('CommandRejected');
    expect(await sync.outbox()).toEqual([]);
    const onServer = (await server.store.readStream('p-9')).events.map((e) => e.type);
    expect(onServer).toEqual(['Restocked', 'Reserved']);
  });
});

/** A sync engine over `db` with these deciders, as a worker of some build of the app runs it. */
function syncEngine(
  db: LogDb,
  log: LocalLog,
  projections: ProjectionRunner,
  server: FakeServer,
  deciders: Record<string, unknown>,
  rejections: Rejection[],
) {
  return new SyncEngine(
    new SyncStore(db, { projections, deciders: deciders as never, onWrite: () => log.invalidate() }),
    server.transport(),
    {
      limits: defaultClientLimits,
      live: false,
      backoffBase: 1,
      backoffCap: 2,
      onRejected: (r) => rejections.push(r),
    },
  );
}

describe('a stream whose first pending command this worker cannot decide', () => {
  it('waits whole, in order, while the other streams sync; a worker with the decider settles it', async () => {
    position = 0;
    const server = new FakeServer();
    const { db, log } = await local();
    await server.store.append('p-11', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 3 } }]);
    const projections = new ProjectionRunner([left]);
    const rejections: Rejection[] = [];
    const engineOf = (deciders: Record<string, unknown>) =>
      syncEngine(db, log, projections, server, deciders, rejections);
    const blind = engineOf({ stock });
    await blind.start();
    await blind.settled();
    blind.setOnline(false);
    // A: decided by a tab of another build ('ghost' is `stock` there): 2 of 3.
    const a = await log.append('p-11', [{ id: crypto.randomUUID(), type: 'Reserved', data: { n: 2 } }], {
      expectedVersion: 1,
      command: { decider: 'ghost', command: { kind: 'reserve', n: 2 } },
    });
    // B: 1 of the 1 left, decided on top of A, by a decider this worker has.
    const b = await reserve(log, 'p-11', 2, 1);
    await log.append('notes', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 1 } }]);
    // Someone else reserves 2 first (1 left): A would now be refused, and B would land.
    await server.store.append('p-11', [{ id: crypto.randomUUID(), type: 'Reserved', data: { n: 2 } }], {
      expectedVersion: 1,
    });
    blind.setOnline(true);
    await blind.settled();
    // B is not decided over A's old events: both wait. The other stream synced; the round
    // ended well (no backoff), with the reason in status.
    expect(rejections).toEqual([]);
    expect(blind.status.lastError?.code).toBe('Definition');
    expect(blind.status.syncing).toBe(false);
    const sync = new SyncStore(db, { projections, deciders: {}, onWrite: () => undefined });
    expect((await sync.outbox()).map((c) => c.commit.commitId)).toEqual([a.commitId, b.commitId]);
    expect((await server.store.readStream('notes')).events).toHaveLength(1);
    const pushes = server.pushes;
    blind.kick();
    await blind.settled();
    expect(server.pushes).toBe(pushes);
    await blind.stop();
    // A worker that has both deciders: A is refused on the real history, B lands after it.
    const able = engineOf({ stock, ghost: stock });
    await able.start();
    await able.settled();
    await able.stop();
    expect(rejections.map((r) => [r.commitId, r.error.code])).toEqual([[a.commitId, 'CommandRejected']]);
    expect(await sync.outbox()).toEqual([]);
    const onServer = (await server.store.readStream('p-11')).events.map((e) => (e.data as { n: number }).n);
    expect(onServer).toEqual([3, 2, 1]);
    expect(await stockSeen(db, 'p-11')).toBe(0);
    expect((await db.get('rows', ['left@1', 'p-11']))?.state).toBe(0);
  });
});

describe('a waiting stream moves again', () => {
  it('once its waiting commit has left the outbox', async () => {
    position = 0;
    const server = new FakeServer();
    const { db, log } = await local();
    await server.store.append('p-12', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 3 } }]);
    const projections = new ProjectionRunner([left]);
    const sync = new SyncStore(db, {
      projections,
      deciders: { stock } as never,
      onWrite: () => log.invalidate(),
    });
    const engine = new SyncEngine(sync, server.transport(), {
      limits: defaultClientLimits,
      live: false,
      backoffBase: 1,
      backoffCap: 2,
    });
    await engine.start();
    await engine.settled();
    engine.setOnline(false);
    const a = await log.append('p-12', [{ id: crypto.randomUUID(), type: 'Reserved', data: { n: 2 } }], {
      expectedVersion: 1,
      command: { decider: 'ghost', command: { kind: 'reserve', n: 2 } },
    });
    await reserve(log, 'p-12', 2, 1);
    await server.store.append('p-12', [{ id: crypto.randomUUID(), type: 'Reserved', data: { n: 2 } }], {
      expectedVersion: 1,
    });
    engine.setOnline(true);
    await engine.settled();
    expect(engine.status.lastError?.code).toBe('Definition');
    // Another tab's worker (one with the decider) settled the waiting command: refused.
    await sync.reject(a.commitId, { code: 'CommandRejected', message: 'only 1 left' });
    engine.kick();
    await engine.settled();
    await engine.stop();
    expect(engine.status.lastError).toBeUndefined();
    expect(await sync.outbox()).toEqual([]);
    const onServer = (await server.store.readStream('p-12')).events.map((e) => (e.data as { n: number }).n);
    expect(onServer).toEqual([3, 2, 1]);
  });
});

describe('a throw inside a sync transaction aborts it (IndexedDB would commit what was written)', () => {
  it('a refusal whose projection rebuild throws leaves its commit pending and nothing recorded', async () => {
    const { db, log, sync } = await local();
    await log.append('doc', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 3 } }]);
    const [pending] = await sync.outbox();
    const before = { log: await db.getAll('log'), rows: await db.getAll('rows') };
    // App code (a projection) throws after the refusal's writes were made.
    const rebuild = ProjectionRunner.prototype.rebuild;
    ProjectionRunner.prototype.rebuild = async () => {
      throw new Error('a projection bug');
    };
    try {
      const refusal = { code: 'Validation', message: 'no' } as const;
      await expect(sync.reject(pending!.commit.commitId, refusal)).rejects.toThrow('a projection bug');
    } finally {
      ProjectionRunner.prototype.rebuild = rebuild;
    }
    expect(await db.getAll('log')).toEqual(before.log);
    expect(await db.getAll('rows')).toEqual(before.rows);
    expect(await db.getAll('rejections')).toEqual([]);
    expect((await sync.outbox()).map((c) => c.commit.commitId)).toEqual([pending!.commit.commitId]);
  });

  it('a local append whose projection write fails is refused whole: no pending events without their view', async () => {
    const db = await openLogDb(`rebase-${++dbs}`);
    opened.push(db);
    const count = defineProjection<number>({
      name: 'count',
      version: 1,
      key: (e) => e.stream,
      initialState: () => 0,
      evolve: (n) => n + 1,
    });
    const log = new LocalLog(db, defaultClientLimits, () => undefined, new ProjectionRunner([count]));
    await log.append('doc', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 1 } }]);
    const before = { log: await db.getAll('log'), rows: await db.getAll('rows') };
    // A write that fails after the row's put (a full disk, a bug): the events' record was added.
    const apply = ProjectionRunner.prototype.apply;
    ProjectionRunner.prototype.apply = async function (this: ProjectionRunner, ...args) {
      await apply.apply(this, args);
      throw new Error('a failed write');
    };
    try {
      await expect(
        log.append('doc', [{ id: crypto.randomUUID(), type: 'Restocked', data: { n: 2 } }]),
      ).rejects.toThrow('a failed write');
    } finally {
      ProjectionRunner.prototype.apply = apply;
    }
    expect(await db.getAll('log')).toEqual(before.log);
    expect(await db.getAll('rows')).toEqual(before.rows);
    expect((await loadStream(db.transaction('log').store, 'doc')).map((e) => e.version)).toEqual([1]);
  });
});
