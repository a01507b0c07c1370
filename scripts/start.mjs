#!/usr/bin/env node
// `npm start`: the edge server on http://127.0.0.1:8787 with local persistence (.wrangler/state).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { devSecret, quietWrangler, root } from '../packages/server/scripts/dev-secret.mjs';

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
// Without .dev.vars the documented development secret is injected; the Worker itself has no default.
if (source !== '.dev.vars') args.push('--var', `EDGELOG_JWT_SECRET:${secret}`);
args.push(...process.argv.slice(2));

process.stdout.write(
  [
    'edgelog: starting the edge server on http://127.0.0.1:8787',
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
