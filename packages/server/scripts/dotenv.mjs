// How wrangler dev (4.x) reads its local variables, so the scripts that make development
// tokens see the secret the local server sees: `.dev.vars` with dotenv's `parse` (the version
// wrangler bundles) and nothing more; without `.dev.vars`, `.env` then `.env.local` (the later
// wins), whose values dotenv-expand then expands.

// dotenv's line rule: an optional `export `, KEY = or KEY:, then a single-, double- or
// backtick-quoted value (which may hold `#` and newlines) or an unquoted one, which ends at the
// first `#`; a comment may follow either.
const LINE =
  /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/gm;

/**
 * The variables of a dotenv text, as wrangler's dotenv reads them: values trimmed, quotes
 * removed, `\n` and `\r` unescaped in double quotes only. `$VAR` is left as written, as
 * wrangler leaves it in `.dev.vars` (only its `.env` fallback is expanded: `wranglerDevVars`).
 */
export function parseDotenv(text) {
  const vars = {};
  const lines = text.replace(/\r\n?/gm, '\n');
  for (const match of lines.matchAll(LINE)) {
    let value = (match[2] ?? '').trim();
    const quote = value[0];
    value = value.replace(/^(['"`])([\s\S]*)\1$/gm, '$2');
    if (quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
    vars[match[1]] = value;
  }
  return vars;
}

/**
 * The variables wrangler dev gives the Worker from files in its config's directory: `.dev.vars`
 * as it is when that file exists; else, unless `CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV=false`,
 * `.env` and `.env.local` merged (the later wins) and expanded as dotenv-expand 12 does (over
 * `process.env` too only with `CLOUDFLARE_INCLUDE_PROCESS_ENV=true`). `read(name)` answers a
 * file's text, or undefined when there is none. `source` names the files read.
 */
export function wranglerDevVars(read, env = {}) {
  const devVars = read('.dev.vars');
  if (devVars !== undefined) return { vars: parseDotenv(devVars), source: '.dev.vars' };
  if (String(env.CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV).toLowerCase() === 'false')
    return { vars: {}, source: undefined };
  const files = ['.env', '.env.local'].filter((name) => read(name) !== undefined);
  const parsed = Object.assign({}, ...files.map((name) => parseDotenv(read(name))));
  const processEnv = String(env.CLOUDFLARE_INCLUDE_PROCESS_ENV).toLowerCase() === 'true' ? { ...env } : {};
  return { vars: expand(parsed, processEnv), source: files.length > 0 ? files.join(', ') : undefined };
}

// dotenv-expand 12's `expand`, as wrangler calls it: each value in file order, over the values
// before it and `processEnv` (which wins for a key it holds); `\$` stays a literal `$`.
function expand(parsed, processEnv) {
  const running = {};
  const out = {};
  for (const [key, raw] of Object.entries(parsed)) {
    const value =
      processEnv[key] && processEnv[key] !== raw ? processEnv[key] : expandValue(raw, processEnv, running);
    out[key] = running[key] = value.replace(/\\\$/g, '$');
  }
  return out;
}

function expandValue(value, processEnv, running) {
  const env = { ...running, ...processEnv };
  const reference = /(?<!\\)\${([^{}]+)}|(?<!\\)\$([A-Za-z_][A-Za-z0-9_]*)/g;
  const seen = new Set();
  let result = value;
  let match = reference.exec(result);
  while (match !== null) {
    seen.add(result);
    const [template, braced, bare] = match;
    const expression = braced || bare;
    const splitter = expression.match(/(:\+|\+|:-|-)/)?.[0] ?? null;
    const parts = expression.split(splitter);
    const key = parts.shift();
    let fallback;
    let found;
    if (splitter === ':+' || splitter === '+') {
      fallback = env[key] ? parts.join(splitter) : '';
      found = null;
    } else {
      fallback = parts.join(splitter);
      found = env[key];
    }
    result = result.replace(template, found ? (seen.has(found) ? fallback : found) : fallback);
    if (result === running[key]) break;
    reference.lastIndex = 0;
    match = reference.exec(result);
  }
  return result;
}
