#!/usr/bin/env node
// `npm start`: builds the demo app, then runs the edge server and the app on
// http://127.0.0.1:8787 (wrangler dev, local SQLite-backed Durable Objects in .wrangler/state).
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { devSecret, quietWrangler, root } from '../packages/server/scripts/dev-secret.mjs';

const built = spawnSync(process.execPath, [join(root, 'apps', 'demo', 'build.mjs')], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const { secret, source } = devSecret();
const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const args = [
  wrangler,
  'dev',
  '--ip',
  '127.0.0.1',
  '--port',
  '8787',
  '--persist-to',
  join(root, '.wrangler', 'state'),
];
// Unless the secret is from .dev.vars, the one found (.env's or the documented development
// secret) is passed as well; the Worker itself has no default.
if (source !== '.dev.vars') args.push('--var', `EDGELOG_JWT_SECRET:${secret}`);
// The demo hands out development tokens (POST /demo/token); never set this in a deployment.
args.push('--var', 'EDGELOG_DEMO:1');
args.push(...process.argv.slice(2));

process.stdout.write(
  [
    'edgelog: the demo app and the edge server on http://127.0.0.1:8787',
    '  open it in two browsers (or http://127.0.0.1:8787/?user=alice and ?user=bob) to see sync',
    `  JWT secret: ${source}${source === '.dev.vars' ? '' : ' (copy .dev.vars.example to .dev.vars to set your own)'}`,
    '  get a development token:  npm run token -- --store demo --role writer',
    '  then:  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8787/v1/stores/demo/events',
    '  API description: http://127.0.0.1:8787/v1/openapi.json',
    '',
  ].join('\n'),
);

const child = spawn(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, ...quietWrangler },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));
