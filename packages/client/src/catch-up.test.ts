import 'fake-indexeddb/auto';
import { defineProjection, type ProjectionDefinition } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeRecord, type LogDb, openLogDb } from './db.ts';
import { defaultClientLimits } from './local-event-store.ts';
import { ProjectionRunner } from './projections.ts';
import { SyncEngine } from './sync-engine.ts';
import { SyncStore } from './sync-store.ts';
import { FakeServer } from './testing/fake-server.ts';
import type { Transport } from './transport.ts';
import type { WireEvent } from './wire.ts';

// A cold client catching up: pages that arrive while a group is written are applied together.

type Row = { count: number; sum: number };
const totals = defineProjection<Row>({
  name: 'totals',
  version: 1,
  key: (e) => e.stream,
  initialState: () => ({ count: 0, sum: 0 }),
  evolve: (s, e) => ({ count: s.count + 1, sum: s.sum + (e.data as { n: number }).n }),
});

let dbs = 0;
const opened: LogDb[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
});

async function seededServer(events: number, streams: number): Promise<FakeServer> {
  const server = new FakeServer();
  for (let i = 1; i <= events; i++)
    await server.store.append(`s-${i % streams}`, [
      { id: crypto.randomUUID(), type: 'Added', data: { n: i } },
    ]);
  return server;
}

function expectedRows(events: number, streams: number): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (let i = 1; i <= events; i++) {
    const k = `s-${i % streams}`;
    const r = rows.get(k) ?? { count: 0, sum: 0 };
    rows.set(k, { count: r.count + 1, sum: r.sum + i });
  }
  return rows;
}

/** A client over a fresh database; `groups` records the events of every transaction that applied pulled pages. */
async function local(projection: ProjectionDefinition<never, never> = totals as never) {
  const db = await openLogDb(`catch-up-${++dbs}`);
  opened.push(db);
  const projections = new ProjectionRunner([projection]);
  const sync = new SyncStore(db, { projections, deciders: {}, onWrite: () => undefined });
  const groups: number[][] = [];
  const apply = sync.applyPulledPages.bind(sync);
  sync.applyPulledPages = (pages, head) => {
    groups.push(pages.map((p) => p.events.length));
    return apply(pages, head);
  };
  return { db, sync, groups };
}

async function rowsOf(db: LogDb): Promise<Map<string, unknown>> {
  return new Map((await db.getAll('rows')).map((r) => [r.k, r.state]));
}

/** Counts the puts into the `rows` store while `fn` runs. */
async function countRowPuts(fn: () => Promise<void>): Promise<number> {
  const proto = IDBObjectStore.prototype;
  const put = proto.put;
  let n = 0;
  proto.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
    if (this.name === 'rows') n++;
    return put.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.put = put;
  }
  return n;
}

describe('catch-up', () => {
  it('applies the pages that arrived together, one record per page, each row written once per group', async () => {
    const server = await seededServer(1000, 20);
    const { db, sync, groups } = await local();
    const statuses: Array<{ processed: number; total: number }> = [];
    const engine = new SyncEngine(sync, server.transport(), {
      limits: defaultClientLimits,
      live: false,
      pullLimit: 100,
      pullGroup: 300,
      onStatus: (s) => statuses.push(s.catchUp),
    });
    const puts = await countRowPuts(async () => {
      await engine.start();
      await engine.settled();
    });
    await engine.stop();
    // Several pages per transaction, never more events than the bound.
    expect(groups.flat().reduce((a, b) => a + b, 0)).toBe(1000);
    expect(groups.some((g) => g.length > 1)).toBe(true);
    for (const g of groups) expect(g.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(300);
    // 20 rows per transaction, fewer transactions than pages.
    expect(puts).toBe(20 * groups.length);
    expect(groups.length).toBeLessThan(10);
    // One record per pulled page, as before.
    const records = (await db.getAll('log')).map(decodeRecord);
    expect(records.map((r) => r.events.length)).toEqual(Array(10).fill(100));
    expect(records.flatMap((r) => r.events.map((e) => e.position))).toEqual(
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );
    expect(await rowsOf(db)).toEqual(expectedRows(1000, 20));
    expect((await db.get('checkpoints', 'totals@1'))?.lp).toBe(1000);
    // Progress is reported after every group, ending at the total.
    const sums = groups.map((g) => g.reduce((a, b) => a + b, 0));
    const cumulative = sums.map((_, i) => sums.slice(0, i + 1).reduce((a, b) => a + b, 0));
    expect([...new Set(statuses.filter((s) => s.total === 1000).map((s) => s.processed))]).toEqual(
      cumulative,
    );
  });

  it('a group that stops at a gap resumes from where it got to, nothing skipped or repeated', async () => {
    const server = await seededServer(1000, 20);
    const { db, sync } = await local();
    const inner = server.transport();
    const asked: number[] = [];
    // The third page comes from the wrong place (one event too far: a page fetched ahead from
    // a stale cursor looks the same), in the middle of a group: the group stops at the gap,
    // what was fetched after it is dropped, and the pull fetches again from the gap.
    const transport: Transport = {
      ...inner,
      pull: async (after, limit) => {
        asked.push(after);
        return inner.pull(asked.length === 3 ? after + 1 : after, limit);
      },
    };
    const engine = new SyncEngine(sync, transport, {
      limits: defaultClientLimits,
      live: false,
      pullLimit: 100,
      pullGroup: 500,
    });
    await engine.start();
    await engine.settled();
    await engine.stop();
    expect(asked.filter((a) => a === 200)).toHaveLength(2);
    expect(engine.status.lastConfirmedPosition).toBe(1000);
    const records = (await db.getAll('log')).map(decodeRecord);
    expect(records.flatMap((r) => r.events.map((e) => e.position))).toEqual(
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );
    expect(await rowsOf(db)).toEqual(expectedRows(1000, 20));
  });

  it('a page that fails to arrive fails the round after the pages before it are applied; the next round resumes', async () => {
    const server = await seededServer(1000, 20);
    const { db, sync } = await local();
    const inner = server.transport();
    let calls = 0;
    const transport: Transport = {
      ...inner,
      pull: async (after, limit) => {
        if (++calls === 4) throw Object.assign(new Error('network down'), { code: 'Timeout' });
        return inner.pull(after, limit);
      },
    };
    const engine = new SyncEngine(sync, transport, {
      limits: defaultClientLimits,
      live: false,
      pullLimit: 100,
      pullGroup: 300,
      setTimer: () => undefined,
    });
    await engine.start();
    await engine.settled();
    expect(engine.status.lastError?.message).toBe('network down');
    expect(engine.status.lastConfirmedPosition).toBe(300);
    engine.kick();
    await engine.settled();
    await engine.stop();
    expect(engine.status.lastConfirmedPosition).toBe(1000);
    expect(await rowsOf(db)).toEqual(expectedRows(1000, 20));
  });

  it('a throw while applying pulled events aborts the whole transaction: no log without its projections', async () => {
    const { db, sync } = await local();
    const page: WireEvent[] = [1, 2, 3].map((p) => ({
      id: crypto.randomUUID(),
      stream: 's',
      type: 'Added',
      schemaVersion: 1,
      data: { n: p },
      metadata: {},
      version: p,
      position: p,
      recordedAt: '2026-01-01T00:00:00.000Z',
    }));
    // A write that fails after the rows were written (a full disk, a bug), in the middle of the
    // transaction: the log's record was added before it.
    const apply = ProjectionRunner.prototype.apply;
    ProjectionRunner.prototype.apply = async function (this: ProjectionRunner, ...args) {
      await apply.apply(this, args);
      throw new Error('a failed write');
    };
    try {
      await expect(sync.applyPulled(page, 3)).rejects.toThrow('a failed write');
    } finally {
      ProjectionRunner.prototype.apply = apply;
    }
    expect(await db.count('log')).toBe(0);
    expect((await sync.meta()).pulled).toBe(0);
    expect(await db.get('checkpoints', 'totals@1')).toBeUndefined();
    expect(await db.count('rows')).toBe(0);
  });
});
