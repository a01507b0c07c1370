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
let pool = new Uint8Array(0);
let poolAt = 0;

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids made later sort
 * later, so the stores' id indexes grow at their right edge instead of at random places: on
 * the edge an insert into a 100,000-id index costs a few microseconds instead of tens.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (poolAt + 10 > pool.length) {
    if (!platformCrypto?.getRandomValues)
      throw new Error('crypto.getRandomValues is not available; pass an IdSource');
    pool = platformCrypto.getRandomValues(new Uint8Array(POOL_BYTES));
    poolAt = 0;
  }
  const r = pool;
  const at = poolAt;
  poolAt += 10;
  let ms = Math.max(0, Math.floor(nowMs));
  let time = '';
  for (let i = 0; i < 6; i++) {
    time = hex[ms % 256]! + time;
    ms = Math.floor(ms / 256);
  }
  return (
    `${time.slice(0, 8)}-${time.slice(8)}-` +
    `${hex[0x70 | (r[at]! & 0x0f)]}${hex[r[at + 1]!]}-` +
    `${hex[0x80 | (r[at + 2]! & 0x3f)]}${hex[r[at + 3]!]}-` +
    `${hex[r[at + 4]!]}${hex[r[at + 5]!]}${hex[r[at + 6]!]}${hex[r[at + 7]!]}${hex[r[at + 8]!]}${hex[r[at + 9]!]}`
  );
}

/** Event and command ids: time-ordered UUIDv7 (see `uuidv7`). */
export const randomId: IdSource = () => uuidv7();
