import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { signToken } from '../src/auth.ts';
import { BASE, call, freshStore, newEvent, SECRET, token } from './helpers.ts';

// Access control, route by route: every HTTP route and both WebSocket routes, against every
// kind of bad credential, the wrong store, the reader role and stream-prefix limits. After
// each refusal the store is unchanged.

interface Route {
  name: string;
  path: string;
  init?: RequestInit & { json?: unknown };
  write?: true;
  /** Names one stream (bounded by a token's prefixes with 403). */
  stream?: true;
  /** Folds every stream (403 for a prefix-limited token). */
  projection?: true;
  /** Operators only (403 for readers and writers). */
  admin?: true;
  ws?: true;
}

function routes(store: string, stream: string): Route[] {
  const events = `/v1/stores/${store}/streams/${stream}/events`;
  return [
    {
      name: 'append',
      path: events,
      init: { method: 'POST', json: { events: [newEvent()] } },
      write: true,
      stream: true,
    },
    { name: 'read stream', path: events, stream: true },
    { name: 'read all', path: `/v1/stores/${store}/events` },
    { name: 'pull', path: `/v1/stores/${store}/sync/pull?after=0` },
    {
      name: 'push',
      path: `/v1/stores/${store}/sync/push`,
      init: {
        method: 'POST',
        json: { commits: [{ commitId: crypto.randomUUID(), stream, events: [newEvent()] }] },
      },
      write: true,
    },
    { name: 'projection row', path: `/v1/stores/${store}/projections/totals/tea`, projection: true },
    { name: 'projection list', path: `/v1/stores/${store}/projections/totals?prefix=t`, projection: true },
    { name: 'projection status', path: `/v1/stores/${store}/projections/totals/status`, projection: true },
    {
      name: 'projection parked',
      path: `/v1/stores/${store}/projections/totals/parked`,
      projection: true,
      admin: true,
    },
    {
      name: 'store socket',
      path: `/v1/stores/${store}/ws`,
      init: { headers: { Upgrade: 'websocket' } },
      ws: true,
    },
    {
      name: 'stream socket',
      path: `/v1/stores/${store}/streams/${stream}/ws`,
      init: { headers: { Upgrade: 'websocket' } },
      ws: true,
      stream: true,
    },
  ];
}

async function seed(store: string): Promise<string> {
  const admin = await token({ store, role: 'admin' });
  for (const stream of ['acc-1', 'ord-1'])
    expect(
      (
        await call(`/v1/stores/${store}/streams/${stream}/events`, {
          method: 'POST',
          token: admin,
          json: { events: [newEvent('Added', { sku: 'tea', qty: 1 })] },
        })
      ).status,
    ).toBe(200);
  return admin;
}

async function head(store: string, admin: string): Promise<number> {
  return (
    (await (await call(`/v1/stores/${store}/events?limit=1`, { token: admin })).json()) as { head: number }
  ).head;
}

async function send(route: Route, bearer: string | undefined): Promise<Response> {
  const res = await call(route.path, { ...route.init, ...(bearer === undefined ? {} : { token: bearer }) });
  res.webSocket?.accept();
  res.webSocket?.close(1000);
  return res;
}

async function codeOf(res: Response): Promise<string | undefined> {
  if (res.status === 101) return undefined;
  return ((await res.json()) as { error?: { code: string } }).error?.code;
}

const b64 = (v: unknown) =>
  btoa(JSON.stringify(v)).replaceAll('=', '').replaceAll('+', '-').replaceAll('/', '_');

async function badTokens(store: string): Promise<Record<string, string | undefined>> {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const reader = await token({ store, role: 'reader' });
  const [h, , s] = reader.split('.');
  return {
    'no token': undefined,
    garbage: 'garbage',
    'three dots of nothing': '..',
    'payload changed, signature kept': `${h}.${b64({ store, role: 'admin', exp })}.${s}`,
    'signature cut short': reader.slice(0, -5),
    'signed with another secret': await token({ store, role: 'admin' }, 'another-secret'),
    expired: await signToken({ store, role: 'admin', exp: exp - 7200 }, SECRET),
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ store, role: 'admin', exp })}.`,
    'alg HS512 header': `${b64({ alg: 'HS512', typ: 'JWT' })}.${reader.split('.')[1]}.${s}`,
    'no exp claim': await signToken({ store, role: 'admin' } as never, SECRET),
  };
}

describe('access: every route refuses bad credentials with 401 and changes nothing', () => {
  it('missing, garbage, tampered, wrongly signed, expired, alg-none tokens', async () => {
    const store = freshStore('acl');
    const admin = await seed(store);
    const bad = await badTokens(store);
    for (const route of routes(store, 'acc-1')) {
      for (const [kind, t] of Object.entries(bad)) {
        // A socket may open without a header and authenticate in its first message (below).
        if (route.ws && t === undefined) continue;
        const res = await send(route, t);
        expect(res.status, `${route.name} with ${kind}`).toBe(401);
        expect(await codeOf(res)).toBe('Unauthorized');
      }
    }
    expect(await head(store, admin)).toBe(2);
  });

  it('a token for another store, whatever its role and prefixes, gets 403 everywhere', async () => {
    const store = freshStore('acl');
    const other = freshStore('acl-other');
    const admin = await seed(store);
    const foreign = [
      await token({ store: other, role: 'admin' }),
      await token({ store: other, role: 'reader' }),
      await token({ store: other, role: 'writer', streams: ['acc-'] }),
    ];
    for (const route of routes(store, 'acc-1')) {
      for (const t of foreign) {
        const res = await send(route, t);
        expect(res.status, route.name).toBe(403);
        expect(await codeOf(res)).toBe('Forbidden');
      }
    }
    expect(await head(store, admin)).toBe(2);
  });

  it('a token for another store is refused as a WebSocket auth message too', async () => {
    const store = freshStore('acl');
    const foreign = await token({ store: freshStore('acl-other'), role: 'admin' });
    for (const path of [`/v1/stores/${store}/ws`, `/v1/stores/${store}/streams/acc-1/ws`]) {
      const res = await exports.default.fetch(
        new Request(`${BASE}${path}`, { headers: { Upgrade: 'websocket' } }),
      );
      const ws = res.webSocket!;
      ws.accept();
      const messages: Array<{ type: string; error?: { code: string } }> = [];
      ws.addEventListener('message', (e) => messages.push(JSON.parse(String(e.data))));
      ws.send(JSON.stringify({ type: 'auth', token: foreign }));
      ws.send(JSON.stringify({ type: 'subscribe', id: 's' }));
      const start = Date.now();
      while (!messages.some((m) => m.type === 'error') && Date.now() - start < 10_000)
        await new Promise((r) => setTimeout(r, 5));
      expect(messages.find((m) => m.type === 'error')?.error?.code, path).toBe('Forbidden');
      expect(messages.some((m) => m.type === 'events' || m.type === 'ready')).toBe(false);
      ws.close(1000);
    }
  });
});

async function socketErrors(
  path: string,
  first: unknown[],
): Promise<Array<{ type: string; error?: { code: string } }>> {
  const res = await exports.default.fetch(
    new Request(`${BASE}${path}`, { headers: { Upgrade: 'websocket' } }),
  );
  const ws = res.webSocket!;
  ws.accept();
  const messages: Array<{ type: string; error?: { code: string } }> = [];
  ws.addEventListener('message', (e) => messages.push(JSON.parse(String(e.data))));
  for (const m of first) ws.send(JSON.stringify(m));
  const start = Date.now();
  while (!messages.some((m) => m.type === 'error') && Date.now() - start < 10_000)
    await new Promise((r) => setTimeout(r, 5));
  ws.close(1000);
  return messages;
}

describe('access: sockets authenticated by their first message', () => {
  it('serve nothing before a valid auth message, and refuse every bad token in it', async () => {
    const store = freshStore('acl');
    await seed(store);
    const bad = await badTokens(store);
    for (const path of [`/v1/stores/${store}/ws`, `/v1/stores/${store}/streams/acc-1/ws`]) {
      const unauthenticated = await socketErrors(path, [{ type: 'subscribe', id: 's' }]);
      expect(unauthenticated.find((m) => m.type === 'error')?.error?.code, path).toBe('Unauthorized');
      expect(unauthenticated.some((m) => m.type === 'events')).toBe(false);
      for (const [kind, t] of Object.entries(bad)) {
        if (t === undefined || t === '..') continue;
        const messages = await socketErrors(path, [
          { type: 'auth', token: t },
          { type: 'subscribe', id: 's' },
        ]);
        expect(messages.find((m) => m.type === 'error')?.error?.code, `${path} with ${kind}`).toBe(
          'Unauthorized',
        );
        expect(messages.some((m) => m.type === 'events' || m.type === 'ready')).toBe(false);
      }
    }
  });
});

describe('access: roles and stream prefixes', () => {
  it('a reader reads every route and writes on none', async () => {
    const store = freshStore('acl');
    const admin = await seed(store);
    const reader = await token({ store, role: 'reader' });
    for (const route of routes(store, 'acc-1')) {
      const res = await send(route, reader);
      if (route.write || route.admin) {
        expect(res.status, route.name).toBe(403);
        expect(await codeOf(res)).toBe('Forbidden');
      } else {
        expect([101, 200], route.name).toContain(res.status);
        await res.body?.cancel();
      }
    }
    expect(await head(store, admin)).toBe(2);
  });

  it('a prefix-limited token: 403 on streams and projections outside, filtered read-all and pull', async () => {
    const store = freshStore('acl');
    const admin = await seed(store);
    const limited = await token({ store, role: 'writer', streams: ['acc-'] });
    for (const route of routes(store, 'ord-1')) {
      const res = await send(route, limited);
      if (route.stream || route.projection) {
        expect(res.status, route.name).toBe(403);
        expect(await codeOf(res)).toBe('Forbidden');
      } else if (route.name === 'push') {
        const { results } = (await res.json()) as {
          results: Array<{ status: string; error: { code: string } }>;
        };
        expect(results.map((r) => [r.status, r.error.code])).toEqual([['rejected', 'Forbidden']]);
      } else if (route.ws) {
        expect(res.status, route.name).toBe(101);
      } else {
        expect(res.status, route.name).toBe(200);
        const page = (await res.json()) as { events: Array<{ stream: string }>; head: number };
        expect(
          page.events.map((e) => e.stream),
          route.name,
        ).toEqual(['acc-1']);
        expect(page.head).toBe(2);
      }
    }
    // Inside its prefixes it works, projections excepted (they fold every stream).
    for (const route of routes(store, 'acc-9')) {
      const res = await send(route, limited);
      // (The append before it created acc-9, so reading it answers 200.)
      expect(res.status, route.name).toBe(route.projection ? 403 : route.ws ? 101 : 200);
      await res.body?.cancel();
    }
    expect(await head(store, admin)).toBe(4);
  });

  it('a prefix-limited token never sees other streams over the store socket, even asking for them', async () => {
    const store = freshStore('acl');
    const admin = await seed(store);
    const limited = await token({ store, role: 'reader', streams: ['acc-'] });
    const res = await exports.default.fetch(
      new Request(`${BASE}/v1/stores/${store}/ws`, {
        headers: { Upgrade: 'websocket', authorization: `Bearer ${limited}` },
      }),
    );
    const ws = res.webSocket!;
    ws.accept();
    const messages: Array<{
      type: string;
      subscription?: string;
      events?: Array<{ stream: string }>;
      error?: { code: string };
    }> = [];
    ws.addEventListener('message', (e) => messages.push(JSON.parse(String(e.data))));
    ws.send(JSON.stringify({ type: 'subscribe', id: 'all' }));
    ws.send(JSON.stringify({ type: 'subscribe', id: 'ord', filter: { streamPrefix: 'ord-' } }));
    ws.send(JSON.stringify({ type: 'subscribe', id: 'named', streams: ['ord-1'] }));
    const until = async (check: () => boolean) => {
      const start = Date.now();
      while (!check() && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 5));
    };
    await until(
      () =>
        messages.filter((m) => m.type === 'caught-up').length >= 2 &&
        messages.some((m) => m.type === 'error'),
    );
    await call(`/v1/stores/${store}/streams/ord-2/events`, {
      method: 'POST',
      token: admin,
      json: { events: [newEvent()] },
    });
    await call(`/v1/stores/${store}/streams/acc-2/events`, {
      method: 'POST',
      token: admin,
      json: { events: [newEvent()] },
    });
    await until(() =>
      messages.some((m) => m.type === 'events' && m.events?.some((e) => e.stream === 'acc-2')),
    );
    const seen = messages.flatMap((m) => (m.type === 'events' ? (m.events ?? []) : [])).map((e) => e.stream);
    expect(seen).toEqual(['acc-1', 'acc-2']);
    expect(messages.find((m) => m.type === 'error')).toMatchObject({
      subscription: 'named',
      error: { code: 'Forbidden' },
    });
    ws.close(1000);
  });
});
