import { env } from 'cloudflare:workers';
import { defaultLimits } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { BASE, freshStore, newEvent, token } from './helpers.ts';

// An app with tiny per-store limits that refill so slowly (one token per 1,000 s) that no
// token comes back while a test runs: what is admitted is exactly the burst.
// Anonymous requests (no good token) have a burst of 5 per client address.
const app = createApp(defaultLimits, {
  admission: {
    requestsPerSecond: 0.001,
    requestBurst: 12,
    writeBytesPerSecond: 1,
    writeBurstBytes: 40_000,
    anonymousRequestsPerSecond: 0.001,
    anonymousRequestBurst: 5,
  },
});

/** A client address of its own for each test, so tests never share an anonymous bucket. */
let addresses = 0;
const freshAddress = () => `10.0.${Math.floor(++addresses / 250)}.${(addresses % 250) + 1}`;

async function send(path: string, t: string, json?: unknown, address = freshAddress()): Promise<Response> {
  const headers = new Headers({ authorization: `Bearer ${t}`, 'cf-connecting-ip': address });
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
    // Each from an address of its own, within its anonymous burst: they are answered 401 / 403.
    const strangers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const bad = [undefined, wrongSecret, otherStore, expired][i % 4];
        const headers: Record<string, string> = { 'cf-connecting-ip': `2001:db8:${i}::1` };
        if (bad) headers.authorization = `Bearer ${bad}`;
        return app.fetch(new Request(`${BASE}${path}`, { headers }), env);
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

describe('admission: requests no store pays for take from an anonymous bucket of their address', () => {
  const anonymous = (path: string, address: string, bearer?: string) => {
    const headers: Record<string, string> = { 'cf-connecting-ip': address };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    return app.fetch(new Request(`${BASE}${path}`, { headers }), env);
  };

  it("a token-less or forged-token flood from one address gets 429; the tenant's requests and other addresses pass", async () => {
    const store = freshStore('anon');
    const [good, forged] = await Promise.all([token({ store }), token({ store }, 'not-the-secret')]);
    const flooder = freshAddress();
    const path = `/v1/stores/${store}/events?limit=1`;
    // The tenant's token is known to the isolate before the flood (its first request).
    expect((await send(path, good, undefined, flooder)).status).toBe(200);
    const flood = await Promise.all(
      Array.from({ length: 20 }, (_, i) => anonymous(path, flooder, i % 2 ? forged : undefined)),
    );
    const statuses = flood.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(15);
    const refused = flood.find((r) => r.status === 429);
    expect(Number(refused?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await refused?.json()) as { error: { code: string; details: { scope: string } } };
    expect(body.error).toMatchObject({ code: 'RateLimited', details: { scope: 'anonymous requests' } });
    // The tenant, from the flooding address and from another one, uses its own buckets.
    const own = [];
    for (let i = 0; i < 10; i++)
      own.push((await send(path, good, undefined, i % 2 ? flooder : freshAddress())).status);
    expect(own).toEqual(Array(10).fill(200));
    // A token the isolate has not verified yet is not checked from an address out of requests
    // (so a forged-token flood costs no signature check each); from another address it is.
    const fresh = await token({ store, sub: 'new' });
    expect((await send(path, fresh, undefined, flooder)).status).toBe(429);
    expect((await send(path, fresh)).status).toBe(200);
    // Another address without a token is answered (401), not refused for the flood.
    expect((await anonymous(path, '2001:db8:ffff:1::7')).status).toBe(401);
    // Addresses of one IPv6 /64 are one client.
    const sameHost = await Promise.all(
      Array.from({ length: 6 }, (_, i) => anonymous(path, `2001:db8:abcd:1::${i + 1}`)),
    );
    expect(sameHost.map((r) => r.status).sort()).toEqual([401, 401, 401, 401, 401, 429]);
    await Promise.all([...flood, ...sameHost].map((r) => (r.bodyUsed ? undefined : r.body?.cancel())));
  });

  it('WebSocket upgrades without a token beyond the anonymous burst get 429; another address still connects', async () => {
    const store = freshStore('anonws');
    const address = freshAddress();
    const upgrade = (path: string, from: string) =>
      app.fetch(
        new Request(`${BASE}${path}`, { headers: { upgrade: 'websocket', 'cf-connecting-ip': from } }),
        env,
      );
    const answers: Response[] = [];
    for (let i = 0; i < 8; i++)
      answers.push(
        await upgrade(i % 2 ? `/v1/stores/${store}/ws` : `/v1/stores/${store}/streams/s-${i}/ws`, address),
      );
    expect(answers.map((r) => r.status)).toEqual([101, 101, 101, 101, 101, 429, 429, 429]);
    expect(answers[5]?.headers.get('retry-after')).not.toBeNull();
    const other = await upgrade(`/v1/stores/${store}/ws`, freshAddress());
    expect(other.status).toBe(101);
    for (const r of [...answers, other]) {
      if (!r.webSocket) continue;
      r.webSocket.accept();
      r.webSocket.close(1000, 'done');
    }
  });

  it('a token too long to be one is refused unread, and charged to its address', async () => {
    const store = freshStore('long');
    const address = freshAddress();
    const long = `${'a'.repeat(20_000)}.${'b'.repeat(20_000)}.c`;
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await anonymous(`/v1/stores/${store}/events`, address, long));
    expect(answers.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 429]);
    const body = (await answers[0]?.json()) as { error: { message: string } };
    expect(body.error.message).toBe('malformed token');
    await Promise.all(answers.map((r) => (r.bodyUsed ? undefined : r.body?.cancel())));
  });

  it("a valid token sent to another store's paths is charged to its own store", async () => {
    const [mine, theirs] = [freshStore('own'), freshStore('target')];
    const [tMine, tTheirs] = await Promise.all([token({ store: mine }), token({ store: theirs })]);
    const address = freshAddress();
    const wrongPath = [];
    for (let i = 0; i < 12; i++)
      wrongPath.push((await send(`/v1/stores/${theirs}/events?limit=1`, tMine, undefined, address)).status);
    expect(wrongPath).toEqual(Array(12).fill(403));
    expect((await send(`/v1/stores/${mine}/events?limit=1`, tMine)).status).toBe(429);
    expect((await send(`/v1/stores/${theirs}/events?limit=1`, tTheirs)).status).toBe(200);
    // Nor did it take from the address's anonymous bucket.
    expect((await anonymous(`/v1/stores/${theirs}/events`, address)).status).toBe(401);
  });
});
