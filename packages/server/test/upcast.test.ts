import { runInDurableObject } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import type { ServerMessage } from '@edgelog/core';
import { pricedGolden as golden } from '@edgelog/core/testing';
import { describe, expect, it } from 'vitest';
import type { StreamDO } from '../src/stream-do.ts';
import { BASE, call, callUnchecked, freshStore, token } from './helpers.ts';

// I8 at the edge: the golden fixtures (stored Priced events of every schema version) read as
// the current shape on every read path, and the stored bytes stay as written.

type Json = Record<string, unknown>;
type Wire = { id: string; type: string; schemaVersion: number; data: unknown; version: number };

const current = golden.events.map((e) => e.current);
const STREAM = 'price-tea';

async function storeWithFixtures() {
  const store = freshStore('up');
  const t = await token({ store });
  const events = golden.events.map((e) => ({
    id: crypto.randomUUID(),
    type: golden.type,
    schemaVersion: e.schemaVersion,
    data: e.data,
  }));
  const res = await call(`/v1/stores/${store}/streams/${STREAM}/events`, {
    method: 'POST',
    token: t,
    json: { events },
  });
  expect(res.status).toBe(200);
  const { positions } = (await res.json()) as { positions: number[] };
  return { store, t, ids: events.map((e) => e.id), head: positions.at(-1)! };
}

const json = async (path: string, t: string) => {
  const res = await call(path, { token: t });
  expect(res.status, path).toBe(200);
  return (await res.json()) as Json;
};

const shapes = (events: Wire[]) => events.map((e) => [e.schemaVersion, e.data]);
const expected = current.map((d) => [golden.currentVersion, d]);

async function subscribe(path: string, t: string): Promise<Wire[]> {
  const res = await exports.default.fetch(
    new Request(`${BASE}${path}`, { headers: { Upgrade: 'websocket', authorization: `Bearer ${t}` } }),
  );
  const ws = res.webSocket;
  if (!ws) throw new Error(`upgrade refused: ${res.status}`);
  ws.accept();
  const messages: ServerMessage[] = [];
  ws.addEventListener('message', (e) => messages.push(JSON.parse(String(e.data)) as ServerMessage));
  ws.send(JSON.stringify({ type: 'subscribe', id: 's' }));
  const start = Date.now();
  while (!messages.some((m) => m.type === 'caught-up')) {
    if (Date.now() - start > 10_000) throw new Error(`no caught-up on ${path}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  ws.close();
  return messages.flatMap((m) => (m.type === 'events' ? (m.events as Wire[]) : []));
}

describe('read-path upcasting of golden fixtures (I8)', () => {
  it('holds a fixture for every schema version of the type', () => {
    expect(golden.events.map((e) => e.schemaVersion)).toEqual(
      Array.from({ length: golden.currentVersion }, (_, i) => i + 1),
    );
  });

  it('stream reads, read-all and pull show the current shape', async () => {
    const { store, t } = await storeWithFixtures();
    const stream = await json(`/v1/stores/${store}/streams/${STREAM}/events`, t);
    expect(shapes(stream.events as Wire[])).toEqual(expected);
    const backward = await json(`/v1/stores/${store}/streams/${STREAM}/events?direction=backward`, t);
    expect(shapes(backward.events as Wire[])).toEqual([...expected].reverse());
    const all = await json(`/v1/stores/${store}/events`, t);
    expect(shapes(all.events as Wire[])).toEqual(expected);
    const pull = await json(`/v1/stores/${store}/sync/pull?after=0`, t);
    expect(shapes(pull.events as Wire[])).toEqual(expected);
  });

  it('WebSocket subscriptions, of the store and of the stream, show the current shape', async () => {
    const { store, t } = await storeWithFixtures();
    expect(shapes(await subscribe(`/v1/stores/${store}/ws`, t))).toEqual(expected);
    expect(shapes(await subscribe(`/v1/stores/${store}/streams/${STREAM}/ws`, t))).toEqual(expected);
  });

  it('a push conflict answers the unseen events in the current shape', async () => {
    const { store, t } = await storeWithFixtures();
    const res = await call(`/v1/stores/${store}/sync/push`, {
      method: 'POST',
      token: t,
      json: {
        commits: [
          {
            commitId: crypto.randomUUID(),
            stream: STREAM,
            expectedVersion: 'no_stream',
            events: [{ id: crypto.randomUUID(), type: 'Noted', data: {} }],
          },
        ],
      },
    });
    const { results } = (await res.json()) as { results: Array<{ status: string; events: Wire[] }> };
    expect(results[0]?.status).toBe('conflict');
    expect(shapes(results[0]!.events)).toEqual(expected);
  });

  it('projections and aggregate loads fold the current shape', async () => {
    const { store, t, head } = await storeWithFixtures();
    const row = await json(`/v1/stores/${store}/projections/prices/tea?minPosition=${head}`, t);
    expect(row.state).toEqual({ ...current.at(-1), changes: 3 });
    const aggregate = await json(`/v1/stores/${store}/streams/${STREAM}/aggregates/pricing`, t);
    expect(aggregate).toMatchObject({ version: 3, state: { last: current.at(-1), changes: 3 } });
  });

  it('never rewrites the stored bytes', async () => {
    const { store, t } = await storeWithFixtures();
    await json(`/v1/stores/${store}/streams/${STREAM}/events`, t);
    await json(`/v1/stores/${store}/streams/${STREAM}/aggregates/pricing`, t);
    const stub = env.STREAMS.get(env.STREAMS.idFromName(`${store}/${STREAM}`));
    const stored = await runInDurableObject(stub, (instance: StreamDO, state) => {
      expect(instance).toBeDefined();
      // The stream's copy keeps each commit as packed text: [id, type, schemaVersion, data, metadata].
      return state.storage.sql
        .exec<{ events: string }>('SELECT events FROM batches ORDER BY first_version')
        .toArray()
        .flatMap((r) => JSON.parse(r.events) as unknown[][])
        .map((e) => [e[2], e[3]]);
    });
    expect(stored).toEqual(golden.events.map((e) => [e.schemaVersion, e.data]));
  });

  it('answers an event that cannot be upcast as stored, parks it in projections, and refuses to fold it', async () => {
    const store = freshStore('up');
    const t = await token({ store });
    const broken = { id: crypto.randomUUID(), type: 'Priced', schemaVersion: 1, data: { sku: 'tea' } };
    // Version 1 refuses it now, so it is history stored before that schema (validation off).
    const res = await callUnchecked(`/v1/stores/${store}/streams/${STREAM}/events`, {
      method: 'POST',
      token: t,
      json: { events: [broken] },
    });
    const { positions } = (await res.json()) as { positions: number[] };
    const read = await json(`/v1/stores/${store}/streams/${STREAM}/events`, t);
    expect(shapes(read.events as Wire[])).toEqual([[1, { sku: 'tea' }]]);
    await json(`/v1/stores/${store}/projections/prices?minPosition=${positions[0]}`, t);
    const parked = await json(
      `/v1/stores/${store}/projections/prices/parked`,
      await token({ store, role: 'admin' }),
    );
    expect(parked.events).toMatchObject([{ eventId: broken.id, position: positions[0] }]);
    const load = await call(`/v1/stores/${store}/streams/${STREAM}/aggregates/pricing`, { token: t });
    expect(load.status).toBe(500);
    expect(((await load.json()) as { error: { message: string } }).error.message).toMatch(/current shape/);
  });
});
