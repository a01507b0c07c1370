import { env } from 'cloudflare:workers';
import { defaultLimits } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { BASE, call, freshStore, newEvent, token } from './helpers.ts';

interface ErrorBody {
  error: {
    code: string;
    message: string;
    details?: { issues?: Array<{ path: string }>; [k: string]: unknown };
  };
}

async function setup() {
  const store = freshStore();
  const t = await token({ store, role: 'admin' });
  const post = (body: BodyInit | null, stream = 'acc-1', headers: Record<string, string> = {}) =>
    call(`/v1/stores/${store}/streams/${stream}/events`, {
      method: 'POST',
      token: t,
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });
  const head = async () =>
    ((await (await call(`/v1/stores/${store}/events`, { token: t })).json()) as { head: number }).head;
  return { store, t, post, head };
}

describe('bad input is refused with a clear error and writes nothing', () => {
  it('malformed JSON is a 400 Validation', async () => {
    const { post, head } = await setup();
    const res = await post('{"events": [');
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('Validation');
    expect(body.error.message).toMatch(/malformed JSON/);
    expect(await head()).toBe(0);
  });

  it('a schema violation is a 400 naming the field', async () => {
    const { post, head } = await setup();
    const cases: Array<[unknown, string]> = [
      [{ events: [{ ...newEvent(), id: 'nope' }] }, 'events.0.id'],
      [{ events: [newEvent(), { ...newEvent(), type: '$system' }] }, 'events.1.type'],
      [{ events: [newEvent(), { ...newEvent(), metadata: { $author: 'eve' } }] }, 'events.1.metadata'],
      [{ events: [{ id: crypto.randomUUID(), type: 'T' }] }, 'events.0.data'],
      [{ events: [newEvent()], expectedVersion: -1 }, 'expectedVersion'],
      [{ events: [newEvent()], expectedVersion: 'sometimes' }, 'expectedVersion'],
      [{ events: 'nope' }, 'events'],
      [{ events: [{ ...newEvent(), schemaVersion: 0 }] }, 'events.0.schemaVersion'],
    ];
    for (const [payload, field] of cases) {
      const res = await post(JSON.stringify(payload));
      expect(res.status, field).toBe(400);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.code).toBe('Validation');
      expect(body.error.details?.issues?.map((i) => i.path)).toContain(field);
      expect(body.error.message).toContain(field);
    }
    expect(await head()).toBe(0);
  });

  it('an invalid stream or store name in the path is a 400', async () => {
    const { t, post } = await setup();
    expect((await post(JSON.stringify({ events: [newEvent()] }), '%24all')).status).toBe(400);
    expect((await call('/v1/stores/Bad%20Store/events', { token: t })).status).toBe(400);
  });

  it('an oversize event is a 413, refused whole before any other validation', async () => {
    const { post, head } = await setup();
    const big = { id: 'not-even-a-uuid', type: '$bad', data: 'x'.repeat(defaultLimits.maxEventBytes) };
    const res = await post(JSON.stringify({ events: [newEvent(), big] }));
    expect(res.status).toBe(413);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('PayloadTooLarge');
    expect(body.error.details).toMatchObject({ what: 'events.1', limit: defaultLimits.maxEventBytes });
    expect(await head()).toBe(0);
  });

  it('counts UTF-8 bytes: an event just under the limit in ASCII but over it in UTF-8 is refused', async () => {
    const { post, head } = await setup();
    const event = { ...newEvent(), data: '€'.repeat(Math.ceil(defaultLimits.maxEventBytes / 3)) };
    expect((await post(JSON.stringify({ events: [event] }))).status).toBe(413);
    expect(await head()).toBe(0);
  });

  it('too many events in one append, or too large a body, is a 413', async () => {
    const { post, head } = await setup();
    const many = Array.from({ length: defaultLimits.maxEventsPerAppend + 1 }, () => newEvent());
    expect((await post(JSON.stringify({ events: many }))).status).toBe(413);
    const huge = Array.from({ length: 80 }, () => ({ ...newEvent(), data: 'x'.repeat(60_000) }));
    const res = await post(JSON.stringify({ events: huge }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorBody).error.details).toMatchObject({ what: 'request body' });
    expect(await head()).toBe(0);
  });

  it('measures the body it reads, whatever Content-Length says', async () => {
    // With chunked encoding workerd hands the Worker a Content-Length too, which need not be
    // the body's length: the limits hold on what was read.
    const { post, head } = await setup();
    const lying = { 'content-length': '10' };
    const big = { ...newEvent(), data: 'x'.repeat(defaultLimits.maxEventBytes) };
    const oversize = await post(JSON.stringify({ events: [big] }), 'acc-1', lying);
    expect(oversize.status).toBe(413);
    const huge = Array.from({ length: 80 }, () => ({ ...newEvent(), data: 'x'.repeat(60_000) }));
    const body = await post(JSON.stringify({ events: huge }), 'acc-1', lying);
    expect(body.status).toBe(413);
    expect(((await body.json()) as ErrorBody).error.details).toMatchObject({ what: 'request body' });
    expect(await head()).toBe(0);
  });

  it('a duplicate id inside one append is a 400', async () => {
    const { post, head } = await setup();
    const e = newEvent();
    expect((await post(JSON.stringify({ events: [e, e] }))).status).toBe(400);
    expect(await head()).toBe(0);
  });

  it('page sizes over the maximum are a 400', async () => {
    const { store, t } = await setup();
    const res = await call(`/v1/stores/${store}/events?limit=${defaultLimits.maxPageSize + 1}`, { token: t });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.details?.issues?.[0]?.path).toBe('limit');
  });

  it("an app's own smaller maximum page size is kept, in the answers and the OpenAPI document", async () => {
    const { store, t, post } = await setup();
    expect(
      (await post(JSON.stringify({ events: Array.from({ length: 12 }, () => newEvent()) }))).status,
    ).toBe(200);
    const app = createApp({ ...defaultLimits, defaultPageSize: 4, maxPageSize: 10 }, { admission: false });
    const get = (path: string) =>
      app.fetch(new Request(`${BASE}${path}`, { headers: { authorization: `Bearer ${t}` } }), env);
    for (const path of [`/v1/stores/${store}/events`, `/v1/stores/${store}/streams/acc-1/events`]) {
      const over = await get(`${path}?limit=11`);
      expect(over.status, path).toBe(400);
      expect(((await over.json()) as ErrorBody).error.details?.issues?.[0]?.path).toBe('limit');
      const most = (await (await get(`${path}?limit=10`)).json()) as { events: unknown[] };
      expect(most.events, path).toHaveLength(10);
      const unset = (await (await get(path)).json()) as { events: unknown[] };
      expect(unset.events, path).toHaveLength(4);
    }
    const doc = (await (await get('/v1/openapi.json')).json()) as {
      paths: Record<string, { get?: { parameters: Array<{ name: string; schema: { maximum?: number } }> } }>;
    };
    for (const path of ['/v1/stores/{store}/events', '/v1/stores/{store}/streams/{stream}/events'])
      expect(doc.paths[path]?.get?.parameters.find((p) => p.name === 'limit')?.schema.maximum, path).toBe(10);
  });

  it('an app whose maximum page size is below the default page size serves at most its maximum', async () => {
    const { store, t, post } = await setup();
    expect(
      (await post(JSON.stringify({ events: Array.from({ length: 12 }, () => newEvent()) }))).status,
    ).toBe(200);
    const app = createApp({ ...defaultLimits, maxPageSize: 10 }, { admission: false });
    const get = (path: string) =>
      app.fetch(new Request(`${BASE}${path}`, { headers: { authorization: `Bearer ${t}` } }), env);
    for (const path of [`/v1/stores/${store}/events`, `/v1/stores/${store}/streams/acc-1/events`]) {
      const unset = (await (await get(path)).json()) as { events: unknown[] };
      expect(unset.events, path).toHaveLength(10);
    }
  });

  it("the OpenAPI document never advertises a page size above what core's query schemas accept", async () => {
    const app = createApp(
      { ...defaultLimits, maxPageSize: defaultLimits.maxPageSize * 2 },
      { admission: false },
    );
    const doc = (await (await app.fetch(new Request(`${BASE}/v1/openapi.json`), env)).json()) as {
      paths: Record<string, { get?: { parameters: Array<{ name: string; schema: { maximum?: number } }> } }>;
    };
    for (const path of ['/v1/stores/{store}/events', '/v1/stores/{store}/streams/{stream}/events'])
      expect(doc.paths[path]?.get?.parameters.find((p) => p.name === 'limit')?.schema.maximum, path).toBe(
        defaultLimits.maxPageSize,
      );
  });

  it('unknown routes answer a 404 in the error shape', async () => {
    const res = await call('/v2/nothing');
    expect(res.status).toBe(404);
    expect(((await res.json()) as ErrorBody).error.code).toBe('NotFound');
  });
});

describe('event data is checked against the configured registry (test/worker.ts: Priced v1..v3)', () => {
  const priced = (data: unknown, schemaVersion?: number) => ({
    id: crypto.randomUUID(),
    type: 'Priced',
    ...(schemaVersion === undefined ? {} : { schemaVersion }),
    data,
  });
  const v3 = { sku: 'tea', price: { amount: 250, currency: 'EUR' }, taxRate: 0.2 };

  it('refuses data its schema version refuses, naming the field, and writes nothing', async () => {
    const { post, head } = await setup();
    const bad = await post(
      JSON.stringify({
        events: [newEvent(), priced({ sku: 'tea', price: { amount: 1, currency: 'EURO' } }, 2)],
      }),
    );
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as ErrorBody;
    expect(body.error.code).toBe('Validation');
    expect(body.error.details?.issues?.map((i) => i.path)).toEqual(['events.1.data.price.currency']);
    expect(await head()).toBe(0);
  });

  it('stores data as sent (no second parse) and lets versions newer than the edge`s pass, as unknown types do', async () => {
    const { store, t, post } = await setup();
    const extra = { ...v3, note: 'kept' };
    const res = await post(JSON.stringify({ events: [priced(extra, 3), priced({ anything: true }, 9)] }));
    expect(res.status).toBe(200);
    const read = (await (await call(`/v1/stores/${store}/streams/acc-1/events`, { token: t })).json()) as {
      events: Array<{ schemaVersion: number; data: unknown }>;
    };
    expect(read.events.map((e) => [e.schemaVersion, e.data])).toEqual([
      [3, extra],
      [9, { anything: true }],
    ]);
  });

  it('an event that names no schema version is written at the current one, not version 1', async () => {
    const { store, t, post } = await setup();
    const old = await post(JSON.stringify({ events: [priced({ sku: 'tea', cents: 250 })] }));
    expect(old.status).toBe(400);
    expect((await post(JSON.stringify({ events: [priced(v3)] }))).status).toBe(200);
    expect((await post(JSON.stringify({ events: [priced({ sku: 'tea', cents: 99 }, 1)] }))).status).toBe(200);
    const read = (await (await call(`/v1/stores/${store}/streams/acc-1/events`, { token: t })).json()) as {
      events: Array<{ schemaVersion: number; data: unknown }>;
    };
    expect(read.events.map((e) => [e.schemaVersion, e.data])).toEqual([
      [3, v3],
      [3, { sku: 'tea', price: { amount: 99, currency: 'EUR' }, taxRate: 0 }],
    ]);
  });

  it('in a push, only the commit with bad data is rejected; types the registry lacks pass', async () => {
    const { store, t, head } = await setup();
    const res = await call(`/v1/stores/${store}/sync/push`, {
      method: 'POST',
      token: t,
      json: {
        commits: [
          { commitId: crypto.randomUUID(), stream: 'p-1', events: [priced({ sku: 'tea', cents: 'x' }, 1)] },
          { commitId: crypto.randomUUID(), stream: 'p-2', events: [priced(v3), newEvent('NotInRegistry')] },
        ],
      },
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as {
      results: Array<{
        status: string;
        error?: { code: string; details?: { issues?: Array<{ path: string }> } };
      }>;
    };
    expect(results.map((r) => r.status)).toEqual(['rejected', 'committed']);
    expect(results[0]?.error?.details?.issues?.[0]?.path).toBe('events.0.data.cents');
    expect(await head()).toBe(2);
  });
});

describe('service routes', () => {
  it('GET /health', async () => {
    const res = await call('/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true });
  });

  it('GET /v1/openapi.json is generated from the core schemas', async () => {
    const res = await call('/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/stores/{store}/streams/{stream}/events',
        '/v1/stores/{store}/sync/push',
        '/v1/stores/{store}/events',
        '/v1/stores/{store}/projections/{name}/{key}',
        '/v1/stores/{store}/projections/{name}/parked',
        '/v1/stores/{store}/streams/{stream}/aggregates/{decider}',
      ]),
    );
    // Every route the app serves is described.
    for (const path of Object.keys(doc.paths))
      expect(path.startsWith('/v1/') || path === '/health').toBe(true);
    expect(
      JSON.stringify(doc.paths['/v1/stores/{store}/streams/{stream}/events']?.post?.requestBody),
    ).toContain('expectedVersion');
    // Global pages name how far they scanned, as a field every answer has.
    type Schema = { required?: string[]; properties?: Record<string, { description?: string }> };
    type Get = { responses: Record<string, { content: Record<string, { schema: Schema }> }> };
    for (const path of ['/v1/stores/{store}/events', '/v1/stores/{store}/sync/pull']) {
      const get = doc.paths[path]?.get as Get | undefined;
      const page = get?.responses['200']?.content['application/json']?.schema;
      expect(page?.required).toEqual(expect.arrayContaining(['events', 'head', 'scannedTo']));
      expect(page?.properties?.scannedTo?.description).toMatch(/after=scannedTo/);
    }
  });
});
