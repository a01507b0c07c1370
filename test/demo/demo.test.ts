// The demo app (apps/demo) in real Chromium against the real demo Worker under `wrangler dev`.
// All tests share one server and its one store (`demo`), so each uses its own users, skus and
// customers; screenshots of the main states go to docs/screenshots/.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch } from '../browser/harness.ts';
import { testPort } from '../support/ports.ts';
import {
  buildDemo,
  type DemoServer,
  root,
  type ServerEvent,
  serverEvents,
  startDemoServer,
} from './server.ts';

const PORT = testPort(8);
const SECRET = 'demo-e2e-secret';
const shots = join(root, 'docs', 'screenshots');
/** Visible-state waits: generous, the machine is shared. */
const WAIT = 60_000;
const run = Date.now().toString(36);

let server: DemoServer | undefined;
const disposers: Array<() => Promise<void>> = [];

async function browser(): Promise<BrowserContext> {
  const { context, dispose } = await launch();
  disposers.push(dispose);
  return context;
}

async function poll<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = WAIT) {
  const start = Date.now();
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (ok(last)) return last;
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function open(context: BrowserContext, user: string, page?: Page): Promise<Page> {
  const p = page ?? (await context.newPage());
  await p.goto(`${server!.url}/?user=${user}`, { timeout: WAIT });
  await p.waitForSelector('body[data-ready="true"]', { timeout: WAIT });
  return p;
}

const text = async (l: Locator) => (await l.textContent({ timeout: WAIT })) ?? '';
const pill = (page: Page, id: string) => text(page.locator(`#status [data-testid=${id}]`));
const pending = async (page: Page) => Number.parseInt(await pill(page, 'pending'), 10);
const network = (page: Page) => text(page.locator('#status .pill').first());

/** Online, the socket live, nothing pending. */
async function settled(page: Page, what: string) {
  await poll(
    async () => [await network(page), await pending(page)] as const,
    ([net, n]) => net === 'live' && n === 0,
    `${what}: live with 0 pending`,
  );
}

async function goOffline(context: BrowserContext, page: Page) {
  await context.setOffline(true);
  await poll(
    () => network(page),
    (n) => n === 'offline',
    'the offline pill',
  );
}

/** Waits until the service worker controls the page (its install has cached the shell). */
async function offlineReady(page: Page) {
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: WAIT });
}

async function listProduct(page: Page, sku: string, name: string, price: string) {
  await page.fill('#product-form [name=sku]', sku);
  await page.fill('#product-form [name=name]', name);
  await page.fill('#product-form [name=price]', price);
  await page.click('#product-form button');
  await page.waitForSelector(`tr[data-sku="${sku}"]`, { timeout: WAIT });
}

const available = (page: Page, sku: string) =>
  text(page.locator(`tr[data-sku="${sku}"] [data-testid=available]`));

async function waitAvailable(page: Page, sku: string, n: number, what: string) {
  await poll(
    () => available(page, sku),
    (v) => v === String(n),
    `${what}: ${sku} available ${n}`,
  );
}

/**
 * Sets the quantity and presses Receive in one task: the table is re-rendered on every
 * change, so a fill and a later click could land on two different rows.
 */
async function receive(page: Page, sku: string, quantity: number) {
  await page.evaluate(
    ([sku, quantity]) => {
      const row = document.querySelector(`tr[data-sku="${sku}"]`)!;
      row.querySelector('input')!.value = String(quantity);
      row.querySelector('button')!.click();
    },
    [sku, quantity] as const,
  );
}

/** Opens an order for `customer` and returns its id once its card shows. */
async function openOrder(page: Page, customer: string): Promise<string> {
  await page.fill('#order-form [name=customer]', customer);
  await page.click('#order-form button');
  const card = page.locator('article[data-order]', { hasText: customer });
  await card.waitFor({ timeout: WAIT });
  return (await card.getAttribute('data-order'))!;
}

const card = (page: Page, orderId: string) => page.locator(`article[data-order="${orderId}"]`);
const inLane = (page: Page, lane: string, orderId: string) =>
  page.waitForSelector(`[data-lane=${lane}] article[data-order="${orderId}"]`, { timeout: WAIT });

/** Picks the product and quantity on the order's card and presses Add (in one task, as above). */
async function addLine(
  page: Page,
  orderId: string,
  sku: string,
  quantity: number,
  productName: string,
  total = quantity,
) {
  await page.evaluate(
    ([orderId, sku, quantity]) => {
      const c = document.querySelector(`article[data-order="${orderId}"]`)!;
      c.querySelector('select')!.value = sku;
      c.querySelector<HTMLInputElement>('input[type=number]')!.value = String(quantity);
      [...c.querySelectorAll('button')].find((b) => b.textContent === 'Add')!.click();
    },
    [orderId, sku, quantity] as const,
  );
  await card(page, orderId)
    .locator('li', { hasText: `${total} × ${productName}` })
    .waitFor({ timeout: WAIT });
}

const seenOf = (page: Page) => page.evaluate(() => [...(window as unknown as { seen: string[] }).seen]);

async function shot(page: Page, name: string) {
  await mkdir(shots, { recursive: true });
  await page.screenshot({ path: join(shots, name), fullPage: true });
}

/** The server holds each event once: unique ids, gap-free positions and stream versions. */
async function expectOnce(): Promise<ServerEvent[]> {
  const all = await serverEvents(server!.url);
  expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
  expect(all.map((e) => e.position)).toEqual(all.map((_, i) => i + 1));
  for (const s of new Set(all.map((e) => e.stream))) {
    const versions = all.filter((e) => e.stream === s).map((e) => e.version);
    expect(versions, s).toEqual(versions.map((_, i) => i + 1));
  }
  return all;
}

describe('the demo app in Chromium against the demo Worker (wrangler dev)', () => {
  beforeAll(async () => {
    buildDemo();
    server = await startDemoServer(PORT, SECRET);
  }, 180_000);

  afterAll(async () => {
    for (const d of disposers.splice(0)) await d().catch(() => undefined);
    await server?.stop();
  }, 60_000);

  it('works offline, survives an offline reload, syncs on reconnect, and a second user sees it live', async () => {
    const sku = `tea-${run}`;
    const customer = `Ada ${run}`;
    const a = await browser();
    const page = await open(a, `alice-${run}`);
    await settled(page, 'first load');
    await offlineReady(page);

    await goOffline(a, page);
    await listProduct(page, sku, 'Green tea', '4.50');
    await receive(page, sku, 12);
    await waitAvailable(page, sku, 12, 'offline receive');
    const orderId = await openOrder(page, customer);
    await addLine(page, orderId, sku, 2, 'Green tea');
    expect(await pending(page)).toBeGreaterThan(0);
    expect(await network(page)).toBe('offline');
    await shot(page, 'offline.png');

    // Reload while offline: the service worker serves the shell and the worker script.
    await page.reload({ timeout: WAIT });
    await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT });
    await waitAvailable(page, sku, 12, 'after the offline reload');
    await card(page, orderId).locator('li', { hasText: '2 × Green tea' }).waitFor({ timeout: WAIT });
    await inLane(page, 'open', orderId);
    expect(await network(page)).toBe('offline');
    expect(await pending(page)).toBeGreaterThan(0);
    // The page really is offline (the server is up) and the service worker answered the reload.
    expect(
      await page.evaluate(() =>
        fetch('/health').then(
          () => 'reached',
          () => 'unreachable',
        ),
      ),
    ).toBe('unreachable');
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    expect((await serverEvents(server!.url)).some((e) => e.stream === `product-${sku}`)).toBe(false);

    await a.setOffline(false);
    await settled(page, 'after reconnecting');

    // A second user in a second browser sees the order and the stock ...
    const b = await browser();
    const other = await open(b, `bob-${run}`);
    await waitAvailable(other, sku, 12, 'the second user');
    await card(other, orderId).locator('li', { hasText: '2 × Green tea' }).waitFor({ timeout: WAIT });
    await settled(other, 'the second user');
    // ... and then live, without a reload.
    await receive(page, sku, 3);
    await waitAvailable(other, sku, 15, 'a live change reaching the second user');
    await addLine(page, orderId, sku, 1, 'Green tea', 3);
    await card(other, orderId).locator('li', { hasText: '3 × Green tea' }).waitFor({ timeout: WAIT });
    await settled(page, 'the first user after the live changes');
    await shot(other, 'board.png');

    // The log inspector: the product's stream, confirmed, and the projections caught up.
    await page.click('#inspector-tabs button[data-tab="stream"]');
    await page.selectOption('#inspector-body select', `product-${sku}`);
    await page
      .locator('#inspector-body table.log tr', { hasText: 'StockReceived' })
      .nth(1)
      .waitFor({ timeout: WAIT });
    expect(await page.locator('#inspector-body .tag.pending').count()).toBe(0);
    await page.click('#inspector-tabs button[data-tab="projections"]');
    await page.locator('#inspector-body td', { hasText: /^stock v\d+$/ }).waitFor({ timeout: WAIT });

    const all = await expectOnce();
    const mine = all.filter((e) => e.stream === `product-${sku}` || e.stream === `order-${orderId}`);
    expect(mine.map((e) => e.type)).toEqual(
      expect.arrayContaining(['ProductListed', 'StockReceived', 'OrderOpened', 'LineAdded']),
    );
    expect(mine).toHaveLength(6);
  });

  it('an offline reservation refused on reconnect is shown as a rejection and can be resolved', async () => {
    const sku = `lamp-${run}`;
    const a = await browser();
    const pa = await open(a, `anna-${run}`);
    await listProduct(pa, sku, 'Desk lamp', '30');
    await receive(pa, sku, 3);
    await waitAvailable(pa, sku, 3, 'stock received');
    await settled(pa, 'user A after listing');

    const b = await browser();
    const pb = await open(b, `ben-${run}`);
    await waitAvailable(pb, sku, 3, 'user B catching up');
    await settled(pb, 'user B online');
    // Every value the stock cell shows from now on, in both browsers.
    for (const p of [pa, pb]) {
      await p.evaluate((sku) => {
        const seen: string[] = [];
        (window as unknown as { seen: string[] }).seen = seen;
        const read = () => {
          const cell = document.querySelector(`tr[data-sku="${sku}"] [data-testid=available]`);
          if (cell) seen.push(cell.textContent ?? '');
        };
        new MutationObserver(read).observe(document.getElementById('products')!, {
          childList: true,
          subtree: true,
          characterData: true,
        });
        read();
      }, sku);
    }

    // B, offline, places an order for 2: accepted locally.
    await goOffline(b, pb);
    const orderB = await openOrder(pb, `Bea ${run}`);
    await addLine(pb, orderB, sku, 2, 'Desk lamp');
    await card(pb, orderB).getByRole('button', { name: 'Place' }).click();
    await inLane(pb, 'placed', orderB);
    await waitAvailable(pb, sku, 1, 'B reserved locally');
    expect(await pending(pb)).toBeGreaterThan(0);

    // A, online, places an order for 2: confirmed.
    const orderA = await openOrder(pa, `Abe ${run}`);
    await addLine(pa, orderA, sku, 2, 'Desk lamp');
    await card(pa, orderA).getByRole('button', { name: 'Place' }).click();
    await inLane(pa, 'placed', orderA);
    await settled(pa, 'A placed');
    await waitAvailable(pa, sku, 1, 'A reserved');

    // B reconnects: its reservation is replayed against the new state and refused.
    const offlineSeen = (await seenOf(pb)).length;
    await b.setOffline(false);
    const rejection = pb.locator('[data-testid=rejection]', { hasText: 'only 1 left' });
    await rejection.waitFor({ timeout: WAIT });
    expect(await text(rejection)).toContain(orderB);
    await settled(pb, 'B after the replay');
    await waitAvailable(pb, sku, 1, 'B after the refusal');
    const settledSeen = (await seenOf(pb)).length;
    await shot(pb, 'conflict.png');

    // The order itself was placed (its lines exist); resolve by cancelling it.
    await rejection.getByRole('button', { name: 'Cancel the order' }).click();
    await inLane(pb, 'cancelled', orderB);
    await rejection.waitFor({ state: 'detached', timeout: WAIT });
    await settled(pb, 'B after cancelling');
    await inLane(pa, 'cancelled', orderB);
    await waitAvailable(pb, sku, 1, 'B after cancelling');
    await waitAvailable(pa, sku, 1, 'A after B cancelled');

    // Neither browser ever shows a negative stock, not even while B reconnects: the pull
    // that brings A's reservation rebases B's pending one in the same transaction
    // (packages/client sync-store), so 3 - 2 - 2 = -1 is never published.
    const seenA = await seenOf(pa);
    const seenB = await seenOf(pb);
    expect(seenA.length).toBeGreaterThan(0);
    expect(seenB.length).toBeGreaterThan(offlineSeen);
    const negative = [...seenA, ...seenB].filter((v) => Number(v) < 0);
    expect(negative, `B while reconnecting: ${seenB.slice(offlineSeen, settledSeen).join(' ')}`).toEqual([]);

    const all = await expectOnce();
    const stock = all.filter((e) => e.stream === `product-${sku}`);
    const reserved = stock.filter((e) => e.type === 'StockReserved');
    expect(reserved.map((e) => [e.data.orderId, e.data.quantity])).toEqual([[orderA, 2]]);
    expect(stock.filter((e) => e.type === 'StockReleased')).toEqual([]);
    const b_ = all.filter((e) => e.stream === `order-${orderB}`).map((e) => e.type);
    expect(b_).toEqual(['OrderOpened', 'LineAdded', 'OrderPlaced', 'OrderCancelled']);
  });

  it('two users edit the same order while one is offline: one edit is replayed, a later one refused', async () => {
    const a = await browser();
    const b = await browser();
    const pa = await open(a, `olga-${run}`);
    const pb = await open(b, `oscar-${run}`);
    const tea = `shared-tea-${run}`;
    const cake = `shared-cake-${run}`;
    await listProduct(pa, tea, 'Tea', '2.00');
    await listProduct(pa, cake, 'Cake', '3.00');
    for (const sku of [tea, cake]) {
      await receive(pa, sku, 10);
      await waitAvailable(pa, sku, 10, 'stock received');
    }
    const orderId = await openOrder(pa, `Shared ${run}`);
    await card(pb, orderId).waitFor({ timeout: WAIT });
    await pb.waitForSelector(`tr[data-sku="${cake}"]`, { timeout: WAIT });

    // B, offline, adds cake; A, online, adds tea to the same order: B's command is replayed
    // on the new state (the stream moved) and both lines survive.
    await goOffline(b, pb);
    await addLine(pb, orderId, cake, 1, 'Cake');
    await addLine(pa, orderId, tea, 2, 'Tea');
    await settled(pa, 'A added tea');
    await b.setOffline(false);
    await settled(pb, 'B after the replay');
    for (const page of [pa, pb]) {
      await card(page, orderId).locator('li', { hasText: '1 × Cake' }).waitFor({ timeout: WAIT });
      await card(page, orderId).locator('li', { hasText: '2 × Tea' }).waitFor({ timeout: WAIT });
    }
    expect(await pb.locator('[data-testid=rejection]').count()).toBe(0);

    // B, offline again, adds more cake; A places the order meanwhile: the replay is refused
    // (lines cannot change once placed), shown to B, and its line is gone from both views.
    await goOffline(b, pb);
    await addLine(pb, orderId, cake, 4, 'Cake', 5);
    await card(pa, orderId).getByRole('button', { name: 'Place' }).click();
    await inLane(pa, 'placed', orderId);
    await settled(pa, 'A placed');
    await b.setOffline(false);
    const rejection = pb.locator('[data-testid=rejection]', { hasText: 'lines cannot change' });
    await rejection.waitFor({ timeout: WAIT });
    await settled(pb, 'B after the refusal');
    await inLane(pb, 'placed', orderId);
    await card(pb, orderId).locator('li', { hasText: '1 × Cake' }).waitFor({ timeout: WAIT });
    expect(await card(pb, orderId).locator('li', { hasText: '5 × Cake' }).count()).toBe(0);

    const all = await expectOnce();
    const lines = all.filter((e) => e.stream === `order-${orderId}` && e.type === 'LineAdded');
    expect(lines.map((e) => e.data.sku).sort()).toEqual([cake, tea].sort());
    expect(all.filter((e) => e.stream === `order-${orderId}`).map((e) => e.type)).toEqual([
      'OrderOpened',
      'LineAdded',
      'LineAdded',
      'OrderPlaced',
    ]);
  });

  it('two tabs of one browser: both render, one syncs, a change in one shows in the other', async () => {
    const sku = `mug-${run}`;
    const context = await browser();
    const user = `carl-${run}`;
    const first = await open(context, user);
    const second = await open(context, user);
    const roles = () => Promise.all([first, second].map((p) => pill(p, 'syncing')));
    const settledRoles = await poll(
      roles,
      (r) =>
        r.filter((t) => t === 'syncing tab').length === 1 &&
        r.filter((t) => t === 'follower tab').length === 1,
      'one syncing tab and one follower tab',
    );
    expect(settledRoles.sort()).toEqual(['follower tab', 'syncing tab']);

    await listProduct(first, sku, 'Mug', '8');
    await second.waitForSelector(`tr[data-sku="${sku}"]`, { timeout: WAIT });
    await receive(second, sku, 6);
    await waitAvailable(first, sku, 6, 'a change from the second tab');
    const orderId = await openOrder(second, `Cy ${run}`);
    await card(first, orderId).waitFor({ timeout: WAIT });
    await addLine(first, orderId, sku, 1, 'Mug');
    await card(second, orderId).locator('li', { hasText: '1 × Mug' }).waitFor({ timeout: WAIT });
    await settled(first, 'the first tab');
    await settled(second, 'the second tab');

    const all = await expectOnce();
    expect(all.filter((e) => e.stream === `product-${sku}` || e.stream === `order-${orderId}`)).toHaveLength(
      4,
    );
  });
});
