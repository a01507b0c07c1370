import type { ExpectedVersionValue } from './errors.ts';

/**
 * Whether a stream at version `actual` satisfies `expected` (missing = `'any'`, `0` =
 * `'no_stream'`). Free of zod, so the browser worker bundles it without the schemas.
 */
export function matchesExpectedVersion(expected: ExpectedVersionValue | undefined, actual: number): boolean {
  if (expected === undefined || expected === 'any') return true;
  if (expected === 'no_stream' || expected === 0) return actual === 0;
  if (expected === 'stream_exists') return actual > 0;
  return actual === expected;
}
