import 'fake-indexeddb/auto';
import type { Decider, DomainEvent } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeServer } from './testing/fake-server.ts';
import { WorkerCore } from './worker-core.ts';

let folds = 0;
const counter: Decider<{ add: number }, DomainEvent<'Added', { n: number }>, { total: number }> = {
  initialState: () => ({ total: 0 }),
  evolve: (s, e) => {
    folds++;
    return { total: s.total + e.data.n };
  },
  decide: (c) => [{ type: 'Added', data: { n: c.add } }],
};

const open: WorkerCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

let n = 0;
async function client(server: FakeServer, stateVersion: number, online = true) {
  const core = new WorkerCore({
    deciders: { counter },
    snapshots: { counter: { stateVersion, every: 10 } },
    transport: () => server.transport(),
    engine: { backoffBase: 1, backoffCap: 5 },
  });
  open.push(core);
  await core.init({ url: 'http://fake', store: 's', dbName: `snap-${++n}`, online, token: 't', live: false });
  return core;
}

describe('aggregate snapshots', () => {
  it('cover only the confirmed prefix and shorten later loads', async () => {
    const server = new FakeServer();
    const c = await client(server, 1, false);
    for (let i = 1; i <= 25; i++) await c.execute('counter', 'c-1', { add: i });
    // Nothing is confirmed yet: a snapshot would hold pending events, so none is taken.
    folds = 0;
    await c.execute('counter', 'c-1', { add: 0 });
    expect(folds).toBe(25);
    c.setOnline(true);
    for (let i = 0; i < 50 && (await c.syncNow()).pending > 0; i++);
    expect(c.status().pending).toBe(0);
    await c.execute('counter', 'c-1', { add: 0 }); // folds 26 confirmed events, snapshots version 26
    folds = 0;
    const r = await c.execute('counter', 'c-1', { add: 1000 });
    expect(folds).toBe(1); // from the snapshot: only the pending event after it
    expect(r.version).toBe(28);
    const read = await c.readStream('c-1', { limit: 100 });
    const total = read.events.reduce((t, e) => t + (e.data as { n: number }).n, 0);
    expect(total).toBe(325 + 1000);
  });

  it('a snapshot of another state version is not used', async () => {
    const server = new FakeServer();
    const a = await client(server, 1);
    for (let i = 1; i <= 12; i++) await a.execute('counter', 'c-2', { add: 1 });
    for (let i = 0; i < 50 && (await a.syncNow()).pending > 0; i++);
    await a.execute('counter', 'c-2', { add: 1 });
    await a.close();
    // Same database (dbName reuse), new state version: a full fold.
    const b = new WorkerCore({
      deciders: { counter },
      snapshots: { counter: { stateVersion: 2, every: 1000 } },
    });
    open.push(b);
    await b.init({ url: 'http://fake', store: 's', dbName: `snap-${n}`, sync: false });
    folds = 0;
    await b.execute('counter', 'c-2', { add: 1 });
    expect(folds).toBe(13);
  });
});
