import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type EdgeServer, root, startEdgeServer } from '../support/edge-server.ts';

export { root };
export type DemoServer = EdgeServer;

/** Builds the demo into apps/demo/dist (the Worker's static assets). */
export function buildDemo(): void {
  const built = spawnSync(process.execPath, [join(root, 'apps', 'demo', 'build.mjs')], {
    cwd: root,
    encoding: 'utf8',
  });
  if (built.status !== 0) throw new Error(`the demo build failed:\n${built.stdout}\n${built.stderr}`);
}

/** The demo Worker with its development token endpoint switched on. */
export const startDemoServer = (port: number, secret: string): Promise<DemoServer> =>
  startEdgeServer(port, secret, { vars: { EDGELOG_DEMO: '1' } });

export interface ServerEvent {
  id: string;
  stream: string;
  type: string;
  version: number;
  position: number;
  data: Record<string, unknown>;
}

/** Every event of the demo store, read over the HTTP API with a token from POST /demo/token. */
export async function serverEvents(url: string): Promise<ServerEvent[]> {
  const t = await fetch(`${url}/demo/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'test-reader' }),
  });
  if (!t.ok) throw new Error(`demo token: ${t.status} ${await t.text()}`);
  const { token } = (await t.json()) as { token: string };
  const out: ServerEvent[] = [];
  for (let after = 0; ; ) {
    const res = await fetch(`${url}/v1/stores/demo/events?after=${after}&limit=5000`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!res.ok) throw new Error(`read all: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { events: ServerEvent[] };
    out.push(...page.events);
    if (page.events.length < 5000) return out;
    after = page.events.at(-1)!.position;
  }
}
