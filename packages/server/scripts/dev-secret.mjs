// Shared by scripts/start.mjs, scripts/token.mjs and test/bench/edge-commit.mjs: the JWT secret the local server uses.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDotenv } from './dotenv.mjs';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Development default, used only when .dev.vars has no EDGELOG_JWT_SECRET. Never in production. */
export const DEV_DEFAULT_SECRET = 'edgelog-dev-secret-do-not-use-in-production';

/** Values of `.dev.vars`, read as wrangler reads them (dotenv.mjs), or {} when there is none. */
export function devVars() {
  const file = join(root, '.dev.vars');
  return existsSync(file) ? parseDotenv(readFileSync(file, 'utf8')) : {};
}

/** The secret and where it came from. */
export function devSecret() {
  const fromFile = devVars().EDGELOG_JWT_SECRET;
  return fromFile
    ? { secret: fromFile, source: '.dev.vars' }
    : { secret: DEV_DEFAULT_SECRET, source: 'development default' };
}

/** Environment that keeps wrangler off the network (metrics, error reports, cf fetch). */
export const quietWrangler = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
};
