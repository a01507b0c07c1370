/** The wait a `RateLimited` answer asked for (`details.retryAfterMs`), else 0. */
export function retryAfterOf(e: unknown): number {
  if ((e as { code?: unknown })?.code !== 'RateLimited') return 0;
  const ms = (e as { details?: { retryAfterMs?: unknown } }).details?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.min(ms, 5 * 60_000) : 0;
}
