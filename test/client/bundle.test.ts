import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// build.mjs fails when a bundle is over its gzip budget, when zod reaches the page entry, or
// when full zod (not zod/mini) reaches a worker bundle: an import of the wrong core module
// (one whose top level builds zod schemas) does that silently.
describe('the SDK bundles', () => {
  it('stay within their budgets, with no zod on the page and no full zod in the worker', () => {
    const build = join(
      dirname(fileURLToPath(import.meta.url)),
      '..',
      '..',
      'packages',
      'client',
      'build.mjs',
    );
    const r = spawnSync(process.execPath, [build], { encoding: 'utf8' });
    expect(r.stdout).not.toMatch(/OVER|warning/);
    expect(r.status).toBe(0);
  }, 60_000);
});
