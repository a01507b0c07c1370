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

/** The millisecond and 12-bit counter of the last id made (see `uuidv7`). */
let lastMs = -1;
let counter = 0;
/** The ids' text up to the counter for millisecond `prefixMs` (the ids of one append share it). */
let prefixMs = -1;
let prefix = '';
/** How far behind the last id's millisecond a clock may read and still count as the same clock. */
const CLOCK_SLACK_MS = 10_000;

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, a 12-bit counter, then 62 random bits.
 * Ids made later sort later, also within one millisecond (RFC 9562 section 6.2, method 1: the
 * counter starts at a random value below 2048 in each new millisecond and counts up; if it
 * runs out, the id borrows the next millisecond). So the stores' id indexes grow at their right
 * edge instead of at random places (on the edge an insert into a 100,000-id index costs a few
 * microseconds instead of tens), and the ids of one append arrive sorted, which lets the
 * repeated-id check take one pass. A clock that steps back by up to `CLOCK_SLACK_MS` keeps the
 * order; an explicit time further back starts afresh at that time.
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
  const now = Math.max(0, Math.floor(nowMs));
  if (now > lastMs || now < lastMs - CLOCK_SLACK_MS) {
    lastMs = now;
    counter = ((r[at]! & 0x07) << 8) | r[at + 1]!;
  } else if (counter < 0xfff) {
    counter++;
  } else {
    lastMs++;
    counter = ((r[at]! & 0x07) << 8) | r[at + 1]!;
  }
  if (prefixMs !== lastMs) {
    let ms = lastMs;
    let time = '';
    for (let i = 0; i < 6; i++) {
      time = hex[ms % 256]! + time;
      ms = Math.floor(ms / 256);
    }
    prefix = `${time.slice(0, 8)}-${time.slice(8)}-`;
    prefixMs = lastMs;
  }
  return (
    prefix +
    `${hex[0x70 | (counter >> 8)]}${hex[counter & 0xff]}-` +
    `${hex[0x80 | (r[at + 2]! & 0x3f)]}${hex[r[at + 3]!]}-` +
    `${hex[r[at + 4]!]}${hex[r[at + 5]!]}${hex[r[at + 6]!]}${hex[r[at + 7]!]}${hex[r[at + 8]!]}${hex[r[at + 9]!]}`
  );
}

/** Event and command ids: time-ordered UUIDv7 (see `uuidv7`). */
export const randomId: IdSource = () => uuidv7();
