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
 * from `Content-Length`). Requests that no store answers for (no token, or one that does not
 * verify) take from an anonymous bucket of the client's address instead, so they can neither
 * use up a store's buckets nor flood without limit. Buckets live in the Worker isolate: a
 * deployment that runs a store's traffic in several isolates admits up to that many times the
 * rate. That bounds the damage one store does to the others sharing an isolate; a global quota
 * belongs in Cloudflare's rate limiting in front of the Worker.
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
  /**
   * Requests per second per client address that no store pays for: WebSocket upgrades without
   * a token (a browser sends it in the first message), and requests whose token does not verify.
   */
  anonymousRequestsPerSecond: z.number().positive(),
  /** Such requests an address may make at once after being idle. */
  anonymousRequestBurst: z.number().min(1),
});
export type AdmissionPolicy = z.infer<typeof AdmissionPolicy>;

/** Far above what one honest app does; benchmarks run well below it. */
export const defaultAdmission: AdmissionPolicy = {
  requestsPerSecond: 1_000,
  requestBurst: 2_000,
  writeBytesPerSecond: 32 * 1024 * 1024,
  writeBurstBytes: 64 * 1024 * 1024,
  // A browser opens a socket or two per tab without a token and reconnects with backoff; an
  // office behind one address opening the app at once is the burst to allow for.
  anonymousRequestsPerSecond: 10,
  anonymousRequestBurst: 200,
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
    const wait = this.peek(cost, now);
    if (wait === 0) this.#tokens -= Math.min(cost, this.burst);
    return wait;
  }

  /** What `take` would answer, taking nothing. */
  peek(cost: number, now: number): number {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    const need = Math.min(cost, this.burst);
    return this.#tokens >= need ? 0 : Math.ceil(((need - this.#tokens) / this.rate) * 1000);
  }

  /** Full again: the bucket can be forgotten. */
  idle(now: number): boolean {
    return this.#tokens + ((now - this.#at) / 1000) * this.rate >= this.burst;
  }
}

export type AdmissionVerdict =
  | { ok: true }
  | { ok: false; retryAfterMs: number; scope: 'requests' | 'write bytes' | 'anonymous requests' };

const MAX_TRACKED = 10_000;

/** Buckets by key, at most `MAX_TRACKED`: idle ones are forgotten first (a forgotten key starts full). */
class BucketMap<B extends { idle(now: number): boolean }> {
  readonly #map = new Map<string, B>();

  constructor(private readonly make: (now: number) => B) {}

  get(key: string, now: number): B {
    let b = this.#map.get(key);
    if (!b) {
      if (this.#map.size >= MAX_TRACKED) this.#forgetIdle(now);
      b = this.make(now);
      this.#map.set(key, b);
    }
    return b;
  }

  find(key: string): B | undefined {
    return this.#map.get(key);
  }

  #forgetIdle(now: number): void {
    for (const [key, b] of this.#map) if (b.idle(now)) this.#map.delete(key);
    // Still full of busy keys: forget the oldest tenth, so the next new keys do not each
    // scan the whole map again.
    for (const key of this.#map.keys()) {
      if (this.#map.size < MAX_TRACKED * 0.9) break;
      this.#map.delete(key);
    }
  }
}

class StoreBuckets {
  constructor(
    readonly requests: TokenBucket,
    readonly bytes: TokenBucket,
  ) {}

  idle(now: number): boolean {
    return this.requests.idle(now) && this.bytes.idle(now);
  }
}

/** The buckets of every store and anonymous client address this isolate has seen lately. */
export class Admission {
  readonly #stores: BucketMap<StoreBuckets>;
  readonly #addresses: BucketMap<TokenBucket>;

  constructor(
    readonly policy: AdmissionPolicy,
    private readonly clock: () => number = Date.now,
  ) {
    const p = policy;
    this.#stores = new BucketMap(
      (now) =>
        new StoreBuckets(
          new TokenBucket(p.requestsPerSecond, p.requestBurst, now),
          new TokenBucket(p.writeBytesPerSecond, p.writeBurstBytes, now),
        ),
    );
    this.#addresses = new BucketMap(
      (now) => new TokenBucket(p.anonymousRequestsPerSecond, p.anonymousRequestBurst, now),
    );
  }

  admit(store: string, writeBytes: number): AdmissionVerdict {
    const now = this.clock();
    const buckets = this.#stores.get(store, now);
    const wait = buckets.requests.take(1, now);
    if (wait > 0) return { ok: false, retryAfterMs: wait, scope: 'requests' };
    if (writeBytes > 0) {
      const byteWait = buckets.bytes.take(writeBytes, now);
      if (byteWait > 0) return { ok: false, retryAfterMs: byteWait, scope: 'write bytes' };
    }
    return { ok: true };
  }

  /** A request no store pays for, charged to the client's address (`addressKey`). */
  admitAnonymous(address: string): AdmissionVerdict {
    const now = this.clock();
    const wait = this.#addresses.get(address, now).take(1, now);
    return wait > 0 ? { ok: false, retryAfterMs: wait, scope: 'anonymous requests' } : { ok: true };
  }

  /** Whether the address has anonymous requests left, taking none. */
  anonymousLeft(address: string): boolean {
    return (this.#addresses.find(address)?.peek(1, this.clock()) ?? 0) === 0;
  }
}

/**
 * The key of a client address for the anonymous buckets: an IPv4 address as is, an IPv6 one by
 * its /64 prefix (one host usually holds a whole /64, so its addresses are one client), and
 * one shared key when the address is unknown (`cf-connecting-ip` is set by Cloudflare's edge;
 * local development may lack it).
 */
export function addressKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1] as string;
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = ip.toLowerCase().split('::');
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const front = groups(head);
  const back = groups(tail);
  const all =
    tail === undefined
      ? front
      : [...front, ...Array(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${all
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** `EDGELOG_ADMISSION` (JSON, any subset of the policy's fields) over the defaults; `off` disables. */
export function admissionFromEnv(value: string | undefined): AdmissionPolicy | false {
  if (value === undefined || value === '') return defaultAdmission;
  if (value === 'off') return false;
  return admissionPolicy(JSON.parse(value) as Partial<AdmissionPolicy>);
}

/** A policy from any subset of its fields, over the defaults. */
export const admissionPolicy = (fields: Partial<AdmissionPolicy>): AdmissionPolicy =>
  AdmissionPolicy.parse({ ...defaultAdmission, ...fields });

/**
 * Who pays for a request, as the app tells admission. `anonymous`: no token to check (none, or
 * one too long to be a token). `token`: `known` when this isolate has verified that token text
 * before (no signature check is needed), and `store()` the store it verifies for (unexpired),
 * else undefined; a valid token for another store than the path's pays for its own store.
 */
export type Payer =
  | { kind: 'anonymous' }
  | { kind: 'token'; known: boolean; store: () => Promise<string | undefined> };

/**
 * The hook in the request path, run before the route does anything but check the token:
 * a request whose token verifies takes a token from that store's request bucket, and a write
 * (POST) to that store's own path takes its body's bytes from its byte bucket
 * (`maxRequestBytes` when the body's length is not declared). Every other request (no token,
 * a WebSocket upgrade whose token comes in its first message, a token that does not verify)
 * takes one from the anonymous bucket of its client address, never from a store's, so no one
 * without a token can use up a store's buckets. A token this isolate has not verified yet is
 * checked only while its address has anonymous requests left: a flood of forged tokens is
 * refused without a signature check each. `policy` (any fields, over the defaults) wins over
 * `EDGELOG_ADMISSION`; `false` turns admission off.
 */
export function admission<E extends { Bindings: { EDGELOG_ADMISSION?: string } }>(
  policy: Partial<AdmissionPolicy> | false | undefined,
  maxRequestBytes: number,
  payerOf: (c: Context<E>) => Payer,
  clock?: () => number,
): MiddlewareHandler<E> {
  let gate: Admission | false | undefined =
    policy === undefined ? undefined : policy && new Admission(admissionPolicy(policy), clock);
  return async (c, next) => {
    gate ??= (() => {
      const p = admissionFromEnv(c.env?.EDGELOG_ADMISSION);
      return p && new Admission(p, clock);
    })();
    if (!gate) return next();
    const address = addressKey(c.req.header('cf-connecting-ip'));
    const payer = payerOf(c);
    const store =
      payer.kind === 'token' && (payer.known || gate.anonymousLeft(address))
        ? await payer.store()
        : undefined;
    let verdict: AdmissionVerdict;
    if (store === undefined) verdict = gate.admitAnonymous(address);
    else {
      // A write body of unknown length (chunked) is charged as the largest one allowed; a
      // request to another store's path is refused (403) before its body is read.
      const declared = Number(c.req.header('content-length') ?? Number.NaN);
      const bytes =
        c.req.method !== 'POST' || store !== c.req.param('store')
          ? 0
          : Number.isFinite(declared) && declared >= 0
            ? declared
            : maxRequestBytes;
      verdict = gate.admit(store, bytes);
    }
    if (verdict.ok) return next();
    const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    const who =
      store === undefined
        ? 'requests without a good token from this address are over their'
        : `store '${store}' is over its ${verdict.scope}`;
    const body: ErrorResponse = {
      error: {
        code: 'RateLimited',
        message: `${who} rate: retry after ${seconds} s`,
        details: { retryAfterMs: verdict.retryAfterMs, scope: verdict.scope },
      },
    };
    return c.json(body, httpStatusOf.RateLimited as 429, { 'Retry-After': String(seconds) });
  };
}
