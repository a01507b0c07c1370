// Gzipped size of the SDK's page entry and worker bundles (packages/client/build.mjs).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const r = spawnSync(process.execPath, [join(root, 'packages', 'client', 'build.mjs')], { encoding: 'utf8' });
if (r.status !== 0) {
  process.stderr.write(r.stderr);
  process.exit(r.status ?? 1);
}
console.log(`## Client SDK bundles (\`node packages/client/build.mjs\`)

Minified ESM built with esbuild; gzip level 9. Targets: page entry at most 10 KB, worker at most 40 KB.
The prebuilt worker has no app code; an app's worker adds its own schemas, deciders and projections
(the demo's worker carries full zod for its event schemas).

${r.stdout.trim()}`);
