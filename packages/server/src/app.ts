import {
  AppendRequest,
  Commit,
  type CommitResult,
  defaultLimits,
  error,
  fromWire,
  httpStatusOf,
  type Limits,
  ReadAllQuery,
  ReadStreamQuery,
  StoreName,
  StreamName,
  toWireError,
  validateAppend,
  validationError,
  type WireError,
  wrongExpectedVersion,
} from '@edgelog/core';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { type AdmissionPolicy, admission, type Payer } from './admission.ts';
import { mountAggregateRoutes } from './aggregate-routes.ts';
import {
  bearerToken,
  type Claims,
  checkStore,
  checkStream,
  checkWriter,
  isKnownToken,
  jwtSecret,
  MAX_TOKEN_CHARS,
  verifyToken,
} from './auth.ts';
import { parseWith, readJsonSized } from './body.ts';
import { edgeConfig } from './config.ts';
import { corsMiddleware } from './cors.ts';
import type { ServerEnv } from './env.ts';
import { AUTHOR_KEY } from './log-row.ts';
import { openApiDocument } from './openapi.ts';
import { packEvents } from './packed.ts';
import { mountProjectionRoutes } from './projection-routes.ts';
import {
  conflictFrom,
  didNotLand,
  type FailedChain,
  failedChain,
  mustNotLandAfterFailure,
} from './push-chain.ts';
import { upcastAllForRead, upcastPage } from './read-upcast.ts';
import type { GlobalReadScope, SequencerApi } from './sequencer-do.ts';
import type { AppendInput, AppendOutcome, StreamApi } from './stream-do.ts';
import { checkSchemas } from './write-schema.ts';

type AppEnv = { Bindings: ServerEnv };
type Ctx = Context<AppEnv>;

/** Header that routes an append around the sequencer; honoured only when `EDGELOG_BENCH=1`. */
export const BENCH_BYPASS_HEADER = 'x-edgelog-bench';

// The events are checked by validateAppend; these check the rest of the body, once.
const AppendHeader = AppendRequest.omit({ events: true });
const CommitHeader = Commit.omit({ events: true });

const PushEnvelope = (limits: Limits) =>
  z.object({ commits: z.array(z.unknown()).min(1).max(limits.maxCommitsPerPush) });

export interface AppOptions {
  /**
   * Rate limits (admission.ts): any fields of a policy, over `defaultAdmission`; default from
   * `EDGELOG_ADMISSION`, else `defaultAdmission`; `false` turns them off.
   */
  admission?: Partial<AdmissionPolicy> | false;
}

/** The v1 HTTP API. Every error, thrown anywhere, becomes `{ error }` in `onError`. */
export function createApp(limits: Limits = defaultLimits, options: AppOptions = {}) {
  const app = new Hono<AppEnv>();
  // CORS first: preflights are answered before admission counts them, and a 429 carries the
  // grant, so a page on another origin can read its Retry-After.
  app.use('*', corsMiddleware);
  app.use('/v1/stores/:store/*', admission(options.admission, limits.maxRequestBytes, payerOf));

  app.onError((err, c) => {
    const wire = toWireError(err);
    const status = httpStatusOf[wire.code];
    if (status >= 500) console.error(err);
    return c.json({ error: wire }, status as ContentfulStatusCode);
  });
  app.notFound((c) =>
    c.json({ error: { code: 'NotFound', message: `no route for ${c.req.method} ${c.req.path}` } }, 404),
  );

  app.get('/health', (c) => c.json({ ok: true, protocol: 'v1' }));
  app.get('/v1/openapi.json', (c) => c.json(openApiDocument(limits)));

  app.post('/v1/stores/:store/streams/:stream/events', async (c) => {
    const { store, claims } = await authorize(c);
    checkWriter(claims);
    const stream = parseWith(StreamName, c.req.param('stream'), 'stream');
    checkStream(claims, stream);
    const { value: body, bytes: sentBytes } = await readJsonSized(c.req.raw, limits);
    // Sizes first, then shape: core's validateAppend is the one rule book for every store.
    const raw = eventsOf(body);
    const events = checkSchemas(registryOf(c), validateAppend(stream, raw, limits, sentBytes), raw);
    const request = appendHeaderOf(body);
    const input: AppendInput = {
      store,
      stream,
      events: packEvents(events, AUTHOR_KEY, authorOf(claims), sentBytes),
    };
    if (request.expectedVersion !== undefined) input.expectedVersion = request.expectedVersion;
    if (c.req.header(BENCH_BYPASS_HEADER) === 'bypass' && c.env.EDGELOG_BENCH === '1')
      input.bypassSequencer = true;
    const outcome = await streamStub(c.env, store, stream).append(input);
    switch (outcome.status) {
      case 'committed':
      case 'duplicate':
        return c.json({ version: outcome.version, positions: outcome.positions });
      case 'conflict':
        throw wrongExpectedVersion(stream, outcome.expected, outcome.version);
      case 'rejected':
        throw fromWire(outcome.error);
      default: {
        const never: never = outcome;
        return never;
      }
    }
  });

  app.get('/v1/stores/:store/streams/:stream/events', async (c) => {
    const { store, claims } = await authorize(c);
    const stream = parseWith(StreamName, c.req.param('stream'), 'stream');
    checkStream(claims, stream);
    const query = parseWith(ReadStreamQuery, c.req.query());
    const outcome = await streamStub(c.env, store, stream).read(store, stream, {
      ...query,
      limit: pageSize(query.limit, limits),
    });
    if (!outcome.ok) throw fromWire(outcome.error);
    return c.json(upcastPage(outcome.page));
  });

  const readAll = async (c: Ctx) => {
    const { store, claims } = await authorize(c);
    const query = parseWith(ReadAllQuery, c.req.query());
    const scope: GlobalReadScope = {};
    if (claims.streams) scope.allowedPrefixes = claims.streams;
    if (query.streamPrefix !== undefined || query.types !== undefined) {
      scope.filter = {};
      if (query.streamPrefix !== undefined) scope.filter.streamPrefix = query.streamPrefix;
      if (query.types !== undefined) scope.filter.types = query.types;
    }
    const page = await sequencerStub(c.env, store).readAll(
      query.after ?? 0,
      pageSize(query.limit, limits),
      scope,
      limits.maxScanPerRead,
    );
    const filtered = scope.allowedPrefixes !== undefined || scope.filter !== undefined;
    return c.json(upcastPage(filtered ? { ...page, filtered: true as const } : page));
  };
  app.get('/v1/stores/:store/events', readAll);
  app.get('/v1/stores/:store/sync/pull', readAll);

  app.post('/v1/stores/:store/sync/push', async (c) => {
    const { store, claims } = await authorize(c);
    checkWriter(claims);
    const { value, bytes: sentBytes } = await readJsonSized(c.req.raw, limits);
    const { commits } = parseWith(PushEnvelope(limits), value);
    const results: CommitResult[] = new Array(commits.length);
    // Commits of one stream run in order (a later one may build on an earlier one, so none lands
    // after one that did not: push-chain.ts); streams run side by side.
    const byStream = new Map<string, number[]>();
    commits.forEach((raw, i) => {
      const key = isRecord(raw) && typeof raw.stream === 'string' ? raw.stream : `\u0000${i}`;
      byStream.set(key, [...(byStream.get(key) ?? []), i]);
    });
    await Promise.all(
      [...byStream.values()].map(async (indexes) => {
        let chain: FailedChain | undefined;
        for (const i of indexes) {
          results[i] = await pushOne(c, store, claims, commits[i], i, limits, sentBytes, chain);
          if (chain === undefined && didNotLand(results[i]!.status)) chain = failedChain(commits[i]);
        }
      }),
    );
    return c.json({ results });
  });

  app.get('/v1/stores/:store/streams/:stream/ws', async (c) => {
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket')
      throw error('UpgradeRequired', 'expected a WebSocket upgrade');
    const store = parseWith(StoreName, c.req.param('store'), 'store');
    const stream = parseWith(StreamName, c.req.param('stream'), 'stream');
    const headers = new Headers({
      Upgrade: 'websocket',
      'x-edgelog-store': store,
      'x-edgelog-stream': stream,
    });
    if (bearerToken(c.req.header('authorization'))) {
      const claims = await claimsOf(c);
      checkStore(claims, store);
      checkStream(claims, stream);
      headers.set('x-edgelog-claims', JSON.stringify(claims));
    }
    return streamStub(c.env, store, stream).fetch(new Request(c.req.url, { headers }));
  });

  app.get('/v1/stores/:store/ws', async (c) => {
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket')
      throw error('UpgradeRequired', 'expected a WebSocket upgrade');
    const store = parseWith(StoreName, c.req.param('store'), 'store');
    const headers = new Headers({ Upgrade: 'websocket', 'x-edgelog-store': store });
    if (bearerToken(c.req.header('authorization'))) {
      const claims = await claimsOf(c);
      checkStore(claims, store);
      headers.set('x-edgelog-claims', JSON.stringify(claims));
    }
    return sequencerStub(c.env, store).fetch(new Request(c.req.url, { headers }));
  });

  mountProjectionRoutes(app, authorize);
  mountAggregateRoutes(app, authorize);

  return app;
}

async function pushOne(
  c: Ctx,
  store: string,
  claims: Claims,
  raw: unknown,
  index: number,
  limits: Limits,
  sentBytes: number,
  failed: FailedChain | undefined,
): Promise<CommitResult> {
  const commitId = isRecord(raw) && typeof raw.commitId === 'string' ? raw.commitId : '';
  try {
    const rawEvents = eventsOf(raw);
    const events = checkSchemas(
      registryOf(c),
      validateAppend(isRecord(raw) ? String(raw.stream) : '', rawEvents, limits, sentBytes),
      rawEvents,
    );
    const commit = parseWith(CommitHeader, raw, `commits.${index}`);
    checkStream(claims, commit.stream);
    const input: AppendInput = {
      store,
      stream: commit.stream,
      events: packEvents(events, AUTHOR_KEY, authorOf(claims), sentBytes),
    };
    if (commit.expectedVersion !== undefined) input.expectedVersion = commit.expectedVersion;
    if (failed && mustNotLandAfterFailure(commit.expectedVersion)) {
      input.afterFailedCommit = true;
      const from = conflictFrom(commit.expectedVersion, failed);
      if (from !== undefined) input.expectedVersion = from;
    }
    const outcome: AppendOutcome = await streamStub(c.env, store, commit.stream).append(input);
    switch (outcome.status) {
      case 'committed':
      case 'duplicate':
        return { status: outcome.status, commitId, version: outcome.version, positions: outcome.positions };
      case 'conflict':
        return {
          status: 'conflict',
          commitId,
          version: outcome.version,
          events: upcastAllForRead(outcome.events),
        };
      case 'rejected':
        if (!isFinal(outcome.error)) throw fromWire(outcome.error);
        return { status: 'rejected', commitId, error: outcome.error };
      default: {
        const never: never = outcome;
        return never;
      }
    }
  } catch (e) {
    const wire = toWireError(e);
    if (!isFinal(wire)) throw e;
    return { status: 'rejected', commitId, error: wire };
  }
}

/**
 * Whether an error refuses a commit for good (the commit's own fault: 4xx but 429). A crash,
 * a timeout or a rate limit says nothing of the commit, which may even have committed: the
 * whole push fails with that status instead, and the client pushes again (idempotent by event
 * ids; the commit id is only echoed). Answering `rejected` would make the client drop events
 * the server may hold.
 */
function isFinal(error: WireError): boolean {
  const status = httpStatusOf[error.code] ?? 500;
  return status < 500 && status !== 429;
}

type Authorized = { store: string; claims: Claims };

/** Verifies the bearer token and that it belongs to the path's store (401, 403). */
async function authorize(c: Ctx): Promise<Authorized> {
  const store = parseWith(StoreName, c.req.param('store'), 'store');
  const claims = await claimsOf(c);
  checkStore(claims, store);
  return { store, claims };
}

/** Each request's token check, made once for admission and the route. */
const tokenChecks = new WeakMap<Request, Promise<Claims>>();

/** The claims of the request's bearer token, verified (401 otherwise), whatever store they name. */
function claimsOf(c: Ctx): Promise<Claims> {
  let claims = tokenChecks.get(c.req.raw);
  if (!claims) {
    claims = checkToken(c);
    tokenChecks.set(c.req.raw, claims);
  }
  return claims;
}

async function checkToken(c: Ctx): Promise<Claims> {
  const token = bearerToken(c.req.header('authorization'));
  if (!token) throw error('Unauthorized', 'missing Authorization: Bearer <token>');
  return verifyToken(token, jwtSecret(c.env));
}

/**
 * Who pays for a request in admission: the store its token verifies for, else its client's
 * address. No Authorization header (a browser's WebSocket upgrade), or a token too long to be
 * one, is anonymous without any decoding.
 */
function payerOf(c: Ctx): Payer {
  const token = bearerToken(c.req.header('authorization'));
  if (token === undefined || token.length > MAX_TOKEN_CHARS) return { kind: 'anonymous' };
  const secret = c.env?.EDGELOG_JWT_SECRET;
  return {
    kind: 'token',
    known: secret !== undefined && isKnownToken(token, secret),
    store: () =>
      claimsOf(c).then(
        (claims) => claims.store,
        () => undefined,
      ),
  };
}

/**
 * A read's page size: the app's default when unset, never above its maximum (an app may set a
 * `maxPageSize` below the default page size). Core's query schemas refuse a limit above the
 * default maximum; an app made with a smaller `maxPageSize` refuses above that one, alike.
 */
function pageSize(limit: number | undefined, limits: Limits): number {
  if (limit === undefined) return Math.min(limits.defaultPageSize, limits.maxPageSize);
  if (limit > limits.maxPageSize)
    throw validationError([
      { path: 'limit', message: `Too big: expected number to be <=${limits.maxPageSize}` },
    ]);
  return limit;
}

const authorOf = (claims: Claims) => claims.sub ?? claims.role;

/** The registry appended data is checked against, unless `EDGELOG_WRITE_VALIDATION=off`. */
const registryOf = (c: Ctx) => (c.env.EDGELOG_WRITE_VALIDATION === 'off' ? undefined : edgeConfig().registry);

/**
 * The body's fields besides the events. The common bodies (no `expectedVersion`, or a valid
 * one) are read without zod, which cannot compile its fast path where `eval` is refused, as
 * in Workers (about 2% of an append's CPU); anything else is zod's to refuse and explain.
 */
function appendHeaderOf(body: unknown): z.infer<typeof AppendHeader> {
  if (isRecord(body)) {
    const v = body.expectedVersion;
    if (v === undefined) return {};
    if (v === 'any' || v === 'no_stream' || v === 'stream_exists') return { expectedVersion: v };
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return { expectedVersion: v };
  }
  return parseWith(AppendHeader, body);
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const eventsOf = (body: unknown): unknown[] => {
  const events = isRecord(body) ? body.events : undefined;
  if (!Array.isArray(events)) throw validationError([{ path: 'events', message: 'events must be an array' }]);
  return events;
};

/** The StreamDO of (store, stream), named on the server only. */
function streamStub(env: ServerEnv, store: string, stream: string): StreamApi {
  return env.STREAMS.get(env.STREAMS.idFromName(`${store}/${stream}`)) as unknown as StreamApi;
}

function sequencerStub(env: ServerEnv, store: string): SequencerApi {
  return env.SEQUENCERS.get(env.SEQUENCERS.idFromName(store)) as unknown as SequencerApi;
}
