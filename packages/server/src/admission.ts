import { type ErrorResponse, httpStatusOf } from '@edgelog/core';
import type { Context, MiddlewareHandler } from 'hono';
import { z } from 'zod';

/**
 * Admission control: a store that floods the edge with requests, or pushes a huge offline
 * backlog at once, is slowed down with `429 RateLimited` and `Retry-After` before any work is
 * done for it, so it cannot starve other stores of the isolate's CPU. Nothing is stored for a
 * refused request; the client SDK backs off (at least `Retry-After`) and pushes again, and
 * idempotent commits make that safe.
 *
 * Two token buckets per store: requests, and bytes of write bodies (appends and pushes, counted
 * from `Content-Length`). Buckets live in the Worker isolate: a deployment that runs a store's
 * traffic in several isolates admits up to that many times the rate. That bounds the damage
 * one store does to the others sharing an isolate; a global quota belongs in Cloudflare's rate
 * limiting in front of the Worker.
 */
export const AdmissionPolicy = z.object({
  /** Requests per second per store (refill rate). */
  requestsPerSecond: z.number().positive(),
  /** Requests a store may make at once after being idle. */
  requestBurst: z.number().min(1),
  /** Bytes of append and push bodies per second per store (refill rate). */
  writeBytesPerSecond: z.number().positive(),
  /** Bytes a store may write at once after being idle; at least one largest request body. */
  writeBurstBytes: z.number().min(1),
});
export type AdmissionPolicy = z.infer<typeof AdmissionPolicy>;

/** Far above what one honest app does; benchmarks run well below it. */
export const defaultAdmission: AdmissionPolicy = {
  requestsPerSecond: 1_000,
  requestBurst: 2_000,
  writeBytesPerSecond: 32 * 1024 * 1024,
  writeBurstBytes: 64 * 1024 * 1024,
};

/** A token bucket; `take` answers 0 when admitted, else how many ms until `cost` tokens are there. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#at = now;
  }

  take(cost: number, now: number): number {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    const need = Math.min(cost, this.burst);
    if (this.#tokens >= need) {
      this.#tokens -= need;
      return 0;
    }
    return Math.ceil(((need - this.#tokens) / this.rate) * 1000);
  }

  /** Full again: the bucket can be forgotten. */
  idle(now: number): boolean {
    return this.#tokens + ((now - this.#at) / 1000) * this.rate >= this.burst;
  }
}

export type AdmissionVerdict =
  | { ok: true }
  | { ok: false; retryAfterMs: number; scope: 'requests' | 'write bytes' };

const MAX_TRACKED_STORES = 10_000;

/** The buckets of every store this isolate has seen lately. */
export class Admission {
  readonly #stores = new Map<string, { requests: TokenBucket; bytes: TokenBucket }>();

  constructor(
    readonly policy: AdmissionPolicy,
    private readonly clock: () => number = Date.now,
  ) {}

  admit(store: string, writeBytes: number): AdmissionVerdict {
    const now = this.clock();
    let buckets = this.#stores.get(store);
    if (!buckets) {
      if (this.#stores.size >= MAX_TRACKED_STORES) this.#forgetIdle(now);
      buckets = {
        requests: new TokenBucket(this.policy.requestsPerSecond, this.policy.requestBurst, now),
        bytes: new TokenBucket(this.policy.writeBytesPerSecond, this.policy.writeBurstBytes, now),
      };
      this.#stores.set(store, buckets);
    }
    const wait = buckets.requests.take(1, now);
    if (wait > 0) return { ok: false, retryAfterMs: wait, scope: 'requests' };
    if (writeBytes > 0) {
      const byteWait = buckets.bytes.take(writeBytes, now);
      if (byteWait > 0) return { ok: false, retryAfterMs: byteWait, scope: 'write bytes' };
    }
    return { ok: true };
  }

  #forgetIdle(now: number): void {
    for (const [store, b] of this.#stores) {
      if (b.requests.idle(now) && b.bytes.idle(now)) this.#stores.delete(store);
    }
    // Still full of busy stores: forget the oldest (a forgotten store starts with a full burst).
    for (const store of this.#stores.keys()) {
      if (this.#stores.size < MAX_TRACKED_STORES) break;
      this.#stores.delete(store);
    }
  }
}

/** `EDGELOG_ADMISSION` (JSON, any subset of the policy's fields) over the defaults; `off` disables. */
export function admissionFromEnv(value: string | undefined): AdmissionPolicy | false {
  if (value === undefined || value === '') return defaultAdmission;
  if (value === 'off') return false;
  return AdmissionPolicy.parse({ ...defaultAdmission, ...(JSON.parse(value) as object) });
}

/**
 * The hook in the request path: every `/v1/stores/:store/*` request that `authenticated` says
 * carries a good token for its store takes a token from the store's request bucket, and writes
 * (POST) take their body's bytes from its byte bucket (`maxRequestBytes` when the body's length
 * is not declared). A request without such a token is not charged, so no one without a token
 * can use up a store's buckets; the route refuses it (401, 403) at the cost of a token check.
 * `policy` wins over `EDGELOG_ADMISSION`; `false` turns admission off.
 */
export function admission<E extends { Bindings: { EDGELOG_ADMISSION?: string } }>(
  policy: AdmissionPolicy | false | undefined,
  maxRequestBytes: number,
  authenticated: (c: Context<E>) => Promise<boolean>,
  clock?: () => number,
): MiddlewareHandler<E> {
  let gate: Admission | false | undefined =
    policy === undefined ? undefined : policy && new Admission(policy, clock);
  return async (c, next) => {
    gate ??= (() => {
      const p = admissionFromEnv(c.env?.EDGELOG_ADMISSION);
      return p && new Admission(p, clock);
    })();
    if (!gate || !(await authenticated(c))) return next();
    const store = c.req.param('store') ?? '';
    // A write body of unknown length (chunked) is charged as the largest one allowed.
    const declared = Number(c.req.header('content-length') ?? Number.NaN);
    const bytes =
      c.req.method !== 'POST' ? 0 : Number.isFinite(declared) && declared >= 0 ? declared : maxRequestBytes;
    const verdict = gate.admit(store, bytes);
    if (verdict.ok) return next();
    const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    const body: ErrorResponse = {
      error: {
        code: 'RateLimited',
        message: `store '${store}' is over its ${verdict.scope} rate: retry after ${seconds} s`,
        details: { retryAfterMs: verdict.retryAfterMs, scope: verdict.scope },
      },
    };
    return c.json(body, httpStatusOf.RateLimited as 429, { 'Retry-After': String(seconds) });
  };
}
