import { fromWire, StreamName } from '@edgelog/core';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { AggregateOutcome } from './aggregate.ts';
import { type Claims, checkStream } from './auth.ts';
import { parseWith } from './body.ts';
import type { ServerEnv } from './env.ts';

type AppEnv = { Bindings: ServerEnv };
type Authorize = (c: Context<AppEnv>) => Promise<{ store: string; claims: Claims }>;

const DeciderName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'not a decider name');

interface AggregateApi {
  loadAggregate(store: string, stream: string, decider: string): Promise<AggregateOutcome>;
}

/**
 * `GET /v1/stores/:store/streams/:stream/aggregates/:decider`: the stream folded by a decider
 * configured at the edge, with its version (the `expectedVersion` a command decided on this
 * state appends with). The StreamDO starts from its snapshot when the decider has a policy.
 */
export function mountAggregateRoutes(app: Hono<AppEnv>, authorize: Authorize): void {
  app.get('/v1/stores/:store/streams/:stream/aggregates/:decider', async (c) => {
    const { store, claims } = await authorize(c);
    const stream = parseWith(StreamName, c.req.param('stream'), 'stream');
    checkStream(claims, stream);
    const decider = parseWith(DeciderName, c.req.param('decider'), 'decider');
    const ns = c.env.STREAMS;
    const stub = ns.get(ns.idFromName(`${store}/${stream}`)) as unknown as AggregateApi;
    const outcome = await stub.loadAggregate(store, stream, decider);
    if (!outcome.ok) throw fromWire(outcome.error);
    return c.json(outcome.value);
  });
}
