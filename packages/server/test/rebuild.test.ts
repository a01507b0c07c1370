import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { ProjectionApi, ProjectionDO, ProjectionRef } from '../src/projection-do.ts';
import { call, freshStore, newEvent, token } from './helpers.ts';

// Deploying a new projection version: it builds beside the old one, throttled, while the
// old version keeps answering and appends keep committing. No timing is asserted: the
// rebuild's own status, read after each answer, shows the answer came during the rebuild.

const EVENTS = 6_000;
const BATCH = 1_000;

async function append(store: string, t: string, events: unknown[]) {
  const res = await call(`/v1/stores/${store}/streams/cart-${events.length}/events`, {
    method: 'POST',
    token: t,
    json: { events },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { positions: number[] }).positions.at(-1)!;
}

describe('rebuild of a new projection version', () => {
  it('builds beside the old version, which keeps answering while appends keep committing', async () => {
    const store = freshStore('rebuild');
    const t = await token({ store });
    let head = 0;
    for (let i = 0; i < EVENTS / BATCH; i++) {
      head = await append(
        store,
        t,
        Array.from({ length: BATCH }, (_, j) => newEvent('Added', { sku: `sku-${j % 50}`, qty: 1 })),
      );
    }
    const v1: ProjectionRef = { store, name: 'totals', version: 1 };
    const old = env.PROJECTIONS.get(
      env.PROJECTIONS.idFromName(`${store}/totals@1`),
    ) as unknown as ProjectionApi;
    expect((await old.get(v1, 'sku-0', { minPosition: head, timeoutMs: 25_000 })).ok).toBe(true);

    // "Deploy" version 2 into a fresh object: it rebuilds all of the log from zero, in pages
    // of 100 here so that the rebuild spans many pages (and many throttling rests).
    const v2: ProjectionRef = { store, name: 'totals', version: 2 };
    const id = env.PROJECTIONS.idFromName(`${store}/totals@2#deployed`);
    await runInDurableObject(env.PROJECTIONS.get(id), (instance: ProjectionDO) => {
      instance.pageSize = 100;
    });
    const fresh = env.PROJECTIONS.get(id) as unknown as ProjectionApi;
    await fresh.poke(v2);

    let during = 0;
    for (let round = 0; round < 200; round++) {
      const position = await append(store, t, [newEvent('Added', { sku: 'live', qty: 1 })]);
      const answer = await old.get(v1, 'live', { minPosition: position, timeoutMs: 25_000 });
      expect(answer.ok && answer.value?.state).toEqual({ qty: round + 1 });
      const status = await fresh.status(v2);
      if (!status.ok) throw new Error(status.error.message);
      if (status.value.ready) break;
      // The old version answered a write made after the rebuild started, before it finished.
      expect(status.value.state).toBe('catching-up');
      expect(status.value.checkpoint).toBeLessThan(position);
      during++;
    }
    expect(during).toBeGreaterThan(0);

    // The rebuilt version ends where the old one is, with its own shape.
    const last = await append(store, t, [newEvent('Added', { sku: 'sku-0', qty: 1 })]);
    const rebuilt = await fresh.get(v2, 'sku-0', { minPosition: last, timeoutMs: 25_000 });
    expect(rebuilt.ok && rebuilt.value?.state).toEqual({ qty: EVENTS / 50 + 1, events: EVENTS / 50 + 1 });
  }, 120_000);
});
