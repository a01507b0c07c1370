import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { root } from '../support/edge-server.ts';
import { testPort } from '../support/ports.ts';
import { defaultFaults, runSoak, soakAdmission, summarize } from './soak.ts';

// The short form of `npm run soak`: an offline backlog pushed at once, then about a minute of
// faulty traffic against the real server (wrangler dev, with low per-store rate limits),
// restarted twice in the middle of it (SIGTERM, then SIGKILL), then the history check.
// EDGELOG_SOAK_SEED replays another run's decisions.
const seed = Number(process.env.EDGELOG_SOAK_SEED ?? 20261126);

beforeAll(() => {
  if (!existsSync(join(root, 'apps', 'demo', 'dist', 'index.html'))) {
    const built = spawnSync(process.execPath, [join(root, 'apps', 'demo', 'build.mjs')], {
      stdio: 'inherit',
    });
    if (built.status !== 0) throw new Error('the demo app did not build');
  }
});

describe('soak (short form)', () => {
  it('keeps every invariant through dropped, duplicated and reordered traffic and two server restarts', async () => {
    const report = await runSoak({
      seed,
      clients: 4,
      writers: 1,
      durationMs: 60_000,
      maxOps: 2_000,
      restarts: 2,
      accounts: 2,
      thinkMs: 400,
      serverPort: testPort(0),
      proxyPort: testPort(9),
      faults: defaultFaults,
      settleMs: 120_000,
      backlog: 150,
      admission: soakAdmission,
      log: (line) => console.log(`[soak] ${line}`),
    });
    console.log(summarize(report));
    expect(report.anomalies, `seed ${seed}; replay: ${report.replay}`).toEqual([]);
    expect(report.restarts).toBe(2);
    expect(report.localErrors).toEqual([]);
    // The run did what it claims: traffic was faulted, and conflicts were replayed or reported.
    const s = report.check.stats;
    expect(s.committed).toBeGreaterThan(0);
    expect(s.replayed + s.rejected).toBeGreaterThan(0);
    expect(report.faults.dropAnswer + report.faults.lateDuplicate + report.faults.cutSocket).toBeGreaterThan(
      0,
    );
  }, 600_000);
});
