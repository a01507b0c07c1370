import { describe, expect, it } from 'vitest';
import { BENCH_BYPASS_HEADER } from '../src/app.ts';
import { appendTo, call, freshStore, newEvent, token } from './helpers.ts';

// The edge commit bench compares appends through the sequencer with "the same appends without
// it": the bypass must still answer retries by event id and check the expected version.
describe('bench-only sequencer bypass (EDGELOG_BENCH=1)', () => {
  it('keeps idempotency by id and the expected version, as a store without a sequencer must', async () => {
    const store = freshStore('bypass');
    const t = await token({ store });
    const bypass = appendTo(store, t, { [BENCH_BYPASS_HEADER]: 'bypass' });
    const append = (events: unknown[], expectedVersion?: number) => bypass('b-1', events, expectedVersion);
    const batch = [newEvent(), newEvent()];
    const first = await append(batch, 0);
    expect(await first.json()).toEqual({ version: 2, positions: [1, 2] });
    const retry = await append(batch, 0);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ version: 2, positions: [1, 2] });
    const partial = await append([batch[0], newEvent()]);
    expect(partial.status).toBe(409);
    expect(((await partial.json()) as { error: { code: string } }).error.code).toBe('IdempotencyConflict');
    const stale = await append([newEvent()], 1);
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('WrongExpectedVersion');
    const read = await call(`/v1/stores/${store}/streams/b-1/events`, { token: t });
    expect(((await read.json()) as { version: number }).version).toBe(2);
  });
});
