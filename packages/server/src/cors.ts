import type { Context, MiddlewareHandler } from 'hono';
import type { ServerEnv } from './env.ts';

/** Origins allowed when `EDGELOG_CORS_ORIGINS` is not set: pages served from this machine. */
const LOOPBACK = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/;

/** The parsed origin list of the last `EDGELOG_CORS_ORIGINS` value seen (it is per deployment). */
let parsed: { configured: string | undefined; list: string[] } | undefined;

function originList(configured: string | undefined): string[] {
  if (parsed !== undefined && parsed.configured === configured) return parsed.list;
  const list = (configured ?? '')
    .split(',')
    .map((o) => o.trim().replace(/\/$/, ''))
    .filter((o) => o.length > 0);
  parsed = { configured, list };
  return list;
}

/**
 * Whether a browser page from `origin` may call the API. `EDGELOG_CORS_ORIGINS` is a comma
 * list of exact origins (`https://app.example.com`), or `*` for any; unset, only loopback
 * origins may (development). Tokens travel in the `Authorization` header, never in cookies,
 * so an allowed origin gains nothing a page without a token could use.
 */
export function originAllowed(origin: string, configured: string | undefined): boolean {
  const list = originList(configured);
  if (list.length === 0) return LOOPBACK.test(origin);
  return list.includes('*') || list.includes(origin);
}

const ALLOW_METHODS = 'GET,POST,OPTIONS';
const ALLOW_HEADERS = 'Authorization,Content-Type';
const EXPOSE_HEADERS = 'Retry-After';
const MAX_AGE = '86400';

type Ctx = Context<{ Bindings: ServerEnv }>;

/** The grant headers for an allowed origin. */
function grant(c: Ctx, origin: string): void {
  c.header('Access-Control-Allow-Origin', origin);
  c.header('Access-Control-Expose-Headers', EXPOSE_HEADERS);
}

/**
 * CORS for every HTTP route, errors included, answering preflights. WebSocket upgrades are
 * left alone: browsers do not preflight them, and a 101 answer's headers cannot change.
 *
 * The headers are set before the route runs, so they go into the one Response the route
 * makes (hono's own `cors` touches `c.res` before and after the route, which builds two more
 * Response objects per request: measurable on the append path). A route that hands on a
 * Response it did not make (a Durable Object's answer) gets them added afterwards.
 */
export const corsMiddleware: MiddlewareHandler<{ Bindings: ServerEnv }> = async (c, next) => {
  if (c.req.header('upgrade')) return next();
  const origin = c.req.header('origin');
  const allowed = origin !== undefined && originAllowed(origin, c.env?.EDGELOG_CORS_ORIGINS);
  if (c.req.method === 'OPTIONS') {
    const headers = new Headers({ Vary: 'Origin, Access-Control-Request-Headers' });
    if (allowed) {
      headers.set('Access-Control-Allow-Origin', origin);
      headers.set('Access-Control-Expose-Headers', EXPOSE_HEADERS);
      headers.set('Access-Control-Allow-Methods', ALLOW_METHODS);
      headers.set('Access-Control-Allow-Headers', ALLOW_HEADERS);
      headers.set('Access-Control-Max-Age', MAX_AGE);
    }
    return new Response(null, { status: 204, headers });
  }
  c.header('Vary', 'Origin');
  if (allowed) grant(c, origin);
  await next();
  if (allowed && !c.res.headers.has('Access-Control-Allow-Origin')) grant(c, origin);
};
