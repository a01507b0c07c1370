/** Ports: what core needs from a platform, passed in by the adapters. */

/** Returns the current time. Stores stamp `recordedAt` from it. */
export type Clock = () => Date;

/** Returns a new unique id (a UUID). */
export type IdSource = () => string;

export const systemClock: Clock = () => new Date();

const platformCrypto = (globalThis as { crypto?: { getRandomValues?: <T extends Uint8Array>(a: T) => T } })
  .crypto;

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Random bytes for ids, drawn from the platform's CSPRNG 4 KiB at a time: one
 * `getRandomValues` call costs about as much as building an id (5-25 us in Chromium and
 * Node), so a call per id made the ids of a 100-event append cost more than the rest of its
 * validation. Every byte is used once.
 */
const POOL_BYTES = 4096;
let pool: Uint8Array | undefined;
let poolAt = POOL_BYTES;

function randomBytes10(): Uint8Array {
  if (poolAt + 10 > POOL_BYTES || pool === undefined) {
    if (!platformCrypto?.getRandomValues)
      throw new Error('crypto.getRandomValues is not available; pass an IdSource');
    pool = platformCrypto.getRandomValues(new Uint8Array(POOL_BYTES));
    poolAt = 0;
  }
  const at = poolAt;
  poolAt += 10;
  return pool.subarray(at, at + 10);
}

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids made later sort
 * later, so the stores' id indexes grow at their right edge instead of at random places: on
 * the edge an insert into a 100,000-id index costs a few microseconds instead of tens.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const r = randomBytes10();
  const b = new Array<number>(16);
  let ms = Math.max(0, Math.floor(nowMs));
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  for (let i = 0; i < 10; i++) b[6 + i] = r[i] as number;
  b[6] = 0x70 | ((b[6] as number) & 0x0f);
  b[8] = 0x80 | ((b[8] as number) & 0x3f);
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += hex[b[i] as number];
  }
  return s;
}

/** Event and command ids: time-ordered UUIDv7 (see `uuidv7`). */
export const randomId: IdSource = () => uuidv7();
