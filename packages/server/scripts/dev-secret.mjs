// Shared by scripts/start.mjs, scripts/token.mjs and test/bench/edge-commit.mjs: the JWT secret the local server uses.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wranglerDevVars } from './dotenv.mjs';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Development default, used only when wrangler's files hold no EDGELOG_JWT_SECRET. Never in production. */
export const DEV_DEFAULT_SECRET = 'edgelog-dev-secret-do-not-use-in-production';

/** The local variables wrangler dev reads (`.dev.vars`, else `.env`, `.env.local`: dotenv.mjs). */
export function devVars() {
  const read = (name) => {
    const file = join(root, name);
    return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  };
  return wranglerDevVars(read, process.env);
}

/** The secret and where it came from. */
export function devSecret() {
  const { vars, source } = devVars();
  return vars.EDGELOG_JWT_SECRET
    ? { secret: vars.EDGELOG_JWT_SECRET, source }
    : { secret: DEV_DEFAULT_SECRET, source: 'development default' };
}

/** Environment that keeps wrangler off the network (metrics, error reports, cf fetch). */
export const quietWrangler = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
};
