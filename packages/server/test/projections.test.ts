import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { ProjectionDO } from '../src/projection-do.ts';
import { BASE, call, freshStore, newEvent, token } from './helpers.ts';

type Json = Record<string, unknown>;

async function append(store: string, t: string, stream: string, events: unknown[]) {
  const res = await call(`/v1/stores/${store}/streams/${stream}/events`, {
    method: 'POST',
    token: t,
    json: { events },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { version: number; positions: number[] };
}

const get = async (path: string, t: string) => {
  const res = await call(path, { token: t });
  return { status: res.status, body: (await res.json()) as Json };
};

describe('edge projections', () => {
  it('folds the global log into a keyed read model, with read-your-writes', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    await append(store, t, 'cart-1', [
      newEvent('Added', { sku: 'tea', qty: 2 }),
      newEvent('Added', { sku: 'cake', qty: 1 }),
    ]);
    const last = await append(store, t, 'cart-2', [newEvent('Added', { sku: 'tea', qty: 3 })]);
    const minPosition = last.positions.at(-1)!;
    const tea = await get(`/v1/stores/${store}/projections/totals/tea?minPosition=${minPosition}`, t);
    expect(tea.status).toBe(200);
    expect(tea.body).toMatchObject({ key: 'tea', state: { qty: 5, events: 2 } });
    expect(tea.body.checkpoint as number).toBeGreaterThanOrEqual(minPosition);
    const listing = await get(`/v1/stores/${store}/projections/totals?prefix=t`, t);
    expect((listing.body.rows as Json[]).map((r) => r.key)).toEqual(['tea']);
    const all = await get(`/v1/stores/${store}/projections/totals?minPosition=${minPosition}`, t);
    expect((all.body.rows as Json[]).map((r) => r.key)).toEqual(['cake', 'tea']);
    const missing = await get(`/v1/stores/${store}/projections/totals/nothing?minPosition=${minPosition}`, t);
    expect(missing.status).toBe(404);
  });

  it('follows the log with no query to wake it: the sequencer pokes the projections after its commits', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    // Writers racing on several streams, then nothing but waiting: every commit must reach it.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, w) =>
        Promise.all(
          Array.from({ length: 5 }, () =>
            append(store, t, `cart-${w}`, [newEvent('Added', { sku: `s${w}`, qty: 1 })]),
          ),
        ),
      ),
    );
    const head = Math.max(...results.flat().flatMap((r) => r.positions));
    const stub = env.PROJECTIONS.get(env.PROJECTIONS.idFromName(`${store}/balances@1`));
    const checkpoint = () =>
      runInDurableObject(
        stub,
        (instance: ProjectionDO) => (instance as unknown as { checkpoint: number }).checkpoint,
      );
    const start = Date.now();
    while ((await checkpoint()) < head) {
      expect(Date.now() - start, 'the projection to reach the head unasked').toBeLessThan(10_000);
      await new Promise((done) => setTimeout(done, 20));
    }
    expect(await checkpoint()).toBe(head);
  });

  it('answers a read-your-writes wait that cannot be met with a clear Timeout', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    await append(store, t, 'cart-1', [newEvent('Added', { sku: 'tea', qty: 1 })]);
    const res = await get(`/v1/stores/${store}/projections/totals/tea?minPosition=99&timeoutMs=300`, t);
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ error: { code: 'Timeout' } });
    expect((res.body.error as Json).message).toMatch(/not 99/);
  });

  it('reports progress and lag', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    const r = await append(store, t, 'cart-1', [
      newEvent('Added', { sku: 'tea', qty: 1 }),
      newEvent('Other', {}),
    ]);
    await get(`/v1/stores/${store}/projections/totals/tea?minPosition=${r.positions.at(-1)}`, t);
    const status = await get(`/v1/stores/${store}/projections/totals/status`, t);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      name: 'totals',
      version: 2,
      checkpoint: 2,
      head: 2,
      lag: 0,
      state: 'live',
      parked: 0,
    });
  });

  it('parks a poison event, reports it, and goes on with the next events', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    await append(store, t, 'cart-1', [newEvent('Added', { sku: 'tea', qty: 1 })]);
    await append(store, t, 'cart-1', [newEvent('Added', { sku: 'tea', qty: -1 })]);
    const last = await append(store, t, 'cart-1', [newEvent('Added', { sku: 'tea', qty: 4 })]);
    const tea = await get(`/v1/stores/${store}/projections/totals/tea?minPosition=${last.positions[0]}`, t);
    expect(tea.body).toMatchObject({ state: { qty: 5, events: 2 } });
    const parked = await get(
      `/v1/stores/${store}/projections/totals/parked`,
      await token({ store, role: 'admin' }),
    );
    expect(parked.body).toMatchObject({
      events: [{ position: 2, type: 'Added', error: 'negative quantity' }],
    });
    const status = await get(`/v1/stores/${store}/projections/totals/status`, t);
    expect(status.body).toMatchObject({ parked: 1, state: 'live' });
  });

  it('parks an event whose new state cannot be stored as JSON, instead of retrying its page forever', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    // One append, so the poison event shares a page with good ones, before and after it; the
    // state it makes is the last of its key in the page, so it is what would be stored.
    const r = await append(store, t, 'tally-1', [
      newEvent('Tallied', { key: 'a', n: 1 }),
      newEvent('Tallied', { key: 'b', n: 5 }),
      newEvent('Tallied', { key: 'a', big: true }),
      newEvent('Tallied', { key: 'b', n: 2 }),
    ]);
    const last = r.positions.at(-1);
    const a = await get(`/v1/stores/${store}/projections/tallies/a?minPosition=${last}&timeoutMs=5000`, t);
    expect(a.body).toMatchObject({ state: { n: 1 } });
    const b = await get(`/v1/stores/${store}/projections/tallies/b?minPosition=${last}`, t);
    expect(b.body).toMatchObject({ state: { n: 7 } });
    const parked = await get(
      `/v1/stores/${store}/projections/tallies/parked`,
      await token({ store, role: 'admin' }),
    );
    expect(parked.body).toMatchObject({ events: [{ position: r.positions[2], type: 'Tallied' }] });
    expect((parked.body.events as Json[])[0]?.error).toMatch(/key 'a' cannot be stored as JSON/);
    const status = await get(`/v1/stores/${store}/projections/tallies/status`, t);
    expect(status.body).toMatchObject({ parked: 1, state: 'live', checkpoint: last });
  });

  it('lists keys of every character, emoji included, with and without a prefix', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    const r = await append(store, t, 'cart-e', [
      newEvent('Added', { sku: 'tea', qty: 1 }),
      newEvent('Added', { sku: '🍵 matcha', qty: 1 }),
      newEvent('Added', { sku: 't🍵', qty: 1 }),
      newEvent('Added', { sku: 'u', qty: 1 }),
    ]);
    const last = r.positions.at(-1);
    const keys = async (query: string) =>
      (
        (await get(`/v1/stores/${store}/projections/totals?minPosition=${last}${query}`, t)).body
          .rows as Json[]
      )
        .map((row) => row.key)
        .sort();
    expect(await keys('')).toEqual(['t🍵', 'tea', 'u', '🍵 matcha'].sort());
    expect(await keys('&prefix=t')).toEqual(['t🍵', 'tea'].sort());
    expect(await keys('&prefix=%F0%9F%8D%B5')).toEqual(['🍵 matcha']);
  });

  it('a projection stopped by an event keeps its checkpoint just before it', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    const good = await append(store, t, 'guard-1', [newEvent('Guarded', { key: 'a' })]);
    const at = good.positions[0]!;
    const a = await get(`/v1/stores/${store}/projections/guarded/a?minPosition=${at}&timeoutMs=5000`, t);
    expect(a.body).toMatchObject({ state: { n: 1 } });
    // A page of one event that stops the projection: nothing in it was folded.
    const bad = await append(store, t, 'guard-1', [newEvent('Guarded', { key: 'a', bad: true })]);
    const stoppedAt = bad.positions[0]!;
    let status = await get(`/v1/stores/${store}/projections/guarded/status`, t);
    for (let i = 0; i < 100 && status.body.state !== 'stopped'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = await get(`/v1/stores/${store}/projections/guarded/status`, t);
    }
    expect(status.body).toMatchObject({ state: 'stopped', checkpoint: stoppedAt - 1 });
    // What was folded before the stop is still read at its position.
    const again = await get(`/v1/stores/${store}/projections/guarded/a?minPosition=${at}`, t);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ state: { n: 1 }, checkpoint: stoppedAt - 1 });
  });

  it('builds a new version beside the old one and moves queries to it once caught up', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    const r = await append(store, t, 'cart-1', [newEvent('Added', { sku: 'tea', qty: 2 })]);
    // v2 of `totals` counts events too; v1 (configured beside it) does not. Until v2 has caught
    // up once, a caught-up v1 may answer; once it has, v2 answers.
    const start = Date.now();
    for (;;) {
      const status = await get(`/v1/stores/${store}/projections/totals/status`, t);
      if (status.body.active === 2) break;
      expect(Date.now() - start, 'v2 to take over').toBeLessThan(10_000);
      await new Promise((done) => setTimeout(done, 20));
    }
    const tea = await get(`/v1/stores/${store}/projections/totals/tea?minPosition=${r.positions[0]}`, t);
    expect(tea.body).toMatchObject({ version: 2, state: { qty: 2, events: 1 } });
    const v1 = await get(
      `/v1/stores/${store}/projections/totals/tea?version=1&minPosition=${r.positions[0]}`,
      t,
    );
    expect(v1.body).toMatchObject({ version: 1, state: { qty: 2 } });
  });

  it('refuses unknown projections, other stores and prefix-limited tokens', async () => {
    const store = freshStore('proj');
    const t = await token({ store });
    expect((await get(`/v1/stores/${store}/projections/nope/x`, t)).status).toBe(404);
    const other = await token({ store: freshStore('other') });
    expect((await get(`/v1/stores/${store}/projections/totals/tea`, other)).status).toBe(403);
    const limited = await token({ store, streams: ['cart-'] });
    expect((await get(`/v1/stores/${store}/projections/totals/tea`, limited)).status).toBe(403);
    expect((await call(`/v1/stores/${store}/projections/totals/tea`)).status).toBe(401);
    expect(BASE).toContain('http');
  });
});
