import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { originAllowed } from '../src/cors.ts';
import { BASE, call, freshStore, newEvent, token } from './helpers.ts';

const preflight = (path: string, origin: string) =>
  call(path, {
    method: 'OPTIONS',
    headers: {
      Origin: origin,
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'authorization, content-type',
    },
  });

describe('CORS: browser pages on other origins', () => {
  it('answers a preflight from an allowed origin, allowing Authorization and JSON bodies', async () => {
    const store = freshStore('cors');
    const res = await preflight(`/v1/stores/${store}/streams/a/events`, 'http://localhost:5173');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    expect(allowed).toContain('authorization');
    expect(allowed).toContain('content-type');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('marks real answers, errors included, for the calling origin', async () => {
    const store = freshStore('cors');
    const t = await token({ store });
    const origin = 'http://127.0.0.1:3000';
    const ok = await call(`/v1/stores/${store}/streams/a/events`, {
      method: 'POST',
      token: t,
      json: { events: [newEvent()] },
      headers: { Origin: origin },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
    const refused = await call(`/v1/stores/${store}/events`, { headers: { Origin: origin } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(origin);
  });

  it('gives other origins no CORS grant by default', async () => {
    const store = freshStore('cors');
    const res = await preflight(`/v1/stores/${store}/events`, 'https://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const t = await token({ store });
    const read = await call(`/v1/stores/${store}/events`, {
      token: t,
      headers: { Origin: 'https://evil.example' },
    });
    expect(read.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows exactly the origins EDGELOG_CORS_ORIGINS names, or any with *', async () => {
    const app = createApp();
    const store = freshStore('cors');
    const ask = (origin: string, configured: string) =>
      app.fetch(
        new Request(`${BASE}/v1/stores/${store}/events`, {
          method: 'OPTIONS',
          headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' },
        }),
        { ...env, EDGELOG_CORS_ORIGINS: configured },
      );
    const configured = 'https://app.example.com, https://admin.example.com/';
    const granted = await ask('https://admin.example.com', configured);
    expect(granted.headers.get('access-control-allow-origin')).toBe('https://admin.example.com');
    const local = await ask('http://localhost:5173', configured);
    expect(local.headers.get('access-control-allow-origin')).toBeNull();
    const any = await ask('https://anywhere.example', '*');
    expect(any.headers.get('access-control-allow-origin')).toBe('https://anywhere.example');
  });

  it('says answers vary by Origin, and grants nothing to a request without one', async () => {
    const store = freshStore('cors');
    const plain = await call(`/v1/stores/${store}/events`, { token: await token({ store }) });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('vary')).toContain('Origin');
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('reads the origin list as documented', () => {
    expect(originAllowed('http://localhost:8787', undefined)).toBe(true);
    expect(originAllowed('http://[::1]:8080', '')).toBe(true);
    expect(originAllowed('http://localhost.evil.example', undefined)).toBe(false);
    expect(originAllowed('https://a.example', 'https://a.example,https://b.example')).toBe(true);
    expect(originAllowed('https://c.example', 'https://a.example,https://b.example')).toBe(false);
  });
});

describe('the admin role', () => {
  it('alone may read the parked events of an edge projection', async () => {
    const store = freshStore('admin');
    const path = `/v1/stores/${store}/projections/totals/parked`;
    for (const role of ['reader', 'writer'] as const) {
      const res = await call(path, { token: await token({ store, role }) });
      expect(res.status, role).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('Forbidden');
    }
    const admin = await call(path, { token: await token({ store, role: 'admin' }) });
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ events: [] });
  });

  it('routes every path with the RegExpRouter of hono, not its slower fallback', async () => {
    // A static segment beside a parameter (`/projections/:name/status` and `/:key`) would make
    // hono fall back to its TrieRouter for the whole app: about 5% of an append's CPU.
    const app = createApp();
    await app.fetch(new Request(`${BASE}/health`), env);
    expect(app.router.name).toBe('SmartRouter + RegExpRouter');
  });

  it('may read projection status and rows like everyone', async () => {
    const store = freshStore('admin');
    const t = await token({ store, role: 'reader' });
    expect((await call(`/v1/stores/${store}/projections/totals/status`, { token: t })).status).toBe(200);
  });
});
