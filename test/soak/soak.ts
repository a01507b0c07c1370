import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seeded } from '@edgelog/client/testing';
import { type EdgeServer, startEdgeServer } from '../support/edge-server.ts';
import { type Anomaly, type CheckResult, checkHistory, type Op, type ServerEvent } from './checker.ts';
import { HttpWriter } from './http-writer.ts';
import { type FaultCounts, FaultProxy, noFaults, type ProxyFaults } from './proxy.ts';
import { SimClient } from './sim-client.ts';

export interface SoakOptions {
  seed: number;
  /** SDK clients (each its own fake-indexeddb). */
  clients: number;
  /** Plain HTTP writers (no SDK). */
  writers: number;
  /** Traffic lasts this long (then the network heals and everything syncs). */
  durationMs: number;
  /** ...or stops after this many operations, whichever comes first. */
  maxOps: number;
  /** Server restarts spread evenly over the traffic (alternately SIGTERM and SIGKILL). */
  restarts: number;
  /** Shared account streams the deciders contend on. */
  accounts: number;
  /** Pause between one client's operations, at most (ms, uniformly random). */
  thinkMs: number;
  serverPort: number;
  /** 0 = any free loopback port. */
  proxyPort: number;
  faults: ProxyFaults;
  /** How long the healed system may take to converge. */
  settleMs: number;
  /** Commits the first client makes offline before the traffic starts (pushed at once). */
  backlog: number;
  /** The server's per-store rate limits (`EDGELOG_ADMISSION`, JSON); default: the server's own. */
  admission?: string;
  log: (line: string) => void;
}

/** Per-store limits low enough that reconnect storms and the backlog meet 429s (and back off). */
export const soakAdmission = JSON.stringify({
  requestsPerSecond: 15,
  requestBurst: 30,
  writeBytesPerSecond: 8 * 1024,
  writeBurstBytes: 16 * 1024,
});

export const defaultFaults: ProxyFaults = {
  dropRequest: 0.05,
  dropAnswer: 0.05,
  duplicate: 0.05,
  lateDuplicate: 0.05,
  duplicateMessage: 0.05,
  reorderMessage: 0.05,
  cutSocket: 0.05,
};

export interface SoakReport {
  seed: number;
  options: Omit<SoakOptions, 'log'>;
  check: CheckResult;
  faults: FaultCounts;
  restarts: number;
  reloads: number;
  localErrors: string[];
  trafficMs: number;
  settleMs: number;
  /** Anomalies, including a failure to converge. */
  anomalies: Anomaly[];
  replay: string;
}

const SECRET = 'soak-secret';

function token(store: string, sub: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = { store, role: 'writer', sub, iat: now, exp: now + 24 * 3600 };
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads a store's whole global log straight from the server (not through the proxy). */
async function readServerLog(
  url: string,
  store: string,
  auth: string,
): Promise<{ events: ServerEvent[]; head: number }> {
  const events: ServerEvent[] = [];
  let head = 0;
  for (let after = 0; ; ) {
    const res = await fetch(`${url}/v1/stores/${store}/events?after=${after}&limit=5000`, {
      headers: { authorization: `Bearer ${auth}` },
    });
    if (res.status === 429) {
      // The soak's low per-store rate limits apply to the checker's reads too: wait and read again.
      const body = (await res.json()) as { error?: { details?: { retryAfterMs?: number } } };
      await new Promise((r) => setTimeout(r, Math.max(body.error?.details?.retryAfterMs ?? 0, 200)));
      continue;
    }
    if (!res.ok) throw new Error(`read all: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { events: ServerEvent[]; head: number; scannedTo: number };
    events.push(...page.events);
    head = page.head;
    if (page.scannedTo >= page.head) return { events, head };
    after = page.scannedTo;
  }
}

export function replayCommand(o: Omit<SoakOptions, 'log'>): string {
  return (
    `npm run soak -- --seed ${o.seed} --clients ${o.clients} --writers ${o.writers} ` +
    `--minutes ${+(o.durationMs / 60_000).toFixed(3)} --max-ops ${o.maxOps} --restarts ${o.restarts} ` +
    `--accounts ${o.accounts} --think-ms ${o.thinkMs} --fault ${o.faults.dropRequest} --backlog ${o.backlog}` +
    (o.admission ? ` --admission '${o.admission}'` : ' --admission off')
  );
}

/**
 * One soak run: the real server under `wrangler dev` (restarted in the middle of traffic on
 * the same port and state), a fault-injecting proxy, SDK clients going offline, online and
 * reloading, plain HTTP writers; then the network heals, everything syncs, and the history is
 * checked. Every random decision comes from `seed`.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const { log } = options;
  const store = `soak-${options.seed}`;
  const persist = await mkdtemp(join(tmpdir(), 'edgelog-soak-'));
  const vars: Record<string, string> = options.admission ? { EDGELOG_ADMISSION: options.admission } : {};
  const server: EdgeServer = await startEdgeServer(options.serverPort, SECRET, { persistTo: persist, vars });
  const proxy = new FaultProxy(server.url, seeded(options.seed ^ 0x5eed));
  const clients: SimClient[] = [];
  try {
    const url = await proxy.listen(options.proxyPort);
    log(`server ${server.url} (state ${persist}), proxy ${url}, store ${store}, seed ${options.seed}`);
    const ops: Op[] = [];
    const localErrors: string[] = [];
    const accounts = Array.from({ length: options.accounts }, (_, i) => `acct-${i}`);
    const ctx = {
      url,
      store,
      accounts,
      board: 'board-0',
      record: (op: Op) => ops.push(op),
      localError: (client: string, e: unknown) =>
        localErrors.push(
          `${client}: ${(e as { code?: string }).code ?? ''} ${(e as Error).message ?? String(e)}`,
        ),
    };
    for (let i = 0; i < options.clients; i++) {
      const name = `c${i}`;
      const c = new SimClient(
        name,
        { ...ctx, token: token(store, name) },
        seeded(options.seed * 1_000 + i + 1),
      );
      await c.open();
      clients.push(c);
    }
    const writers = Array.from(
      { length: options.writers },
      (_, i) =>
        new HttpWriter(
          `w${i}`,
          { ...ctx, token: token(store, `w${i}`) },
          seeded(options.seed * 1_000 + 500 + i),
        ),
    );

    if (options.backlog > 0 && clients[0]) {
      await clients[0].backlog(options.backlog);
      log(`${clients[0].name} made ${options.backlog} commits offline`);
      clients[0].setOnline(true);
    }

    // Traffic, with faults, and restarts of the server in the middle of it.
    proxy.faults = { ...options.faults };
    const started = Date.now();
    const end = started + options.durationMs;
    let invoked = 0;
    const more = () => Date.now() < end && invoked < options.maxOps;
    const actor = async (step: () => Promise<void>, think: () => number) => {
      while (more()) {
        invoked++;
        await step().catch((e: unknown) => ctx.localError('step', e));
        await sleep(think());
      }
    };
    let restarts = 0;
    const restarter = async () => {
      for (let i = 1; i <= options.restarts; i++) {
        const at = started + (options.durationMs * i) / (options.restarts + 1);
        while (Date.now() < at && more()) await sleep(100);
        if (!more()) break;
        const hard = i % 2 === 0;
        log(
          `restart ${i}/${options.restarts} (${hard ? 'SIGKILL' : 'SIGTERM'}) after ${ops.length} operations`,
        );
        await server.restart({ hard });
        restarts++;
      }
    };
    let lastProgress = Date.now();
    const progress = setInterval(() => {
      if (Date.now() - lastProgress < 30_000) return;
      lastProgress = Date.now();
      log(
        `${Math.round((Date.now() - started) / 1000)} s: ${ops.length} operations, faults ${JSON.stringify(proxy.counts)}`,
      );
    }, 1_000);
    await Promise.all([
      ...clients.map((c, i) => {
        const r = seeded(options.seed * 7_919 + i);
        return actor(
          () => c.step(),
          () => r() * options.thinkMs,
        );
      }),
      ...writers.map((w, i) => {
        const r = seeded(options.seed * 104_729 + i);
        return actor(
          () => w.step(),
          () => r() * options.thinkMs,
        );
      }),
      restarter(),
    ]);
    clearInterval(progress);
    const trafficMs = Date.now() - started;
    log(
      `traffic over after ${Math.round(trafficMs / 1000)} s: ${ops.length} operations; healing and syncing`,
    );

    // Heal: no faults, everyone online, late duplicates delivered, then sync until quiet.
    proxy.faults = { ...noFaults };
    await proxy.drain();
    for (const c of clients) c.setOnline(true);
    const auth = token(store, 'checker');
    const settleStart = Date.now();
    let converged = false;
    let quiet = 0;
    while (Date.now() - settleStart < options.settleMs) {
      const { head } = await readServerLog(server.url, store, auth);
      const states = await Promise.all(clients.map((c) => c.sync()));
      const done = states.every((s) => s.pending === 0 && s.position === head);
      quiet = done ? quiet + 1 : 0;
      if (quiet >= 2) {
        converged = true;
        break;
      }
      await sleep(200);
    }
    const settleMs = Date.now() - settleStart;
    const { events, head } = await readServerLog(server.url, store, auth);
    const views = await Promise.all(clients.map((c) => c.view()));
    const check = checkHistory({ ops, server: events, head, clients: views, guarded: accounts });
    const anomalies = [...check.anomalies];
    if (!converged)
      anomalies.push({
        kind: 'divergence',
        message: `the clients did not converge within ${options.settleMs} ms`,
      });
    const { log: _log, ...rest } = options;
    return {
      seed: options.seed,
      options: rest,
      check,
      faults: { ...proxy.counts },
      restarts,
      reloads: clients.reduce((n, c) => n + c.reloads, 0),
      localErrors,
      trafficMs,
      settleMs,
      anomalies,
      replay: replayCommand(options),
    };
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await proxy.close();
    await server.stop();
    await rm(persist, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

/** A few lines a human reads: what ran, what was injected, what the checker found. */
export function summarize(r: SoakReport): string {
  const s = r.check.stats;
  const lines = [
    `seed ${r.seed}: ${r.options.clients} SDK clients + ${r.options.writers} HTTP writers, ` +
      `${Math.round(r.trafficMs / 1000)} s of traffic, settled in ${Math.round(r.settleMs / 1000)} s`,
    `operations ${s.ops} (ok ${s.byStatus.ok}, fail ${s.byStatus.fail}, unknown ${s.byStatus.unknown}, ` +
      `unknown-but-stored ${s.unknownStored}); SDK: committed ${s.committed}, replayed ${s.replayed}, rejected ${s.rejected}`,
    `server: ${s.events} events in ${s.streams} streams; ${r.restarts} server restarts; ${r.reloads} client reloads`,
    `faults injected: ${Object.entries(r.faults)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    r.localErrors.length > 0
      ? `local errors: ${r.localErrors.length} (${r.localErrors.slice(0, 3).join(' | ')})`
      : 'local errors: 0',
    r.anomalies.length === 0
      ? 'anomalies: 0'
      : `ANOMALIES: ${r.anomalies.length}\n${r.anomalies
          .slice(0, 30)
          .map((a) => `  ${a.kind}: ${a.message}`)
          .join('\n')}\nreplay: ${r.replay}`,
  ];
  return lines.join('\n');
}
