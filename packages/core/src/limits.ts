/**
 * Limits every edgelog store honours. A store may be configured stricter, never looser than
 * what its clients assume. Sizes count UTF-8 bytes of the event's JSON as sent.
 */
export interface Limits {
  /** Largest single event (JSON of `{ id, type, schemaVersion, data, metadata }`), bytes. Default 64 KiB. */
  maxEventBytes: number;
  /** Most events in one append or one pushed commit. Default 1,000. */
  maxEventsPerAppend: number;
  /** Largest request body, bytes. Default 4 MiB. */
  maxRequestBytes: number;
  /** Most commits in one push. Default 100. */
  maxCommitsPerPush: number;
  /** Page size of reads when none is asked for. Default 500. */
  defaultPageSize: number;
  /** Largest page a read may ask for. Default 5,000. */
  maxPageSize: number;
  /**
   * Most log positions one read of the global log examines (never fewer than its page
   * limit). A filtered read that matches few events stops there and answers with the
   * matches found so far and `scannedTo`, the last position it examined, so that one read is
   * bounded work however sparse the filter. Default 10,000.
   */
  maxScanPerRead: number;
}

export const defaultLimits: Readonly<Limits> = Object.freeze({
  maxEventBytes: 64 * 1024,
  maxEventsPerAppend: 1000,
  maxRequestBytes: 4 * 1024 * 1024,
  maxCommitsPerPush: 100,
  defaultPageSize: 500,
  maxPageSize: 5000,
  maxScanPerRead: 10_000,
});

/** How many log positions a global read with page `limit` may examine under `limits`. */
export function scanBudget(limits: Pick<Limits, 'maxScanPerRead'>, limit: number): number {
  return Math.max(limit, limits.maxScanPerRead);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the whole 7-bit range is the point
const ASCII = /^[\x00-\x7f]*$/;

/** UTF-8 byte length of a string, without TextEncoder (core has no platform API). */
export function utf8Length(s: string): number {
  // Most event JSON is ASCII: one byte per code unit, checked natively.
  if (ASCII.test(s)) return s.length;
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Size of an event as counted against `maxEventBytes`. */
export function eventSize(event: unknown): number {
  return utf8Length(JSON.stringify(event) ?? '');
}
