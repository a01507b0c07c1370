import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { ServerEnv } from './env.ts';

/** Origins allowed when `EDGELOG_CORS_ORIGINS` is not set: pages served from this machine. */
const LOOPBACK = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/;

/**
 * Whether a browser page from `origin` may call the API. `EDGELOG_CORS_ORIGINS` is a comma
 * list of exact origins (`https://app.example.com`), or `*` for any; unset, only loopback
 * origins may (development). Tokens travel in the `Authorization` header, never in cookies,
 * so an allowed origin gains nothing a page without a token could use.
 */
export function originAllowed(origin: string, configured: string | undefined): boolean {
  const list = (configured ?? '')
    .split(',')
    .map((o) => o.trim().replace(/\/$/, ''))
    .filter((o) => o.length > 0);
  if (list.length === 0) return LOOPBACK.test(origin);
  return list.includes('*') || list.includes(origin);
}

const corsHeaders = cors({
  origin: (origin, c: Context<{ Bindings: ServerEnv }>) =>
    originAllowed(origin, c.env?.EDGELOG_CORS_ORIGINS) ? origin : null,
  allowMethods: ['GET', 'POST', 'OPTIONS'],
  allowHeaders: ['Authorization', 'Content-Type'],
  exposeHeaders: ['Retry-After'],
  maxAge: 86_400,
});

/**
 * CORS for every HTTP route, errors included, answering preflights. WebSocket upgrades are
 * left alone: browsers do not preflight them, and a 101 answer's headers cannot change.
 */
export const corsMiddleware: MiddlewareHandler<{ Bindings: ServerEnv }> = (c, next) =>
  c.req.header('upgrade') ? next() : corsHeaders(c, next);
