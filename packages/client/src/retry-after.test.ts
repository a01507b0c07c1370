import { defaultLimits } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import { ClientError } from './errors.ts';
import { retryAfterOf } from './retry-after.ts';
import { SyncEngine } from './sync-engine.ts';
import type { SyncStore } from './sync-store.ts';
import { HttpTransport, retryAfterHeaderMs, type Transport } from './transport.ts';

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

describe('Retry-After from the HTTP header', () => {
  const answer = (status: number, body: string, retryAfter?: string) => async () =>
    new Response(body, {
      status,
      headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter },
    });
  const pushError = async (fetchFn: typeof fetch): Promise<unknown> =>
    new HttpTransport('http://edge.test', 's', async () => 't', fetchFn).push([]).then(
      () => undefined,
      (e: unknown) => e,
    );

  it('reads the header of a 429 that has no edgelog body (a proxy in front of the server)', async () => {
    const e = await pushError(answer(429, 'Too Many Requests', '7'));
    expect(e).toMatchObject({ code: 'RateLimited', details: { retryAfterMs: 7_000 } });
    expect(retryAfterOf(e)).toBe(7_000);
    const date = new Date(Date.now() + 30_000).toUTCString();
    const dated = retryAfterOf(await pushError(answer(429, '', date)));
    expect(dated).toBeGreaterThan(25_000);
    expect(dated).toBeLessThanOrEqual(30_000);
  });

  it('prefers the body`s milliseconds, and ignores the header on other statuses or when unreadable', async () => {
    const body = JSON.stringify({
      error: { code: 'RateLimited', message: 'slow', details: { retryAfterMs: 1_500 } },
    });
    expect(retryAfterOf(await pushError(answer(429, body, '2')))).toBe(1_500);
    expect(retryAfterOf(await pushError(answer(429, 'x', 'soon')))).toBe(0);
    expect(await pushError(answer(503, 'x', '9'))).toMatchObject({ code: 'Internal', details: undefined });
    expect(retryAfterHeaderMs(null)).toBeUndefined();
    expect(retryAfterHeaderMs('120')).toBe(120_000);
    expect(retryAfterHeaderMs('Thu, 01 Jan 1970 00:00:00 GMT', 5)).toBe(0);
  });
});
