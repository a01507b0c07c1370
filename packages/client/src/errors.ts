import type { ErrorCode, WireError } from '@edgelog/core';

/**
 * The client's error: the same `{ code, message, details }` shape as core's `EdgelogError`,
 * without core's zod schemas, so the page and worker bundles stay small. Identify it by
 * `code` (comlink and the network carry errors as plain data).
 */
export class ClientError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = code;
    this.code = code;
    this.details = details;
  }
}

/** Plain data for an error crossing the worker boundary or the wire. */
export function toPlainError(e: unknown): WireError {
  if (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string') {
    const { code, message, details } = e as { code: ErrorCode; message?: unknown; details?: unknown };
    const plain: WireError = { code, message: typeof message === 'string' ? message : code };
    if (typeof details === 'object' && details !== null) plain.details = details as Record<string, unknown>;
    return plain;
  }
  return { code: 'Internal', message: e instanceof Error ? e.message : String(e) };
}

export function fromPlainError(e: unknown): ClientError {
  const plain = toPlainError(e);
  return new ClientError(plain.code, plain.message, plain.details);
}

export const wrongExpectedVersion = (stream: string, expected: unknown, actual: number) =>
  new ClientError(
    'WrongExpectedVersion',
    `stream '${stream}': expected version ${String(expected)}, actual ${actual}`,
    {
      stream,
      expected,
      actual,
    },
  );

export const streamNotFound = (stream: string) =>
  new ClientError('StreamNotFound', `stream '${stream}' does not exist`, { stream });

export const idempotencyConflict = (stream: string, storedIds: string[], newIds: string[]) =>
  new ClientError(
    'IdempotencyConflict',
    `stream '${stream}': ${storedIds.length} of the ${storedIds.length + newIds.length} event ids are stored already; retry with all of the original events or none of them`,
    { stream, storedIds, newIds },
  );

export const payloadTooLarge = (what: string, size: number, limit: number) =>
  new ClientError('PayloadTooLarge', `${what} is ${size} bytes, over the limit of ${limit}`, {
    what,
    size,
    limit,
  });

export const validationError = (path: string, message: string) =>
  new ClientError('Validation', path ? `${path}: ${message}` : message, { issues: [{ path, message }] });
