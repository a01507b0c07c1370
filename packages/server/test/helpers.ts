import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { type Claims, signToken } from '../src/auth.ts';
import worker from './worker.ts';

export const SECRET = 'test-secret';

/** The store's SequencerDO, for `runInDurableObject`. */
export const sequencerStub = (store: string) => env.SEQUENCERS.get(env.SEQUENCERS.idFromName(store));
export const BASE = 'http://edgelog.test';

let counter = 0;
/** A fresh store name per test: tests share one workerd, so they must not share stores. */
export const freshStore = (prefix = 's') =>
  `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export function token(claims: Partial<Claims> & { store: string }, secret = SECRET): Promise<string> {
  return signToken({ role: 'writer', exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, secret);
}

export function call(
  path: string,
  init: RequestInit & { token?: string; json?: unknown } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  return exports.default.fetch(new Request(`${BASE}${path}`, { ...init, headers, body: body ?? null }));
}

/** `POST .../streams/:stream/events` of `store` with `token`, naming `expectedVersion` when given. */
export const appendTo =
  (store: string, t: string, headers: Record<string, string> = {}) =>
  (stream: string, events: unknown[], expectedVersion?: number): Promise<Response> =>
    call(`/v1/stores/${store}/streams/${stream}/events`, {
      method: 'POST',
      token: t,
      headers,
      json: expectedVersion === undefined ? { events } : { expectedVersion, events },
    });

/**
 * `call` on the same Worker with `EDGELOG_WRITE_VALIDATION=off`: writes events that the
 * registry's current schemas refuse, as history stored before them would be.
 */
export async function callUnchecked(
  path: string,
  init: RequestInit & { token?: string; json?: unknown } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  headers.set('content-type', 'application/json');
  const request = new Request(`${BASE}${path}`, { ...init, headers, body: JSON.stringify(init.json) });
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    request as Parameters<typeof worker.fetch>[0],
    { ...env, EDGELOG_WRITE_VALIDATION: 'off' },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

export const newEvent = (type = 'Tested', data: unknown = { n: 1 }) => ({
  id: crypto.randomUUID(),
  type,
  data,
});
