import { rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPort } from '../support/ports.ts';
import type { App } from './app/page.ts';
import { buildApp, launch, serve, waitUntil } from './harness.ts';

declare global {
  var app: App;
  function report(id: string): void;
}

const PORT = testPort(1);
let dir: string;
let server: Server;

beforeAll(async () => {
  dir = await buildApp();
  server = await serve(dir, PORT);
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const url = (store: string, extra = '') => `http://127.0.0.1:${PORT}/?store=${store}${extra}`;

async function ready(page: Page) {
  await page.waitForFunction(() => globalThis.app !== undefined);
  // The first call waits for the worker's init.
  await page.evaluate(() => app.client.rejections());
}

describe('@edgelog/client in Chromium', () => {
  it('appends offline; the events survive a reload and a browser restart (I9)', async () => {
    const first = await launch();
    let profile = first.profile;
    try {
      const page = await first.context.newPage();
      await page.goto(url('offline'));
      await ready(page);
      await first.context.setOffline(true);
      await waitUntil(
        () => page.evaluate(() => !app.client.status.get().online),
        5000,
        'the worker to hear offline',
      );
      const appended = await page.evaluate(async () => {
        const a = await app.client.append('todo-1', [
          { type: 'Added', data: { title: 'milk' } },
          { type: 'Added', data: { title: 'eggs' } },
        ]);
        const b = await app.client.execute('account', 'acc-1', { kind: 'deposit', amount: 5 });
        return { a, b: b.events.map((e) => e.id) };
      });
      expect(appended.a.version).toBe(2);
      // Errors cross the worker boundary as typed errors, identified by code.
      const refused = await page.evaluate(async () => {
        try {
          await app.client.append('todo-1', [{ type: 'Added', data: {} }], { expectedVersion: 7 });
          return undefined;
        } catch (e) {
          const err = e as { code: string; details: { actual: number }; message: string };
          return {
            isError: e instanceof Error,
            code: err.code,
            actual: err.details.actual,
            message: err.message,
          };
        }
      });
      expect(refused).toEqual({
        isError: true,
        code: 'WrongExpectedVersion',
        actual: 2,
        message: "stream 'todo-1': expected version 7, actual 2",
      });
      await first.context.setOffline(false);
      await page.reload();
      await ready(page);
      const after = await page.evaluate(async () => ({
        todo: await app.client.readStream('todo-1'),
        acc: await app.client.readStream('acc-1'),
        count: await app.client.readProjection('counts', 'todo-1'),
      }));
      expect(
        after.todo.events.map((e) => [e.version, e.pending, (e.data as { title: string }).title]),
      ).toEqual([
        [1, true, 'milk'],
        [2, true, 'eggs'],
      ]);
      expect(after.todo.events.map((e) => e.position)).toEqual(appended.a.positions);
      expect(after.acc.events.map((e) => e.id)).toEqual(appended.b);
      expect(after.count).toBe(2);
      await waitUntil(() => page.evaluate(() => app.client.status.get().pending === 2), 5000, 'pending = 2');
      await first.context.close();

      const second = await launch(profile);
      try {
        const page2 = await second.context.newPage();
        await page2.goto(url('offline'));
        await ready(page2);
        const todo = await page2.evaluate(() => app.client.readStream('todo-1'));
        expect(todo.events.map((e) => e.version)).toEqual([1, 2]);
      } finally {
        await second.context.close();
      }
    } finally {
      await rm(profile, { recursive: true, force: true });
      profile = '';
    }
  });

  it('two pages of one context are two tabs: one leader, both live, leader handover', async () => {
    const { context, dispose } = await launch();
    try {
      const a = await context.newPage();
      const b = await context.newPage();
      await a.goto(url('tabs'));
      await b.goto(url('tabs'));
      await ready(a);
      await ready(b);
      const leaders = async () =>
        Promise.all(
          [a, b].map((p) => (p.isClosed() ? false : p.evaluate(() => app.client.status.get().leader))),
        );
      await waitUntil(async () => (await leaders()).filter(Boolean).length === 1, 10_000, 'one leader');
      expect((await leaders()).filter(Boolean)).toHaveLength(1);

      const fromB = await b.evaluate(async () => {
        const id = crypto.randomUUID();
        await app.client.append('chat', [{ id, type: 'Said', data: { by: 'b' } }]);
        return id;
      });
      await waitUntil(() => a.evaluate((id) => app.seen.includes(id), fromB), 2000, 'tab A to see B’s event');
      const fromA = await a.evaluate(async () => {
        const id = crypto.randomUUID();
        await app.client.append('chat', [{ id, type: 'Said', data: { by: 'a' } }]);
        return id;
      });
      await waitUntil(() => b.evaluate((id) => app.seen.includes(id), fromA), 2000, 'tab B to see A’s event');
      const chat = await b.evaluate(() => app.client.readStream('chat'));
      expect(chat.events.map((e) => e.version)).toEqual([1, 2]);

      // Both tabs write the same stream at once: local versions stay gap-free.
      await Promise.all(
        [a, b].map((p) =>
          p.evaluate(() =>
            Promise.all(
              Array.from({ length: 20 }, () => app.client.append('chat', [{ type: 'Said', data: {} }])),
            ),
          ),
        ),
      );
      const both = await a.evaluate(() => app.client.readStream('chat'));
      expect(both.events.map((e) => e.version)).toEqual(Array.from({ length: 42 }, (_, i) => i + 1));

      const [aLeads] = await leaders();
      const leader = aLeads ? a : b;
      const follower = aLeads ? b : a;
      await leader.close();
      await waitUntil(
        () => follower.evaluate(() => app.client.status.get().leader),
        10_000,
        'the other tab to take over',
      );
      // Every commit of both tabs is still pending (no server here); the new leader counts them
      // all once its status has caught up with the other tab's writes.
      await waitUntil(
        () => follower.evaluate(() => app.client.status.get().pending === 42),
        10_000,
        'the new leader to count all 42 pending commits',
      );
    } finally {
      await dispose();
    }
  });

  it('two tabs appending to one stream with expected versions never both pass the same version (I4)', async () => {
    const { context, dispose } = await launch();
    try {
      const tabs = [await context.newPage(), await context.newPage()];
      for (const p of tabs) await p.goto(url('race', '&sync=0'));
      for (const p of tabs) await ready(p);
      // Each tab appends as fast as it can, expecting the version it last saw: its worker's
      // cached version is often stale (the other tab's broadcast is still on its way), and the
      // log must still refuse every append whose expected version another tab overtook. The
      // tabs append 1 and 2 events, so their records' keys differ and only the version check
      // can tell.
      const runs = await Promise.all(
        tabs.map((p, tab) =>
          p.evaluate(async (size) => {
            let seen = 0;
            const wins: Array<[number, number]> = [];
            let refused = 0;
            for (let i = 0; i < 60; i++) {
              try {
                const events = Array.from({ length: size }, () => ({ type: 'Said', data: { i } }));
                const r = await app.client.append('race', events, { expectedVersion: seen });
                if (r.version !== seen + size) throw new Error(`expected ${seen}, got version ${r.version}`);
                wins.push([seen + 1, r.version]);
                seen = r.version;
              } catch (e) {
                const err = e as { code?: string; details?: { actual?: number } };
                if (err.code !== 'WrongExpectedVersion') throw e;
                refused++;
                seen = err.details!.actual!;
              }
            }
            return { wins, refused };
          }, tab + 1),
        ),
      );
      // The winning appends tile the stream's versions: none passed a version another had.
      const wins = runs.flatMap((r) => r.wins).sort((x, y) => x[0] - y[0]);
      let next = 1;
      for (const [first, last] of wins) {
        expect(first).toBe(next);
        next = last + 1;
      }
      const stream = await tabs[0]!.evaluate(() => app.client.readStream('race'));
      expect(stream.version).toBe(next - 1);
      expect(stream.events.map((e) => e.version)).toEqual(Array.from({ length: next - 1 }, (_, i) => i + 1));
      // Both tabs won and lost some (otherwise the race was never run).
      for (const r of runs) expect(r.wins.length).toBeGreaterThan(0);
      expect(runs[0]!.refused + runs[1]!.refused).toBeGreaterThan(0);
    } finally {
      await dispose();
    }
  });

  it('close() waits for the appends issued before it; later calls fail with code Closed', async () => {
    const { context, dispose } = await launch();
    try {
      const page = await context.newPage();
      await page.goto(url('closing', '&sync=0'));
      await ready(page);
      const outcome = await page.evaluate(async () => {
        const writes = Array.from({ length: 50 }, (_, i) =>
          app.client.append('closing', [{ type: 'T', data: { i } }]),
        );
        await app.client.close();
        const results = await Promise.allSettled(writes);
        const after = await app.client.append('closing', [{ type: 'T', data: {} }]).then(
          () => 'resolved',
          (e: { code: string }) => e.code,
        );
        return { fulfilled: results.filter((r) => r.status === 'fulfilled').length, after };
      });
      expect(outcome).toEqual({ fulfilled: 50, after: 'Closed' });
      await page.reload();
      await ready(page);
      const stored = await page.evaluate(() => app.client.readStream('closing'));
      expect(stored.version).toBe(50);
    } finally {
      await dispose();
    }
  });

  it('an append that is not JSON data fails alone, with code Validation, and stores nothing', async () => {
    const { context, dispose } = await launch();
    try {
      const page = await context.newPage();
      await page.goto(url('not-json', '&sync=0'));
      await ready(page);
      const outcome = await page.evaluate(async () => {
        const cycle: Record<string, unknown> = {};
        cycle.self = cycle;
        // Issued in one tick: all four travel to the worker in one message.
        const results = await Promise.allSettled([
          app.client.append('nj', [{ type: 'T', data: { i: 1 } }]),
          app.client.append('nj', [{ type: 'T', data: { big: 10n } }]),
          app.client.append('nj', [{ type: 'T', data: cycle }]),
          app.client.append('nj', [{ type: 'T', data: { i: 2 } }]),
        ]);
        const stored = await app.client.readStream('nj');
        return {
          results: results.map((r) =>
            r.status === 'fulfilled' ? r.value.version : (r.reason as { code: string }).code,
          ),
          stored: stored.events.map((e) => e.data),
        };
      });
      expect(outcome).toEqual({
        results: [1, 'Validation', 'Validation', 2],
        stored: [{ i: 1 }, { i: 2 }],
      });
    } finally {
      await dispose();
    }
  });

  it('a reload in the middle of a burst of appends loses nothing that resolved', async () => {
    const { context, dispose } = await launch();
    try {
      const page = await context.newPage();
      const resolved: string[] = [];
      await page.exposeFunction('report', (id: string) => {
        resolved.push(id);
      });
      await page.goto(url('burst', '&sync=0'));
      await ready(page);
      void page.evaluate(() => app.burst('burst', 1_000_000, (id) => report(id))).catch(() => undefined);
      await waitUntil(() => resolved.length >= 300, 20_000, '300 resolved appends');
      await page.reload();
      const atReload = resolved.length;
      await ready(page);
      const stored = await page.evaluate(async () => {
        const ids: string[] = [];
        const versions: number[] = [];
        for (let from = 1; ; ) {
          const r = await app.client.readStream('burst', { from, limit: 5000 });
          for (const e of r.events) {
            ids.push(e.id);
            versions.push(e.version);
          }
          if (r.events.length < 5000) return { ids, versions };
          from += 5000;
        }
      });
      const have = new Set(stored.ids);
      const lost = resolved.slice(0, atReload).filter((id) => !have.has(id));
      expect(lost).toEqual([]);
      expect(stored.versions).toEqual(stored.versions.map((_, i) => i + 1));
      expect(stored.ids.length).toBeGreaterThanOrEqual(atReload);
    } finally {
      await dispose();
    }
  });
});
