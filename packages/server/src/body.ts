import { fromZodError, type Limits, payloadTooLarge, validationError } from '@edgelog/core';
import type { z } from 'zod';
import { parseJsonBounded } from './json-depth.ts';

const decoder = new TextDecoder();

/** Reads a JSON body within `maxRequestBytes`; 413 when larger, 400 when not JSON. */
export async function readJson(request: Request, limits: Limits): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > limits.maxRequestBytes)
    throw payloadTooLarge('request body', declared, limits.maxRequestBytes);
  const bytes = await request.arrayBuffer();
  if (bytes.byteLength > limits.maxRequestBytes)
    throw payloadTooLarge('request body', bytes.byteLength, limits.maxRequestBytes);
  const text = decoder.decode(bytes);
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
