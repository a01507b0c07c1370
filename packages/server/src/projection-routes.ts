import { error, fromWire, StoreName } from '@edgelog/core';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { type Claims, checkAdmin } from './auth.ts';
import { parseWith } from './body.ts';
import { edgeConfig, projectionVersions } from './config.ts';
import type { ServerEnv } from './env.ts';
import type { Outcome, ProjectionApi, ProjectionRef, WaitFor } from './projection-do.ts';

type AppEnv = { Bindings: ServerEnv };
type Authorize = (c: Context<AppEnv>) => Promise<{ store: string; claims: Claims }>;

/** How long a read-your-writes query waits by default, and at most, ms. */
export const DEFAULT_WAIT_MS = 5_000;
export const MAX_WAIT_MS = 30_000;

const ProjectionName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'not a projection name');
/** Query of a row read: read-your-writes wait and version pin (also in the OpenAPI document). */
export const WaitQuery = z.object({
  minPosition: z.optional(z.coerce.number().int().min(0)),
  timeoutMs: z.optional(z.coerce.number().int().min(0).max(MAX_WAIT_MS)),
  version: z.optional(z.coerce.number().int().min(1)),
});
/** Query of a listing by key prefix. */
export const ListQuery = WaitQuery.extend({
  prefix: z.optional(z.string().max(200)),
  after: z.optional(z.string().max(200)),
  key: z.optional(z.string().max(200)),
  limit: z.optional(z.coerce.number().int().min(1).max(1000)),
});

/** Query of the parked-events listing. */
export const ParkedQuery = z.object({
  after: z.optional(z.coerce.number().int().min(0)),
  limit: z.optional(z.coerce.number().int().min(1).max(1000)),
  version: z.optional(z.coerce.number().int().min(1)),
});

export function projectionStub(env: ServerEnv, ref: ProjectionRef): ProjectionApi {
  const ns = env.PROJECTIONS;
  return ns.get(ns.idFromName(`${ref.store}/${ref.name}@${ref.version}`)) as unknown as ProjectionApi;
}

/** Tells every configured projection of a store that its log grew (after an acknowledged append). */
export async function pokeProjections(env: ServerEnv, store: string): Promise<void> {
  await Promise.all(
    edgeConfig().projections.map((p) =>
      projectionStub(env, { store, name: p.name, version: p.version })
        .poke({ store, name: p.name, version: p.version })
        .catch(() => undefined),
    ),
  );
}

/**
 * Pokes a store's projections when its log grew, coalesced: while a poke is on its way, the
 * growth that comes meanwhile is told once more after it (not once per commit). A poke that is
 * lost (a crash right after the commit) is made up by the next one, or by the next query,
 * which wakes a projection that is behind. Without a store name (a runtime that does not give
 * a Durable Object its name) it does nothing, and queries alone wake the projections.
 */
export class ProjectionPoker {
  private poking = false;
  private again = false;

  constructor(
    private readonly env: ServerEnv,
    private readonly store: string | undefined,
  ) {}

  poke(): void {
    const store = this.store;
    if (store === undefined || edgeConfig().projections.length === 0) return;
    if (this.poking) {
      this.again = true;
      return;
    }
    this.poking = true;
    void pokeProjections(this.env, store).finally(() => {
      this.poking = false;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }
}

const unwrap = <T>(o: Outcome<T>): T => {
  if (!o.ok) throw fromWire(o.error);
  return o.value;
};

/**
 * The version that answers queries: the newest one that has caught up at least once; until a
 * new version has, the one before it keeps answering (rebuild beside, then take over).
 */
async function activeRef(
  env: ServerEnv,
  store: string,
  name: string,
  asked?: number,
): Promise<ProjectionRef> {
  const versions = projectionVersions(name);
  if (versions.length === 0) throw error('NotFound', `no projection named '${name}'`);
  if (asked !== undefined) {
    if (!versions.some((v) => v.version === asked))
      throw error('NotFound', `projection ${name} has no version ${asked}`);
    return { store, name, version: asked };
  }
  for (const v of versions) {
    const ref = { store, name, version: v.version };
    if (await projectionStub(env, ref).isReady(ref)) return ref;
  }
  // None has caught up yet (a new store): the newest answers, waiting for minPosition if asked.
  return { store, name, version: versions[0]!.version };
}

/** Projections fold every stream of a store, so a token bound to stream prefixes may not read them. */
function checkWholeStore(claims: Claims): void {
  if (claims.streams) {
    throw error(
      'Forbidden',
      'projections span every stream of a store; this token is limited to stream prefixes',
    );
  }
}

export function mountProjectionRoutes(app: Hono<AppEnv>, authorize: Authorize): void {
  const base = '/v1/stores/:store/projections/:name';
  const setup = async (c: Context<AppEnv>) => {
    const { store, claims } = await authorize(c);
    parseWith(StoreName, store, 'store');
    checkWholeStore(claims);
    return { store, claims, name: parseWith(ProjectionName, c.req.param('name'), 'name') };
  };
  const waitOf = (q: z.infer<typeof WaitQuery>): WaitFor => {
    const wait: WaitFor = { timeoutMs: q.timeoutMs ?? DEFAULT_WAIT_MS };
    if (q.minPosition !== undefined) wait.minPosition = q.minPosition;
    return wait;
  };

  const status = async (c: Context<AppEnv>, store: string, name: string) => {
    const versions = projectionVersions(name);
    if (versions.length === 0) throw error('NotFound', `no projection named '${name}'`);
    const active = await activeRef(c.env, store, name);
    const all = await Promise.all(
      versions.map(async (v) => {
        const ref = { store, name, version: v.version };
        return unwrap(await projectionStub(c.env, ref).status(ref));
      }),
    );
    const current = all.find((s) => s.version === active.version)!;
    return c.json({ ...current, active: active.version, versions: all });
  };

  // Parked events carry other streams' data and the projection's own error messages: operators only.
  const parked = async (c: Context<AppEnv>, store: string, name: string, claims: Claims) => {
    checkAdmin(claims);
    const q = parseWith(ParkedQuery, c.req.query());
    const ref = await activeRef(c.env, store, name, q.version);
    const events = unwrap(await projectionStub(c.env, ref).parked(ref, q.after ?? 0, q.limit ?? 100));
    return c.json({ version: ref.version, events });
  };

  // `status` and `parked` are answered by this one route rather than routes of their own: a
  // static segment beside a parameter at the same place is beyond hono's RegExpRouter, which
  // then falls back to its TrieRouter for the whole app (about 5% of an append's CPU).
  // A row whose key is `status` or `parked` is read with `?key=`.
  app.get(`${base}/:key`, async (c) => {
    const { store, name, claims } = await setup(c);
    const key = c.req.param('key');
    if (key === 'status') return status(c, store, name);
    if (key === 'parked') return parked(c, store, name, claims);
    const q = parseWith(WaitQuery, c.req.query());
    const ref = await activeRef(c.env, store, name, q.version);
    const row = unwrap(await projectionStub(c.env, ref).get(ref, key, waitOf(q)));
    if (!row) throw error('NotFound', `projection ${name} has no row '${key}'`);
    return c.json({ key, version: ref.version, state: row.state, checkpoint: row.checkpoint });
  });

  app.get(base, async (c) => {
    const { store, name } = await setup(c);
    const q = parseWith(ListQuery, c.req.query());
    const ref = await activeRef(c.env, store, name, q.version);
    const stub = projectionStub(c.env, ref);
    if (q.key !== undefined) {
      const row = unwrap(await stub.get(ref, q.key, waitOf(q)));
      if (!row) throw error('NotFound', `projection ${name} has no row '${q.key}'`);
      return c.json({ key: q.key, version: ref.version, state: row.state, checkpoint: row.checkpoint });
    }
    const list: { prefix?: string; after?: string; limit: number } = { limit: q.limit ?? 100 };
    if (q.prefix !== undefined) list.prefix = q.prefix;
    if (q.after !== undefined) list.after = q.after;
    const page = unwrap(await stub.list(ref, list, waitOf(q)));
    return c.json({ version: ref.version, ...page });
  });
}
