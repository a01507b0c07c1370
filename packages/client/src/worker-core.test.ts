import 'fake-indexeddb/auto';
import { defineEvent, eventRegistry } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openLogDb } from './db.ts';
import { ProjectionRunner } from './projections.ts';
import { SyncStore } from './sync-store.ts';
import { WorkerCore } from './worker-core.ts';

const Renamed = defineEvent({
  type: 'Renamed',
  schemas: [z.object({ name: z.string() }), z.object({ name: z.string(), tags: z.array(z.string()) })],
  upcasters: [(v1) => ({ ...v1, tags: [] })],
});
const registry = eventRegistry([Renamed]);

const open: WorkerCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

let n = 0;
async function core() {
  const c = new WorkerCore({
    registry,
    deciders: {
      renamer: {
        initialState: () => ({ tags: 0 }),
        evolve: (s: { tags: number }, e: { data: { tags: string[] } }) => ({
          tags: s.tags + e.data.tags.length,
        }),
        decide: (c: { name: string }) => [{ type: 'Renamed', data: { name: c.name, tags: ['x'] } }],
      },
    },
  });
  open.push(c);
  await c.init({ url: 'http://unused', store: 's', dbName: `core-${++n}`, sync: false });
  return c;
}

describe('WorkerCore with an event registry', () => {
  it('validates appended data against the current schema', async () => {
    const c = await core();
    await expect(c.append('a', [{ type: 'Renamed', data: { name: 1 } }])).rejects.toMatchObject({
      code: 'Validation',
    });
    await expect(c.append('a', [{ type: 'Unknown', data: {} }])).rejects.toMatchObject({
      code: 'Validation',
    });
    expect((await c.append('a', [{ type: 'Renamed', data: { name: 'n', tags: [] } }])).version).toBe(1);
  });

  it('reads events stored at an old schema version as the current shape (I8), also for deciders', async () => {
    const c = await core();
    await c.append('a', [{ type: 'Renamed', schemaVersion: 1, data: { name: 'old' } }]);
    const read = await c.readStream('a');
    expect(read.events[0]).toMatchObject({ schemaVersion: 2, data: { name: 'old', tags: [] } });
    const r = await c.execute('renamer', 'a', { name: 'new' });
    expect(r.version).toBe(2);
    expect(r.events[0]).toMatchObject({
      type: 'Renamed',
      schemaVersion: 2,
      data: { name: 'new', tags: ['x'] },
    });
  });

  it('a refusal by the decider reaches the caller with its code, and nothing is stored', async () => {
    const c = new WorkerCore({
      deciders: {
        never: {
          initialState: () => null,
          evolve: (s: null) => s,
          decide: () => {
            throw Object.assign(new Error('not today'), { code: 'CommandRejected' });
          },
        },
      },
    });
    open.push(c);
    await c.init({ url: 'http://unused', store: 's', dbName: `core-${++n}`, sync: false });
    await expect(c.execute('never', 'x', {})).rejects.toMatchObject({
      code: 'CommandRejected',
      message: 'not today',
    });
    await expect(c.execute('missing', 'x', {})).rejects.toMatchObject({ code: 'Definition' });
    await expect(c.readStream('x')).rejects.toMatchObject({ code: 'StreamNotFound' });
  });
});

describe('WorkerCore projection queries', () => {
  it('lists rows by key prefix in key order and reports checkpoints against the log head', async () => {
    const { defineProjection } = await import('@edgelog/core');
    const names = defineProjection<{ name: string }>({
      name: 'names',
      version: 1,
      types: ['Renamed'],
      key: (e) => e.stream,
      initialState: () => ({ name: '' }),
      evolve: (_s, e) => ({ name: (e.data as { name: string }).name }),
    });
    const c = new WorkerCore({ registry, projections: [names] });
    open.push(c);
    await c.init({ url: 'http://unused', store: 's', dbName: `core-${++n}`, sync: false });
    for (const stream of ['user-b', 'user-a', 'team-x', 'user-c']) {
      await c.append(stream, [{ type: 'Renamed', data: { name: stream.toUpperCase(), tags: [] } }]);
    }
    const users = await c.queryProjection('names', { prefix: 'user-' });
    expect(users.map((r) => r.key)).toEqual(['user-a', 'user-b', 'user-c']);
    expect(users[0]!.state).toEqual({ name: 'USER-A' });
    expect(
      (await c.queryProjection('names', { prefix: 'user-', after: 'user-a', limit: 1 })).map((r) => r.key),
    ).toEqual(['user-b']);
    expect((await c.queryProjection('names')).map((r) => r.key)).toEqual([
      'team-x',
      'user-a',
      'user-b',
      'user-c',
    ]);
    expect(await c.projectionStatus()).toEqual([
      { name: 'names', version: 1, checkpoint: 4, head: 4, parked: 0 },
    ]);
    await expect(c.queryProjection('nope')).rejects.toMatchObject({ code: 'NotFound' });
  });
});

describe('the durability option', () => {
  it("reaches every write transaction of the log: appends and the sync store's", async () => {
    const proto = (globalThis as unknown as { IDBDatabase: { prototype: IDBDatabase } }).IDBDatabase
      .prototype;
    const original = proto.transaction;
    const writes: Array<string | undefined> = [];
    proto.transaction = function (
      this: IDBDatabase,
      ...args: Parameters<IDBDatabase['transaction']>
    ): IDBTransaction {
      if (args[1] === 'readwrite') writes.push(args[2]?.durability);
      return original.apply(this, args);
    } as IDBDatabase['transaction'];
    try {
      const c = new WorkerCore({ registry });
      open.push(c);
      await c.init({
        url: 'http://unused',
        store: 's',
        dbName: `core-${++n}`,
        sync: false,
        durability: 'strict',
      });
      await c.append('user-a', [{ type: 'Renamed', data: { name: 'A', tags: [] } }]);
      expect(writes.length).toBeGreaterThan(0);
      expect(new Set(writes)).toEqual(new Set(['strict']));
      // The sync store (pulls, acknowledgements, rejections, rebases) writes with the same hint.
      const db = await openLogDb(`core-${++n}`);
      const sync = new SyncStore(db, {
        projections: new ProjectionRunner([]),
        deciders: {},
        onWrite: () => undefined,
        durability: 'strict',
      });
      writes.length = 0;
      await sync.reject('no-such-commit', { code: 'Validation', message: 'no' });
      expect(writes).toEqual(['strict']);
      db.close();
    } finally {
      proto.transaction = original;
    }
  });
});
