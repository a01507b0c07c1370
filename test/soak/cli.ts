// `npm run soak -- --minutes N --clients M --seed S`: one long soak run against the real server
// (wrangler dev on loopback), then the history check. Exits 1 on any anomaly, printing the seed
// and the command that replays the run's decisions; `--json FILE` writes the full report.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { root } from '../support/edge-server.ts';
import { testPort } from '../support/ports.ts';
import { defaultFaults, runSoak, soakAdmission, summarize } from './soak.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    clients: { type: 'string', default: '8' },
    writers: { type: 'string', default: '2' },
    minutes: { type: 'string', default: '10' },
    'max-ops': { type: 'string', default: '1000000' },
    restarts: { type: 'string' },
    accounts: { type: 'string', default: '3' },
    'think-ms': { type: 'string', default: '600' },
    'server-port': { type: 'string', default: String(testPort(10)) },
    'proxy-port': { type: 'string', default: String(testPort(11)) },
    fault: { type: 'string', default: String(defaultFaults.dropRequest) },
    backlog: { type: 'string', default: '300' },
    admission: { type: 'string', default: soakAdmission },
    json: { type: 'string' },
  },
});

const int = (name: string, v: string | undefined, min = 0): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
};

const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  process.stderr.write('--minutes must be a positive number\n');
  process.exit(2);
}
const p = Number(values.fault);
if (!(p >= 0 && p < 1)) {
  process.stderr.write('--fault must be a probability in [0, 1)\n');
  process.exit(2);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', values.seed);
const durationMs = Math.round(minutes * 60_000);

// The root Worker serves the demo app's build as static assets: wrangler wants it present.
const built = spawnSync(process.execPath, [join(root, 'apps', 'demo', 'build.mjs')], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const report = await runSoak({
  seed,
  clients: int('clients', values.clients, 1),
  writers: int('writers', values.writers),
  durationMs,
  maxOps: int('max-ops', values['max-ops'], 1),
  // One restart every two minutes unless told otherwise.
  restarts:
    values.restarts === undefined ? Math.max(1, Math.floor(minutes / 2)) : int('restarts', values.restarts),
  accounts: int('accounts', values.accounts, 1),
  thinkMs: int('think-ms', values['think-ms']),
  serverPort: int('server-port', values['server-port'], 1),
  proxyPort: int('proxy-port', values['proxy-port']),
  faults: {
    dropRequest: p,
    dropAnswer: p,
    duplicate: p,
    lateDuplicate: p,
    duplicateMessage: p,
    reorderMessage: p,
    cutSocket: p,
  },
  settleMs: 600_000,
  backlog: int('backlog', values.backlog),
  admission: values.admission,
  log: (line) => process.stdout.write(`[soak] ${line}\n`),
});

process.stdout.write(`${summarize(report)}\n`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
process.exit(report.anomalies.length > 0 ? 1 : 0);
