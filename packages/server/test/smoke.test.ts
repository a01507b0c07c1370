import { describe, expect, it } from 'vitest';
import { call, freshStore, newEvent, token } from './helpers.ts';

describe('smoke', () => {
  it('appends and reads', async () => {
    const store = freshStore();
    const t = await token({ store });
    const r = await call(`/v1/stores/${store}/streams/a-1/events`, {
      method: 'POST',
      token: t,
      json: { events: [newEvent(), newEvent()] },
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ version: 2, positions: [1, 2] });
    const read = await call(`/v1/stores/${store}/streams/a-1/events`, { token: t });
    const page = (await read.json()) as { events: unknown[]; version: number };
    expect(page.version).toBe(2);
    const all = await call(`/v1/stores/${store}/events`, { token: t });
    expect(((await all.json()) as { head: number }).head).toBe(2);
  });
});
