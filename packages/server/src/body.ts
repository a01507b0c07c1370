import { fromZodError, type Limits, payloadTooLarge, utf8Length, validationError } from '@edgelog/core';
import type { z } from 'zod';
import { parseJsonBounded } from './json-depth.ts';

/** Reads a JSON body within `maxRequestBytes`; 413 when larger, 400 when not JSON. */
export async function readJson(request: Request, limits: Limits): Promise<unknown> {
  const length = request.headers.get('content-length');
  const declared = Number(length ?? '0');
  if (declared > limits.maxRequestBytes)
    throw payloadTooLarge('request body', declared, limits.maxRequestBytes);
  // A declared length is the body's length (HTTP frames the body by it); a body without one
  // (chunked) is measured once read.
  const text = await request.text();
  if (length === null) {
    const bytes = utf8Length(text);
    if (bytes > limits.maxRequestBytes) throw payloadTooLarge('request body', bytes, limits.maxRequestBytes);
  }
  try {
    return parseJsonBounded(text);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'Validation') throw e;
    throw validationError([
      { path: '', message: `malformed JSON: ${e instanceof Error ? e.message : 'unparsable'}` },
    ]);
  }
}

/** Parses with a core schema; a violation is a 400 naming each field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw fromZodError(parsed.error, prefix);
  return parsed.data;
}
