import { env } from 'cloudflare:workers';
import { defaultLimits } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { BASE, freshStore, newEvent, token } from './helpers.ts';

// An app with tiny per-store limits that refill so slowly (one token per 1,000 s) that no
// token comes back while a test runs: what is admitted is exactly the burst.
const app = createApp(defaultLimits, {
  admission: { requestsPerSecond: 0.001, requestBurst: 12, writeBytesPerSecond: 1, writeBurstBytes: 40_000 },
});

async function send(path: string, t: string, json?: unknown): Promise<Response> {
  const headers = new Headers({ authorization: `Bearer ${t}` });
  const init: RequestInit = { headers };
  if (json !== undefined) {
    const body = JSON.stringify(json);
    headers.set('content-type', 'application/json');
    headers.set('content-length', String(new TextEncoder().encode(body).byteLength));
    init.method = 'POST';
    init.body = body;
  }
  return app.fetch(new Request(`${BASE}${path}`, init), env);
}

const push = (store: string, t: string, n: number) =>
  send(`/v1/stores/${store}/sync/push`, t, {
    commits: Array.from({ length: n }, (_, i) => ({
      commitId: crypto.randomUUID(),
      stream: `backlog-${i}`,
      events: [newEvent('Noted', { text: 'x'.repeat(200) })],
    })),
  });

describe('admission: abuse is slowed cleanly, other stores are served, nothing acknowledged is lost', () => {
  it('a flood of requests gets 429 RateLimited with Retry-After beyond the burst; another store is served', async () => {
    const abuser = freshStore('flood');
    const other = freshStore('calm');
    const [ta, tb] = await Promise.all([token({ store: abuser }), token({ store: other })]);
    const flood = Array.from({ length: 30 }, () => send(`/v1/stores/${abuser}/events?limit=1`, ta));
    const calm = Array.from({ length: 10 }, () => send(`/v1/stores/${other}/events?limit=1`, tb));
    const [a, b] = await Promise.all([Promise.all(flood), Promise.all(calm)]);
    expect(b.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(a.filter((r) => r.status === 200)).toHaveLength(12);
    const refused = a.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(18);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const body = (await r.json()) as {
        error: { code: string; message: string; details: { retryAfterMs: number } };
      };
      expect(body.error.code).toBe('RateLimited');
      expect(body.error.message).toContain(abuser);
      expect(body.error.details.retryAfterMs).toBeGreaterThan(0);
    }
  });

  it('a huge backlog pushed at once: refused pushes store nothing, admitted ones are all in the log', async () => {
    const abuser = freshStore('backlog');
    const other = freshStore('calm');
    const [ta, tb] = await Promise.all([token({ store: abuser }), token({ store: other })]);
    // Each push is ~35 KB: the 40 KB write burst admits one, the rest are refused at the door.
    const pushes = await Promise.all(Array.from({ length: 6 }, () => push(abuser, ta, 100)));
    const calm = await push(other, tb, 5);
    expect(calm.status).toBe(200);
    const admitted = pushes.filter((r) => r.status === 200);
    const refused = pushes.filter((r) => r.status === 429);
    expect(admitted).toHaveLength(1);
    expect(refused).toHaveLength(5);
    const acked = new Set<number>();
    for (const r of admitted) {
      const { results } = (await r.json()) as { results: Array<{ status: string; positions: number[] }> };
      for (const c of results) {
        expect(c.status).toBe('committed');
        for (const p of c.positions) acked.add(p);
      }
    }
    // Read the log through the normal app (no admission limits): exactly the acknowledged events.
    const { exports } = await import('cloudflare:workers');
    const res = await exports.default.fetch(
      new Request(`${BASE}/v1/stores/${abuser}/events?limit=5000`, {
        headers: { authorization: `Bearer ${ta}` },
      }),
    );
    const log = (await res.json()) as { events: Array<{ position: number }>; head: number };
    expect(log.head).toBe(100);
    expect(new Set(log.events.map((e) => e.position))).toEqual(acked);
  });
});

describe('admission charges a store only for requests with a good token for it', () => {
  it('requests without a token, with a bad one or with one for another store leave its buckets full', async () => {
    const store = freshStore('victim');
    const [good, wrongSecret, otherStore] = await Promise.all([
      token({ store }),
      token({ store }, 'not-the-secret'),
      token({ store: freshStore('other') }),
    ]);
    const expired = await token({ store, exp: Math.floor(Date.now() / 1000) - 1 });
    const path = `/v1/stores/${store}/events?limit=1`;
    const strangers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const bad = [undefined, wrongSecret, otherStore, expired][i % 4];
        const headers = bad ? { authorization: `Bearer ${bad}` } : undefined;
        return app.fetch(new Request(`${BASE}${path}`, headers ? { headers } : {}), env);
      }),
    );
    expect(new Set(strangers.map((r) => r.status))).toEqual(new Set([401, 403]));
    const own = [];
    for (let i = 0; i < 13; i++) own.push((await send(path, good)).status);
    expect(own).toEqual([...Array(12).fill(200), 429]);
    await Promise.all(strangers.map((r) => r.body?.cancel()));
  });
});

describe('admission and CORS', () => {
  it('answers preflights without counting them, and a 429 carries the CORS grant and exposes Retry-After', async () => {
    const store = freshStore('corsrate');
    const t = await token({ store });
    const origin = 'http://localhost:5173';
    // More preflights than the burst: none is refused.
    for (let i = 0; i < 20; i++) {
      const pre = await app.fetch(
        new Request(`${BASE}/v1/stores/${store}/events`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'GET',
            'access-control-request-headers': 'authorization',
          },
        }),
        env,
      );
      expect(pre.status).toBe(204);
    }
    const answers: Response[] = [];
    for (let i = 0; i < 14; i++)
      answers.push(
        await app.fetch(
          new Request(`${BASE}/v1/stores/${store}/events?limit=1`, {
            headers: { origin, authorization: `Bearer ${t}` },
          }),
          env,
        ),
      );
    expect(answers.filter((r) => r.status === 200)).toHaveLength(12);
    const refused = answers.filter((r) => r.status === 429);
    expect(refused).toHaveLength(2);
    for (const r of refused) {
      expect(r.headers.get('access-control-allow-origin')).toBe(origin);
      expect(r.headers.get('access-control-expose-headers')).toContain('Retry-After');
    }
    await Promise.all(answers.map((r) => r.body?.cancel()));
  });
});
