import { fromZodError, type Limits, payloadTooLarge, utf8Length, validationError } from '@edgelog/core';
import type { z } from 'zod';
import { parseJsonBounded } from './json-depth.ts';

/**
 * Reads a JSON body within `maxRequestBytes`; 413 when larger, 400 when not JSON. Answers the
 * value and the body's UTF-8 size, measured: a Content-Length header only refuses early, since
 * a request may carry one that is not its body's length (with chunked encoding, workerd hands
 * the Worker both).
 */
export async function readJsonSized(
  request: Request,
  limits: Limits,
): Promise<{ value: unknown; bytes: number }> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > limits.maxRequestBytes)
    throw payloadTooLarge('request body', declared, limits.maxRequestBytes);
  const text = await request.text();
  const bytes = utf8Length(text);
  if (bytes > limits.maxRequestBytes) throw payloadTooLarge('request body', bytes, limits.maxRequestBytes);
  try {
    return { value: parseJsonBounded(text), bytes };
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
