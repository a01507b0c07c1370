import { z } from 'zod';
import { wrongExpectedVersion } from './errors.ts';
import { matchesExpectedVersion } from './version-rules.ts';

/**
 * `'any'`: no check. `'no_stream'` (or `0`): the stream must not exist. `'stream_exists'`: it must.
 * `n`: the stream's version must be exactly `n` (the version the writer last saw).
 */
export const ExpectedVersion = z.union([
  z.literal('any'),
  z.literal('no_stream'),
  z.literal('stream_exists'),
  z.number().int().nonnegative(),
]);
export type ExpectedVersion = z.infer<typeof ExpectedVersion>;

/** Throws WrongExpectedVersion unless a stream at version `actual` satisfies `expected`. */
export function checkExpectedVersion(
  stream: string,
  expected: ExpectedVersion | undefined,
  actual: number,
): void {
  if (!matchesExpectedVersion(expected, actual))
    throw wrongExpectedVersion(stream, expected ?? 'any', actual);
}
