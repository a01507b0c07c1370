import { z } from 'zod';

/**
 * Every error edgelog raises has a literal `code`. Identify errors by `code`, never by
 * `instanceof`: errors cross the worker boundary (comlink) and the network as plain data.
 */
export const ErrorCode = z.enum([
  'WrongExpectedVersion',
  'StreamNotFound',
  'Validation',
  'IdempotencyConflict',
  'PayloadTooLarge',
  'Unauthorized',
  'Forbidden',
  'NotFound',
  'Offline',
  'CommandRejected',
  'RateLimited',
  /** A WebSocket route asked without `Upgrade: websocket`. */
  'UpgradeRequired',
  'Timeout',
  'Closed',
  'Definition',
  'Internal',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** The wire shape of every error answer: `{ error: { code, message, details? } }`. */
export const WireError = z.object({
  code: ErrorCode,
  message: z.string(),
  details: z.optional(z.record(z.string(), z.unknown())),
});
export type WireError = z.infer<typeof WireError>;
export const ErrorResponse = z.object({ error: WireError });
export type ErrorResponse = z.infer<typeof ErrorResponse>;

/** The one place where an error code becomes an HTTP status. */
export const httpStatusOf: Record<ErrorCode, number> = {
  WrongExpectedVersion: 409,
  StreamNotFound: 404,
  Validation: 400,
  IdempotencyConflict: 409,
  PayloadTooLarge: 413,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  Offline: 503,
  CommandRejected: 422,
  RateLimited: 429,
  UpgradeRequired: 426,
  Timeout: 504,
  Closed: 503,
  Definition: 500,
  Internal: 500,
};

export type ExpectedVersionValue = 'any' | 'no_stream' | 'stream_exists' | number;

/** Details carried by each code; codes not listed carry a free-form record. */
export interface ErrorDetails {
  WrongExpectedVersion: { stream: string; expected: ExpectedVersionValue; actual: number };
  StreamNotFound: { stream: string };
  Validation: { issues: ValidationIssue[] };
  IdempotencyConflict: { stream: string; storedIds: string[]; newIds: string[] };
  PayloadTooLarge: { limit: number; size: number; what: string };
}

export interface ValidationIssue {
  path: string;
  message: string;
}

type DetailsOf<C extends ErrorCode> = C extends keyof ErrorDetails
  ? ErrorDetails[C]
  : Record<string, unknown> | undefined;

/** Base of every edgelog error. `code` is a literal; `details` is typed per code. */
export class EdgelogError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: DetailsOf<C>;

  constructor(code: C, message: string, details: DetailsOf<C>) {
    super(message);
    this.name = code;
    this.code = code;
    this.details = details;
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message };
    if (this.details !== undefined) wire.details = this.details as Record<string, unknown>;
    return wire;
  }
}

export const wrongExpectedVersion = (stream: string, expected: ExpectedVersionValue, actual: number) =>
  new EdgelogError(
    'WrongExpectedVersion',
    `stream '${stream}': expected version ${String(expected)}, actual ${actual}`,
    { stream, expected, actual },
  );

export const streamNotFound = (stream: string) =>
  new EdgelogError('StreamNotFound', `stream '${stream}' does not exist`, { stream });

export const idempotencyConflict = (stream: string, storedIds: string[], newIds: string[]) =>
  new EdgelogError(
    'IdempotencyConflict',
    `stream '${stream}': ${storedIds.length} of the ${storedIds.length + newIds.length} event ids are stored already; retry with all of the original events or none of them`,
    { stream, storedIds, newIds },
  );

export const payloadTooLarge = (what: string, size: number, limit: number, unit = 'bytes') =>
  new EdgelogError('PayloadTooLarge', `${what} is ${size} ${unit}, over the limit of ${limit}`, {
    what,
    size,
    limit,
  });

export const validationError = (issues: ValidationIssue[]) =>
  new EdgelogError(
    'Validation',
    issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ') || 'invalid input',
    { issues },
  );

/** Turns zod issues into a Validation error whose message names each field. */
export const fromZodError = (error: z.ZodError, prefix = ''): EdgelogError<'Validation'> =>
  validationError(
    error.issues.map((issue) => ({
      path: [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.'),
      message: issue.message,
    })),
  );

export const error = <C extends Exclude<ErrorCode, keyof ErrorDetails>>(
  code: C,
  message: string,
  details?: Record<string, unknown>,
) => new EdgelogError<C>(code, message, details as DetailsOf<C>);

/** True when `e` carries an edgelog `code` (optionally a given one), whatever its class. */
export function isEdgelogError<C extends ErrorCode>(
  e: unknown,
  code?: C,
): e is { code: C; message: string; details: DetailsOf<C> } {
  if (typeof e !== 'object' || e === null) return false;
  const c = (e as { code?: unknown }).code;
  if (!ErrorCode.safeParse(c).success) return false;
  return code === undefined || c === code;
}

/** Rebuilds a typed error from its wire shape (or anything carrying code and message). */
export function fromWire(wire: unknown): EdgelogError {
  const parsed = WireError.safeParse(wire);
  if (!parsed.success) {
    const message =
      typeof wire === 'object' && wire !== null && typeof (wire as { message?: unknown }).message === 'string'
        ? (wire as { message: string }).message
        : 'unknown error';
    return new EdgelogError('Internal', message, undefined);
  }
  return new EdgelogError(parsed.data.code, parsed.data.message, parsed.data.details as never);
}

/** Any thrown value as a wire error; unknown errors become Internal without leaking stacks. */
export function toWireError(e: unknown): WireError {
  if (e instanceof EdgelogError) return e.toWire();
  if (isEdgelogError(e)) return fromWire(e).toWire();
  return { code: 'Internal', message: e instanceof Error ? e.message : 'internal error' };
}
