// How wrangler reads `.dev.vars`: dotenv's `parse` (the version wrangler bundles), so the
// scripts that make development tokens see the secret the local server sees.

// dotenv's line rule: an optional `export `, KEY = or KEY:, then a single-, double- or
// backtick-quoted value (which may hold `#` and newlines) or an unquoted one, which ends at the
// first `#`; a comment may follow either.
const LINE =
  /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/gm;

/**
 * The variables of a dotenv text, as wrangler's dotenv reads them: values trimmed, quotes
 * removed, `\n` and `\r` unescaped in double quotes only. Wrangler then expands `$VAR` and
 * `${VAR}` references (dotenv-expand); this does not, so a value with `$` may differ.
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
