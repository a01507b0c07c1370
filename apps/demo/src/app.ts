import type { ClientStatus, RejectionNotice } from '@edgelog/client';
import { createClient } from '@edgelog/client';
// Type-only imports of the domain: its schemas and deciders run in the worker, so the page
// bundle stays free of zod.
import type { definitions, OrderRow, order, product, StockRow } from './domain/index.ts';
import { orderStream, productStream } from './domain/streams.ts';
import { byId, h, money } from './ui/dom.ts';
import { createInspector, type InspectorTab } from './ui/inspector.ts';

const STORE = 'demo';

/** Who is using this browser: `?user=` or a name remembered from the first visit. */
function currentUser(): string {
  const asked = new URLSearchParams(location.search).get('user');
  if (asked) localStorage.setItem('edgelog-demo-user', asked);
  const known = localStorage.getItem('edgelog-demo-user');
  if (known) return known;
  const made = `user-${Math.random().toString(36).slice(2, 6)}`;
  localStorage.setItem('edgelog-demo-user', made);
  return made;
}
const user = currentUser();

/** A development token from the demo server; cached so a reload offline needs none. */
async function getToken(refresh: boolean): Promise<string> {
  const cached = localStorage.getItem('edgelog-demo-token');
  if (cached && !refresh) return cached;
  const res = await fetch('/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (!res.ok) throw new Error(`token request failed: ${res.status}`);
  const { token } = (await res.json()) as { token: string };
  localStorage.setItem('edgelog-demo-token', token);
  return token;
}

const client = createClient<typeof definitions, { order: typeof order; product: typeof product }>({
  url: location.origin,
  store: STORE,
  getToken,
  worker: () => new Worker('/worker.js', { type: 'module', name: 'edgelog' }),
});

// ---- state the views read ----------------------------------------------------------------
let status: ClientStatus = client.status.get();
let stockRows: StockRow[] = [];
let orderRows: OrderRow[] = [];
let rejections: RejectionNotice[] = [];
const notes: Array<{ id: number; text: string }> = [];
const dismissed = new Set<string>(
  JSON.parse(localStorage.getItem('edgelog-demo-dismissed') ?? '[]') as string[],
);

const errorText = (e: unknown) =>
  e instanceof Error ? e.message : String((e as { message?: string }).message ?? e);
let noteId = 0;
function note(text: string) {
  const id = ++noteId;
  notes.push({ id, text });
  renderAlerts();
  setTimeout(() => {
    notes.splice(
      notes.findIndex((n) => n.id === id),
      1,
    );
    renderAlerts();
  }, 6000);
}

/** Runs a user action; a refusal becomes a visible note, never a silent failure. */
async function act(what: string, fn: () => Promise<unknown>) {
  try {
    await fn();
  } catch (e) {
    note(`${what}: ${errorText(e)}`);
  }
  scheduleRefresh();
}

// ---- commands ------------------------------------------------------------------------------
const listProduct = (sku: string, name: string, priceCents: number) =>
  act('List product', () =>
    client.execute('product', productStream(sku), { type: 'ListProduct', sku, name, priceCents }),
  );
const receiveStock = (sku: string, quantity: number) =>
  act('Receive stock', () =>
    client.execute('product', productStream(sku), { type: 'ReceiveStock', sku, quantity }),
  );
const openOrder = (customer: string) =>
  act('New order', () => {
    const orderId = crypto.randomUUID().slice(0, 8);
    return client.execute('order', orderStream(orderId), { type: 'OpenOrder', orderId, customer, by: user });
  });
const addLine = (orderId: string, sku: string, quantity: number) => {
  const price = stockRows.find((s) => s.sku === sku)?.priceCents ?? 0;
  return act('Add line', () =>
    client.execute('order', orderStream(orderId), { type: 'AddLine', sku, quantity, unitPriceCents: price }),
  );
};
const removeLine = (orderId: string, sku: string) =>
  act('Remove line', () => client.execute('order', orderStream(orderId), { type: 'RemoveLine', sku }));

/** Reserves every line's stock, then places the order; a refused reservation undoes the others. */
const placeOrder = (row: OrderRow) =>
  act('Place order', async () => {
    const reserved: string[] = [];
    try {
      for (const [sku, line] of Object.entries(row.lines)) {
        await client.execute('product', productStream(sku), {
          type: 'ReserveStock',
          sku,
          orderId: row.orderId,
          quantity: line.quantity,
        });
        reserved.push(sku);
      }
      await client.execute('order', orderStream(row.orderId), {
        type: 'PlaceOrder',
        at: new Date().toISOString(),
      });
    } catch (e) {
      for (const sku of reserved) {
        await client.execute('product', productStream(sku), {
          type: 'ReleaseStock',
          sku,
          orderId: row.orderId,
        });
      }
      throw e;
    }
  });

/** Cancels an order and gives its reserved stock back. */
const cancelOrder = (orderId: string, reason: string) =>
  act('Cancel order', async () => {
    const row = orderRows.find((o) => o.orderId === orderId);
    await client.execute('order', orderStream(orderId), { type: 'CancelOrder', reason });
    for (const sku of Object.keys(row?.lines ?? {})) {
      await client.execute('product', productStream(sku), { type: 'ReleaseStock', sku, orderId });
    }
  });

function dismiss(commitId: string) {
  dismissed.add(commitId);
  localStorage.setItem('edgelog-demo-dismissed', JSON.stringify([...dismissed]));
  renderAlerts();
}

// ---- views ---------------------------------------------------------------------------------
function renderStatus() {
  const s = status;
  const net = !s.online
    ? h('span', { className: 'pill bad' }, 'offline')
    : s.live
      ? h('span', { className: 'pill ok' }, 'live')
      : h('span', { className: 'pill warn' }, 'online');
  byId('status').replaceChildren(
    ...[
      net,
      h(
        'span',
        { className: `pill ${s.syncing ? 'warn' : 'plain'}`, 'data-testid': 'syncing' },
        s.syncing ? 'syncing…' : s.leader ? 'syncing tab' : 'follower tab',
      ),
      h(
        'span',
        { className: `pill ${s.pending > 0 ? 'warn' : 'plain'}`, 'data-testid': 'pending' },
        `${s.pending} pending`,
      ),
      h(
        'span',
        { className: 'pill plain', 'data-testid': 'confirmed' },
        `confirmed @${s.lastConfirmedPosition}`,
      ),
      s.catchUp.total > 0 && s.catchUp.processed < s.catchUp.total
        ? h('span', { className: 'pill warn' }, `catching up ${s.catchUp.processed}/${s.catchUp.total}`)
        : null,
      s.lastError ? h('span', { className: 'pill bad', title: s.lastError.message }, s.lastError.code) : null,
      h('span', { className: 'pill plain' }, user),
    ].filter((n): n is HTMLSpanElement => n !== null),
  );
}

function renderAlerts() {
  const open = rejections.filter((r) => !dismissed.has(r.commitId));
  byId('alerts').replaceChildren(
    ...notes.map((n) => h('div', { className: 'alert info' }, n.text)),
    ...open.map((r) => {
      const cmd = r.command?.command as { type?: string; orderId?: string; sku?: string } | undefined;
      const isReservation = cmd?.type === 'ReserveStock' && cmd.orderId;
      return h(
        'div',
        { className: 'alert', 'data-testid': 'rejection' },
        h(
          'strong',
          null,
          isReservation
            ? `Order ${cmd.orderId} could not reserve ${cmd.sku}`
            : `A change to ${r.stream} was refused`,
        ),
        h('div', null, r.error.message),
        h(
          'div',
          { className: 'muted' },
          `while syncing: ${r.command ? `${r.command.decider} ${cmd?.type ?? ''}` : 'append'}; its events were removed`,
        ),
        h(
          'div',
          { className: 'actions' },
          isReservation && cmd.orderId
            ? h(
                'button',
                {
                  className: 'danger',
                  onclick: () => {
                    dismiss(r.commitId);
                    void cancelOrder(cmd.orderId!, `stock refused: ${r.error.message}`);
                  },
                },
                'Cancel the order',
              )
            : null,
          h('button', { className: 'secondary', onclick: () => dismiss(r.commitId) }, 'Dismiss'),
        ),
      );
    }),
  );
}

function renderProducts() {
  if (stockRows.length === 0) {
    byId('products').replaceChildren(h('p', { className: 'empty' }, 'No products yet. List one below.'));
    return;
  }
  byId('products').replaceChildren(
    h(
      'table',
      null,
      h(
        'tr',
        null,
        h('th', null, 'product'),
        h('th', { className: 'num' }, 'price'),
        h('th', { className: 'num' }, 'available'),
        h('th', { className: 'num' }, 'reserved'),
        h('th', null, ''),
      ),
      ...stockRows.map((s) => {
        const qty = h('input', {
          type: 'number',
          min: 1,
          value: 10,
          'aria-label': `quantity of ${s.sku}`,
          style: 'width:4.5rem',
        });
        return h(
          'tr',
          { 'data-sku': s.sku },
          h('td', null, s.name, h('div', { className: 'muted' }, s.sku)),
          h('td', { className: 'num' }, money(s.priceCents)),
          h('td', { className: 'num', 'data-testid': 'available' }, s.available),
          h('td', { className: 'num' }, s.reserved),
          h(
            'td',
            null,
            h(
              'div',
              { className: 'receive' },
              qty,
              h(
                'button',
                { className: 'secondary', onclick: () => receiveStock(s.sku, Number(qty.value)) },
                'Receive',
              ),
            ),
          ),
        );
      }),
    ),
  );
}

function orderCard(o: OrderRow) {
  const lines = Object.entries(o.lines);
  const sku = h(
    'select',
    { 'aria-label': 'product' },
    ...stockRows.map((s) => h('option', { value: s.sku }, s.name)),
  );
  const qty = h('input', {
    type: 'number',
    min: 1,
    value: 1,
    'aria-label': 'quantity',
    style: 'width:3.5rem',
  });
  return h(
    'article',
    { className: 'card', 'data-order': o.orderId },
    h('header', null, h('span', null, o.customer), h('span', { className: 'tag' }, `#${o.orderId}`)),
    lines.length === 0
      ? h('p', { className: 'empty' }, 'no lines')
      : h(
          'ul',
          null,
          ...lines.map(([k, l]) =>
            h(
              'li',
              null,
              `${l.quantity} × ${stockRows.find((s) => s.sku === k)?.name ?? k} `,
              o.status === 'open'
                ? h(
                    'button',
                    { className: 'secondary', title: 'remove', onclick: () => removeLine(o.orderId, k) },
                    '×',
                  )
                : null,
            ),
          ),
        ),
    h(
      'div',
      null,
      h('strong', null, money(o.totalCents)),
      h('span', { className: 'muted' }, ` · by ${o.openedBy} · v${o.version}`),
    ),
    o.status === 'open'
      ? h(
          'div',
          { className: 'actions' },
          stockRows.length > 0 ? sku : null,
          stockRows.length > 0 ? qty : null,
          stockRows.length > 0
            ? h(
                'button',
                { className: 'secondary', onclick: () => addLine(o.orderId, sku.value, Number(qty.value)) },
                'Add',
              )
            : null,
          h('button', { onclick: () => placeOrder(o), disabled: lines.length === 0 }, 'Place'),
          h(
            'button',
            { className: 'danger', onclick: () => cancelOrder(o.orderId, 'cancelled by hand') },
            'Cancel',
          ),
        )
      : o.status === 'placed'
        ? h(
            'div',
            { className: 'actions' },
            h(
              'button',
              { className: 'danger', onclick: () => cancelOrder(o.orderId, 'cancelled after placing') },
              'Cancel',
            ),
          )
        : null,
  );
}

function renderOrders() {
  const lane = (title: string, status: OrderRow['status']) => {
    const rows = orderRows.filter((o) => o.status === status);
    return h(
      'div',
      { className: 'lane', 'data-lane': status },
      h('h3', null, `${title} (${rows.length})`),
      ...rows.map(orderCard),
    );
  };
  byId('orders').replaceChildren(
    lane('Open', 'open'),
    lane('Placed', 'placed'),
    lane('Cancelled', 'cancelled'),
  );
}

const inspector = createInspector({
  client,
  streams: () => [
    ...stockRows.map((s) => productStream(s.sku)),
    ...orderRows.map((o) => orderStream(o.orderId)),
  ],
  serverPosition: () => `last confirmed position ${status.lastConfirmedPosition} of ${status.head}`,
  errorText,
});

// ---- refresh loop --------------------------------------------------------------------------
let refreshQueued = false;
async function refresh() {
  refreshQueued = false;
  const [s, o, r] = await Promise.all([
    client.queryProjection<StockRow>('stock'),
    client.queryProjection<OrderRow>('orders'),
    client.rejections(),
  ]);
  stockRows = s.map((row) => row.state).sort((a, b) => a.name.localeCompare(b.name));
  orderRows = o.map((row) => row.state).sort((a, b) => a.orderId.localeCompare(b.orderId));
  rejections = r;
  renderProducts();
  renderOrders();
  renderAlerts();
  await inspector.render();
  document.body.dataset.ready = 'true';
}
function scheduleRefresh() {
  if (refreshQueued) return;
  refreshQueued = true;
  requestAnimationFrame(() => void refresh().catch((e) => note(errorText(e))));
}

client.status.subscribe((s) => {
  status = s;
  renderStatus();
  scheduleRefresh();
});
client.onRejected(() => scheduleRefresh());
void client.subscribe({ after: 0 }, () => scheduleRefresh());

byId<HTMLFormElement>('product-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target as HTMLFormElement);
  void listProduct(String(f.get('sku')), String(f.get('name')), Math.round(Number(f.get('price')) * 100));
  (ev.target as HTMLFormElement).reset();
});
byId<HTMLFormElement>('order-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target as HTMLFormElement);
  void openOrder(String(f.get('customer')));
  (ev.target as HTMLFormElement).reset();
});
byId('inspector-tabs').addEventListener('click', (ev) => {
  const tab = (ev.target as HTMLElement).dataset.tab as InspectorTab | undefined;
  if (tab) void inspector.show(tab);
});

if ('serviceWorker' in navigator) {
  navigator.serviceWorker
    .register('/sw.js')
    .catch((e: unknown) => note(`offline support unavailable: ${errorText(e)}`));
}
renderStatus();
scheduleRefresh();
