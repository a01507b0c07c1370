import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SnapshotStore } from '../src/aggregate.ts';
import { type AnyProjection, projectionDefinition } from '../src/config.ts';
import { unpackChunk } from '../src/packed.ts';
import type { ProjectionApi, ProjectionDO, ProjectionRef } from '../src/projection-do.ts';
import type { ChunkPage, GlobalPage } from '../src/sequencer-do.ts';
import type { StreamDO } from '../src/stream-do.ts';
import { call, callUnchecked, freshStore, token } from './helpers.ts';

// I7 at the edge, in workerd, for random histories (poison events and old schema versions
// included): a ProjectionDO given pages it has already folded changes nothing; a rebuild
// from zero in a fresh ProjectionDO equals the one built page by page as the log grew; an
// aggregate loaded from the StreamDO's snapshot plus the tail equals a full replay.

type Json = Record<string, unknown>;

const eventArb = fc.oneof(
  fc.record({
    type: fc.constant('Added'),
    data: fc.record({ sku: fc.constantFrom('a', 'b', 'c'), qty: fc.integer({ min: -1, max: 5 }) }),
  }),
  fc.record({
    type: fc.constant('Priced'),
    schemaVersion: fc.constant(1),
    data: fc.record({ sku: fc.constantFrom('a', 'b'), cents: fc.nat(999) }),
  }),
  fc.record({
    type: fc.constant('Priced'),
    schemaVersion: fc.constant(2),
    data: fc.record({
      sku: fc.constantFrom('a', 'b'),
      price: fc.record({ amount: fc.nat(999), currency: fc.constantFrom('EUR', 'USD') }),
    }),
  }),
  // Does not fit version 1: not upcastable, parked by `prices`.
  fc.constant({ type: 'Priced', schemaVersion: 1, data: { sku: 'a' } }),
);
const batchArb = fc.record({
  stream: fc.constantFrom('s-1', 's-2'),
  events: fc.array(eventArb, { minLength: 1, maxLength: 6 }),
});

async function append(store: string, t: string, stream: string, events: unknown[]) {
  // Unchecked: the history holds events version 1 of `Priced` refuses (stored before that schema).
  const res = await callUnchecked(`/v1/stores/${store}/streams/${stream}/events`, {
    method: 'POST',
    token: t,
    json: { events: events.map((e) => ({ id: crypto.randomUUID(), ...(e as Json) })) },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { positions: number[] }).positions.at(-1)!;
}

const projectionStub = (name: string) => env.PROJECTIONS.get(env.PROJECTIONS.idFromName(name));

async function contents(name: string) {
  return runInDurableObject(projectionStub(name), (_: ProjectionDO, state) => ({
    rows: state.storage.sql.exec('SELECT key, state FROM rows ORDER BY key').toArray(),
    parked: state.storage.sql
      .exec('SELECT position, event_id, error FROM parked ORDER BY position')
      .toArray(),
  }));
}

async function waitFor(name: string, ref: ProjectionRef, head: number) {
  const stub = projectionStub(name) as unknown as ProjectionApi;
  const out = await stub.list(ref, { limit: 1 }, { minPosition: head, timeoutMs: 20_000 });
  expect(out.ok).toBe(true);
}

describe('edge projection properties (I7, workerd)', () => {
  it('redelivery changes nothing, and a rebuild from zero equals the incremental build', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 8 }), async (batches) => {
        const store = freshStore('prop');
        const t = await token({ store });
        const refs: ProjectionRef[] = [
          { store, name: 'totals', version: 2 },
          { store, name: 'prices', version: 1 },
          { store, name: 'balances', version: 1 },
        ];
        let head = 0;
        for (const b of batches) {
          head = await append(store, t, b.stream, b.events);
          // Folded page by page as the log grows (read-your-writes on each append).
          for (const ref of refs) await waitFor(`${store}/${ref.name}@${ref.version}`, ref, head);
        }
        const sequencer = env.SEQUENCERS.get(env.SEQUENCERS.idFromName(store)) as unknown as {
          readChunks(after: number, limit: number, maxChars: number): Promise<ChunkPage>;
        };
        // Every page again, from any prefix, as the sequencer hands the stored chunks out.
        const pages: ChunkPage[] = [];
        for (let from = 0; from < head; from += 3) pages.push(await sequencer.readChunks(from, 5000, 1e7));
        for (const ref of refs) {
          const live = `${store}/${ref.name}@${ref.version}`;
          const built = await contents(live);
          // Redelivery: every page again, from any prefix.
          await runInDurableObject(projectionStub(live), (instance: ProjectionDO) => {
            const definition = projectionDefinition(ref.name, ref.version) as AnyProjection;
            const apply = (instance as unknown as Record<string, unknown>).apply as (
              d: AnyProjection,
              chunks: ChunkPage['chunks'],
              end: number,
              reachedHead: boolean,
            ) => void;
            for (const page of pages) apply.call(instance, definition, page.chunks, page.head, true);
          });
          expect(await contents(live)).toEqual(built);
          // A rebuild from zero, in a fresh object, in one pass.
          const rebuilt = `${live}#rebuild`;
          await waitFor(rebuilt, ref, head);
          expect(await contents(rebuilt)).toEqual(built);
          // And in pages of two events: pages end inside stored chunks, and each page folds
          // from the rows the one before wrote (or deleted), as the object remembers them.
          const paged = `${live}#pages`;
          await runInDurableObject(projectionStub(paged), (instance: ProjectionDO) => {
            instance.pageSize = 2;
          });
          await waitFor(paged, ref, head);
          expect(await contents(paged)).toEqual(built);
        }
      }),
      { numRuns: 4 },
    );
  });

  it('each page folds from the rows the page before wrote or deleted', async () => {
    const store = freshStore('pages');
    const t = await token({ store });
    const added = (sku: string, qty: number) => ({ type: 'Added', data: { sku, qty } });
    // b reaches zero (its row is deleted) in one page and is made again in the next.
    const head = await append(store, t, 's-1', [
      added('a', 1),
      added('b', 1),
      added('b', -1),
      added('a', 1),
      added('b', 2),
      added('a', -2),
      added('b', 1),
    ]);
    const ref: ProjectionRef = { store, name: 'balances', version: 1 };
    for (const pageSize of [1, 2, 3]) {
      const name = `${store}/balances@1#pages-${pageSize}`;
      await runInDurableObject(projectionStub(name), (instance: ProjectionDO) => {
        instance.pageSize = pageSize;
      });
      await waitFor(name, ref, head);
      expect((await contents(name)).rows).toEqual([{ key: 'b', state: '{"n":3}' }]);
    }
  });

  it('a row keyed by a lone surrogate is written and read under the same key', async () => {
    const store = freshStore('keys');
    const t = await token({ store });
    const ref: ProjectionRef = { store, name: 'balances', version: 1 };
    const stub = projectionStub(`${store}/balances@1`) as unknown as ProjectionApi;
    for (const [qty, n] of [
      [2, 2],
      [1, 3],
    ] as const) {
      const head = await append(store, t, 's-1', [{ type: 'Added', data: { sku: '\ud800', qty } }]);
      const row = await stub.get(ref, '\ud800', { minPosition: head, timeoutMs: 20_000 });
      expect(row.ok && row.value?.state).toEqual({ n });
    }
  });

  it('catch-up pages of stored chunks hold exactly the events of read-all pages', async () => {
    const store = freshStore('chunks');
    const t = await token({ store });
    let head = 0;
    for (const [i, size] of [3, 1, 5, 2, 4].entries())
      head = await append(
        store,
        t,
        `s-${i % 2}`,
        Array.from({ length: size }, (_, n) => ({ type: 'Added', data: { sku: 'a', qty: n } })),
      );
    const sequencer = env.SEQUENCERS.get(env.SEQUENCERS.idFromName(store)) as unknown as {
      readChunks(after: number, limit: number, maxChars: number): Promise<ChunkPage>;
      readAll(after: number, limit: number, scope: object): Promise<GlobalPage>;
    };
    for (const limit of [1, 2, 3, 4, 100])
      for (let after = 0; after <= head; after++) {
        const page = await sequencer.readChunks(after, limit, 1e7);
        const expected = await sequencer.readAll(after, limit, {});
        const events = page.chunks
          .flatMap((c) => unpackChunk(c.stream, c))
          .filter((e) => (e.position ?? 0) > after);
        expect(events).toEqual(expected.events);
        expect(page.head).toBe(head);
        // A text bound stops a page after whole chunks, never before the first.
        const small = await sequencer.readChunks(after, limit, 1);
        expect(small.chunks.length).toBe(after < head ? 1 : 0);
      }
  });

  it('an aggregate from its snapshot plus the tail equals a full replay; other state versions are ignored', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 6 }),
        async (sizes) => {
          const store = freshStore('snap');
          const t = await token({ store });
          const stream = 'price-x';
          const path = `/v1/stores/${store}/streams/${stream}/aggregates/pricing`;
          const load = async () => {
            const res = await call(path, { token: t });
            expect(res.status).toBe(200);
            return (await res.json()) as {
              version: number;
              state: unknown;
              snapshotVersion: number;
              replayed: number;
            };
          };
          const stub = env.STREAMS.get(env.STREAMS.idFromName(`${store}/${stream}`));
          // A snapshot of another state schema, far ahead: it must never be read.
          await runInDurableObject(stub, (_: StreamDO, state) => {
            new SnapshotStore(state.storage.sql).put('pricing', {
              stream,
              version: 1000,
              stateVersion: 0,
              state: { last: 'not this shape', changes: -1 },
            });
          });
          let version = 0;
          for (const size of sizes) {
            await append(
              store,
              t,
              stream,
              Array.from({ length: size }, (_, i) => ({
                type: 'Priced',
                schemaVersion: 2,
                data: { sku: 'x', price: { amount: version + i, currency: 'EUR' } },
              })),
            );
            version += size;
            const loaded = await load();
            expect(loaded.version).toBe(version);
            expect(loaded.snapshotVersion + loaded.replayed).toBe(version);
            // Snapshots are disposable: without them the load is the same.
            const full = await runInDurableObject(stub, async (instance: StreamDO, state) => {
              const rows = state.storage.sql.exec('SELECT * FROM snapshots').toArray();
              state.storage.sql.exec('DELETE FROM snapshots WHERE state_version = 1');
              const out = await instance.loadAggregate(store, stream, 'pricing');
              state.storage.sql.exec('DELETE FROM snapshots WHERE state_version = 1');
              for (const r of rows)
                state.storage.sql.exec(
                  'INSERT OR REPLACE INTO snapshots (decider, state_version, version, state) VALUES (?, ?, ?, ?)',
                  r.decider,
                  r.state_version,
                  r.version,
                  r.state,
                );
              return out;
            });
            expect(full.ok && full.value.snapshotVersion).toBe(0);
            expect(full.ok && full.value.state).toEqual(loaded.state);
            expect(loaded.state).toEqual({
              last: { sku: 'x', price: { amount: version - 1, currency: 'EUR' }, taxRate: 0 },
              changes: version,
            });
          }
          if (version >= 5) expect((await load()).snapshotVersion).toBeGreaterThanOrEqual(5);
        },
      ),
      { numRuns: 4 },
    );
  });
});
