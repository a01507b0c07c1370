import { error, StoreName } from '@edgelog/core';
import { z } from 'zod';

/** Claims of an edgelog access token (HS256 JWT). */
export const Claims = z.object({
  store: StoreName,
  role: z.enum(['reader', 'writer', 'admin']),
  /** Stream-name prefixes the token may read and write; absent = every stream of the store. */
  streams: z.optional(z.array(z.string().min(1).max(200)).min(1).max(100)),
  /** Who acts; stamped into each written event's metadata as `$author`. */
  sub: z.optional(z.string().min(1).max(200)),
  /** Expiry, seconds since the epoch. Required: tokens without one are refused. */
  exp: z.number().int(),
  iat: z.optional(z.number().int()),
});
export type Claims = z.infer<typeof Claims>;
export type Role = Claims['role'];

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64url(s: string): Uint8Array {
  const b64 = s.replaceAll('-', '+').replaceAll('_', '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const keys = new Map<string, Promise<CryptoKey>>();
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]);
    keys.set(secret, key);
  }
  return key;
}

/** Signs claims as an HS256 JWT. Used by tests; `scripts/token.mjs` does the same in Node. */
export async function signToken(claims: Claims, secret: string): Promise<string> {
  const header = base64url(encoder.encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));
  const payload = base64url(encoder.encode(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign(
    'HMAC',
    await hmacKey(secret),
    encoder.encode(`${header}.${payload}`),
  );
  return `${header}.${payload}.${base64url(new Uint8Array(signature))}`;
}

const unauthorized = (message: string) => error('Unauthorized', message);

const Hs256Header = z.object({ alg: z.literal('HS256') });

/**
 * Tokens verified lately, by secret and token text: a client sends the same token with every
 * request, and a token's signature and claims never change, so each is checked once (expiry
 * is still checked on every use). Bounded; the oldest entry goes first.
 */
const verified = new Map<string, Claims>();
const VERIFIED_MAX = 1000;

export const TOKEN_EXPIRED = 'token has expired';

/**
 * Whether the token's `exp` has passed. Checked on every use of a token, not only when it is
 * verified: a WebSocket keeps its claims for as long as it stays open.
 */
export const hasExpired = (claims: Claims, nowSeconds = Date.now() / 1000): boolean =>
  claims.exp <= nowSeconds;

/**
 * Longer than any token with valid claims (100 stream prefixes of 200 characters encode to
 * about 28,000): refused without being decoded.
 */
export const MAX_TOKEN_CHARS = 32 * 1024;

const cacheKey = (token: string, secret: string) => `${secret.length}:${secret}:${token}`;

/** Whether this isolate has verified the token's signature and claims lately (its expiry aside). */
export const isKnownToken = (token: string, secret: string): boolean => verified.has(cacheKey(token, secret));

/** Verifies an HS256 JWT and returns its claims; throws Unauthorized (401) otherwise. */
export async function verifyToken(
  token: string,
  secret: string,
  nowSeconds = Date.now() / 1000,
): Promise<Claims> {
  if (token.length > MAX_TOKEN_CHARS) throw unauthorized('malformed token');
  const key = cacheKey(token, secret);
  const claims = verified.get(key) ?? (await verifySignedClaims(token, secret));
  if (hasExpired(claims, nowSeconds)) throw unauthorized(TOKEN_EXPIRED);
  if (!verified.has(key)) {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
    verified.set(key, claims);
  }
  return claims;
}

async function verifySignedClaims(token: string, secret: string): Promise<Claims> {
  const parts = token.split('.');
  if (parts.length !== 3) throw unauthorized('malformed token');
  const [header, payload, signature] = parts as [string, string, string];
  let headerJson: unknown;
  let payloadJson: unknown;
  let signatureBytes: Uint8Array;
  try {
    headerJson = JSON.parse(new TextDecoder().decode(fromBase64url(header)));
    payloadJson = JSON.parse(new TextDecoder().decode(fromBase64url(payload)));
    signatureBytes = fromBase64url(signature);
  } catch {
    throw unauthorized('malformed token');
  }
  if (!Hs256Header.safeParse(headerJson).success) throw unauthorized('token algorithm must be HS256');
  const ok = await crypto.subtle.verify(
    'HMAC',
    await hmacKey(secret),
    signatureBytes,
    encoder.encode(`${header}.${payload}`),
  );
  if (!ok) throw unauthorized('token signature is invalid');
  const claims = Claims.safeParse(payloadJson);
  if (!claims.success) throw unauthorized('token claims are invalid');
  return claims.data;
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | null | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

/** Throws unless the secret is configured: the server never falls back to a built-in secret. */
export function jwtSecret(env: { EDGELOG_JWT_SECRET?: string }): string {
  const secret = env.EDGELOG_JWT_SECRET;
  if (!secret) throw error('Internal', 'EDGELOG_JWT_SECRET is not configured');
  return secret;
}

/** Throws Forbidden unless the token belongs to `store`. */
export function checkStore(claims: Claims, store: string): void {
  if (claims.store !== store)
    throw error('Forbidden', `this token is for store '${claims.store}', not '${store}'`);
}

export function canWrite(claims: Claims): boolean {
  return claims.role === 'writer' || claims.role === 'admin';
}

/** Throws Forbidden unless the token may write. */
export function checkWriter(claims: Claims): void {
  if (!canWrite(claims)) throw error('Forbidden', `role '${claims.role}' cannot write`);
}

/**
 * Throws Forbidden unless the token is an admin's. `admin` is `writer` plus the operator's
 * reads: the parked events of edge projections (they hold data of every stream and the
 * projection's error messages).
 */
export function checkAdmin(claims: Claims): void {
  if (claims.role !== 'admin') throw error('Forbidden', `role '${claims.role}' is not admin`);
}

export function streamAllowed(claims: Claims, stream: string): boolean {
  return claims.streams === undefined || claims.streams.some((p) => stream.startsWith(p));
}

/** Throws Forbidden unless the token's stream prefixes cover `stream`. */
export function checkStream(claims: Claims, stream: string): void {
  if (!streamAllowed(claims, stream))
    throw error(
      'Forbidden',
      `this token may not access stream '${stream}' (allowed prefixes: ${claims.streams?.join(', ')})`,
    );
}
