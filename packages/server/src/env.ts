/**
 * Bindings that `wrangler types` cannot see: secrets and `.dev.vars` values.
 * `EDGELOG_JWT_SECRET` is a wrangler secret in production and a `.dev.vars` entry locally;
 * `EDGELOG_BENCH=1` enables the bench-only sequencer bypass and must never be set in production.
 * `EDGELOG_CORS_ORIGINS` (a var) names the browser origins allowed to call the API.
 * `EDGELOG_WRITE_VALIDATION=off` stops checking appended data against the registry (write-schema.ts).
 */
declare global {
  namespace Cloudflare {
    interface Env {
      EDGELOG_JWT_SECRET?: string;
      EDGELOG_BENCH?: string;
      /** Per-store rate limits as JSON (see admission.ts), or `off`. */
      EDGELOG_ADMISSION?: string;
      /** Comma list of origins whose pages may call the API, or `*`; unset = loopback only. */
      EDGELOG_CORS_ORIGINS?: string;
      /** `off`: appended data is not checked against the configured registry. */
      EDGELOG_WRITE_VALIDATION?: string;
    }
  }
}

export type ServerEnv = Cloudflare.Env;
