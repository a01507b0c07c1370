import { defaultLimits } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import { ClientError } from './errors.ts';
import { retryAfterOf } from './retry-after.ts';
import { SyncEngine } from './sync-engine.ts';
import type { SyncStore } from './sync-store.ts';
import type { Transport } from './transport.ts';

// One pending commit and nothing else: enough for the engine to push and fail.
const store = {
  meta: async () => ({ pulled: 0, head: 0 }),
  outbox: async () => [
    {
      key: 1,
      commit: { commitId: 'c1', stream: 's', ids: ['e1'], seq: 1 },
      events: [
        {
          id: 'e1',
          stream: 's',
          type: 'T',
          schemaVersion: 1,
          data: {},
          metadata: {},
          version: 1,
          lp: 1,
          recordedAt: '',
        },
      ],
    },
  ],
} as unknown as SyncStore;

async function firstDelay(error: unknown): Promise<number> {
  const transport: Transport = {
    push: async () => {
      throw error;
    },
    pull: async () => ({ events: [], head: 0 }),
    live: () => ({ close() {} }),
  };
  const delays: number[] = [];
  const engine = new SyncEngine(store, transport, {
    limits: defaultLimits,
    backoffBase: 10,
    backoffCap: 100,
    random: () => 0.5,
    setTimer: (_fn, ms) => delays.push(ms),
    clearTimer: () => undefined,
    live: false,
  });
  await engine.start();
  await engine.settled();
  await engine.stop();
  return delays[0]!;
}

describe('a RateLimited answer', () => {
  it('holds the next attempt back for at least the Retry-After the server gave', async () => {
    const limited = new ClientError('RateLimited', 'slow down', { retryAfterMs: 5_000 });
    expect(await firstDelay(limited)).toBe(5_000);
    // Other failures keep the jittered backoff (here 0.5 x 10 ms).
    expect(await firstDelay(new ClientError('Offline', 'network error'))).toBe(5);
  });

  it('reads only a sane wait', () => {
    expect(retryAfterOf({ code: 'RateLimited', details: { retryAfterMs: 'soon' } })).toBe(0);
    expect(retryAfterOf({ code: 'Offline', details: { retryAfterMs: 10 } })).toBe(0);
    expect(retryAfterOf({ code: 'RateLimited', details: { retryAfterMs: 1e12 } })).toBe(300_000);
  });
});
