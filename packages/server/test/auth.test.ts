import { describe, expect, it } from 'vitest';
import { signToken } from '../src/auth.ts';
import { call, freshStore, newEvent, token } from './helpers.ts';

const appendPath = (store: string, stream: string) => `/v1/stores/${store}/streams/${stream}/events`;

async function head(store: string): Promise<number> {
  const t = await token({ store, role: 'admin' });
  return ((await (await call(`/v1/stores/${store}/events`, { token: t })).json()) as { head: number }).head;
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

describe('authentication (401)', () => {
  it('refuses a request without a token', async () => {
    const store = freshStore();
    const res = await call(appendPath(store, 'a'), { method: 'POST', json: { events: [newEvent()] } });
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('Unauthorized');
    expect(await head(store)).toBe(0);
  });

  it('refuses a tampered token: payload changed, signature kept', async () => {
    const store = freshStore();
    const t = await token({ store, role: 'reader' });
    const [h, , s] = t.split('.');
    const forged = btoa(JSON.stringify({ store, role: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 }))
      .replaceAll('=', '')
      .replaceAll('+', '-')
      .replaceAll('/', '_');
    const res = await call(appendPath(store, 'a'), {
      method: 'POST',
      token: `${h}.${forged}.${s}`,
      json: { events: [newEvent()] },
    });
    expect(res.status).toBe(401);
    expect(await head(store)).toBe(0);
  });

  it('refuses a token signed with another secret, an expired token, garbage and alg none', async () => {
    const store = freshStore();
    const exp = Math.floor(Date.now() / 1000);
    const bad = [
      await token({ store }, 'another-secret'),
      await signToken({ store, role: 'writer', exp: exp - 10 }, 'test-secret'),
      'not.a.jwt',
      'garbage',
      `${btoa(JSON.stringify({ alg: 'none' }))}.${btoa(JSON.stringify({ store, role: 'writer', exp: exp + 100 }))}.`,
    ];
    for (const t of bad) {
      const res = await call(`/v1/stores/${store}/events`, { token: t });
      expect(res.status, t).toBe(401);
    }
  });
});

describe('authorisation (403)', () => {
  it('refuses a token for another store, on every route, and writes nothing', async () => {
    const store = freshStore();
    const other = freshStore();
    const t = await token({ store: other, role: 'admin' });
    const routes: Array<[string, RequestInit & { json?: unknown }]> = [
      [appendPath(store, 'a'), { method: 'POST', json: { events: [newEvent()] } }],
      [appendPath(store, 'a'), {}],
      [`/v1/stores/${store}/events`, {}],
      [`/v1/stores/${store}/sync/pull`, {}],
      [
        `/v1/stores/${store}/sync/push`,
        {
          method: 'POST',
          json: { commits: [{ commitId: crypto.randomUUID(), stream: 'a', events: [newEvent()] }] },
        },
      ],
      [`/v1/stores/${store}/ws`, { headers: { Upgrade: 'websocket' } }],
    ];
    for (const [path, init] of routes) {
      const res = await call(path, { ...init, token: t });
      expect(res.status, path).toBe(403);
      expect(await errorCode(res)).toBe('Forbidden');
    }
    expect(await head(store)).toBe(0);
  });

  it('readers can read but cannot append or push', async () => {
    const store = freshStore();
    const reader = await token({ store, role: 'reader' });
    const append = await call(appendPath(store, 'a'), {
      method: 'POST',
      token: reader,
      json: { events: [newEvent()] },
    });
    expect(append.status).toBe(403);
    const push = await call(`/v1/stores/${store}/sync/push`, {
      method: 'POST',
      token: reader,
      json: { commits: [{ commitId: crypto.randomUUID(), stream: 'a', events: [newEvent()] }] },
    });
    expect(push.status).toBe(403);
    expect((await call(`/v1/stores/${store}/events`, { token: reader })).status).toBe(200);
    expect(await head(store)).toBe(0);
  });

  it('stream prefixes bound writes and stream reads, and filter read-all and pull', async () => {
    const store = freshStore();
    const admin = await token({ store, role: 'admin' });
    for (const stream of ['acc-1', 'ord-1', 'acc-2', 'usr-1'])
      expect(
        (
          await call(appendPath(store, stream), {
            method: 'POST',
            token: admin,
            json: { events: [newEvent()] },
          })
        ).status,
      ).toBe(200);

    const limited = await token({ store, role: 'writer', streams: ['acc-', 'ord-'] });
    expect(
      (
        await call(appendPath(store, 'usr-1'), {
          method: 'POST',
          token: limited,
          json: { events: [newEvent()] },
        })
      ).status,
    ).toBe(403);
    expect((await call(appendPath(store, 'usr-1'), { token: limited })).status).toBe(403);
    expect((await call(appendPath(store, 'acc-1'), { token: limited })).status).toBe(200);
    expect(
      (
        await call(appendPath(store, 'acc-3'), {
          method: 'POST',
          token: limited,
          json: { events: [newEvent()] },
        })
      ).status,
    ).toBe(200);

    for (const route of ['events', 'sync/pull']) {
      const page = (await (await call(`/v1/stores/${store}/${route}`, { token: limited })).json()) as {
        events: Array<{ stream: string }>;
        head: number;
      };
      expect(page.events.map((e) => e.stream)).toEqual(['acc-1', 'ord-1', 'acc-2', 'acc-3']);
      expect(page.head).toBe(5);
      const narrowed = (await (
        await call(`/v1/stores/${store}/${route}?streamPrefix=usr`, { token: limited })
      ).json()) as {
        events: unknown[];
      };
      expect(narrowed.events).toEqual([]);
    }

    const push = (await (
      await call(`/v1/stores/${store}/sync/push`, {
        method: 'POST',
        token: limited,
        json: {
          commits: [
            { commitId: crypto.randomUUID(), stream: 'usr-2', events: [newEvent()] },
            { commitId: crypto.randomUUID(), stream: 'ord-2', events: [newEvent()] },
          ],
        },
      })
    ).json()) as { results: Array<{ status: string; error?: { code: string } }> };
    expect(push.results.map((r) => r.status)).toEqual(['rejected', 'committed']);
    expect(push.results[0]?.error?.code).toBe('Forbidden');
  });

  it('the server stamps the author from the token, never from the client', async () => {
    const store = freshStore();
    const t = await token({ store, sub: 'alice' });
    const sent = {
      ...newEvent(),
      position: 99,
      recordedAt: '1999-01-01T00:00:00Z',
      version: 42,
      stream: 'other',
    };
    expect(
      (await call(appendPath(store, 'a'), { method: 'POST', token: t, json: { events: [sent] } })).status,
    ).toBe(200);
    const page = (await (await call(appendPath(store, 'a'), { token: t })).json()) as {
      events: Array<{
        metadata: Record<string, unknown>;
        position: number;
        version: number;
        recordedAt: string;
        stream: string;
      }>;
    };
    const [e] = page.events;
    expect(e?.metadata.$author).toBe('alice');
    expect(e?.position).toBe(1);
    expect(e?.version).toBe(1);
    expect(e?.stream).toBe('a');
    expect(e?.recordedAt).not.toBe('1999-01-01T00:00:00Z');
  });
});
