import { describe, expect, it } from 'vitest';
import { type AnomalyKind, checkHistory, type History, type Op, type ServerEvent } from './checker.ts';

// A clean history: an http append acknowledged at position 1, an execute that was replayed
// (new event id, same op), a raw append reported rejected, and one client that converged.
function clean(): History {
  const server: ServerEvent[] = [
    {
      id: 'h1',
      stream: 'http-a',
      type: 'Noted',
      data: { text: 'x' },
      metadata: { op: 'op-h' },
      version: 1,
      position: 1,
    },
    {
      id: 'd1',
      stream: 'acct-0',
      type: 'Deposited',
      data: { amount: 5 },
      metadata: { op: 'op-d' },
      version: 1,
      position: 2,
    },
    {
      id: 'w2',
      stream: 'acct-0',
      type: 'Withdrawn',
      data: { amount: 3 },
      metadata: { op: 'op-w' },
      version: 2,
      position: 3,
    },
  ];
  const ops: Op[] = [
    {
      id: 'op-h',
      client: 'http-0',
      kind: 'http',
      stream: 'http-a',
      status: 'ok',
      eventIds: ['h1'],
      positions: [1],
    },
    { id: 'op-d', client: 'c0', kind: 'execute', stream: 'acct-0', status: 'ok', eventIds: ['d1'] },
    { id: 'op-w', client: 'c0', kind: 'execute', stream: 'acct-0', status: 'ok', eventIds: ['w1'] },
    { id: 'op-r', client: 'c0', kind: 'append', stream: 'acct-0', status: 'ok', eventIds: ['r1'] },
    { id: 'op-f', client: 'http-0', kind: 'http', stream: 'http-a', status: 'fail', eventIds: ['f1'] },
    { id: 'op-u', client: 'http-0', kind: 'http', stream: 'http-a', status: 'unknown', eventIds: ['u1'] },
  ];
  return {
    ops,
    server,
    head: 3,
    guarded: ['acct-0'],
    clients: [
      {
        name: 'c0',
        events: server.map((e) => ({
          id: e.id,
          stream: e.stream,
          version: e.version,
          serverPosition: e.position,
          pending: false,
        })),
        rejections: [{ commitId: 'k1', stream: 'acct-0', eventIds: ['r1'] }],
      },
    ],
  };
}

const kinds = (h: History): AnomalyKind[] => checkHistory(h).anomalies.map((a) => a.kind);

describe('the soak history checker', () => {
  it('passes a clean history and counts what happened', () => {
    const { anomalies, stats } = checkHistory(clean());
    expect(anomalies).toEqual([]);
    expect(stats).toMatchObject({
      committed: 1,
      replayed: 1,
      rejected: 1,
      unknownStored: 0,
      events: 3,
      streams: 2,
    });
    expect(stats.byStatus).toEqual({ ok: 4, fail: 1, unknown: 1 });
  });

  it('finds an acknowledged append that was lost', () => {
    const h = clean();
    h.server = h.server.filter((e) => e.id !== 'h1').map((e, i) => ({ ...e, position: i + 1 }));
    h.head = 2;
    h.clients[0]!.events = h.server.map((e) => ({
      id: e.id,
      stream: e.stream,
      version: e.version,
      serverPosition: e.position,
      pending: false,
    }));
    expect(kinds(h)).toContain('lost-ack');
  });

  it('finds an acknowledged append answered with a position it is not at', () => {
    const h = clean();
    h.ops[0]!.positions = [2];
    expect(kinds(h)).toContain('lost-ack');
  });

  it('finds a local write that is neither stored nor reported', () => {
    const h = clean();
    h.clients[0]!.rejections = [];
    expect(kinds(h)).toEqual(['lost-write']);
  });

  it('finds an event stored twice and an operation stored twice', () => {
    const h = clean();
    h.server.push({ ...h.server[1]!, version: 3, position: 4 });
    h.server.push({ ...h.server[1]!, id: 'd2', version: 4, position: 5 });
    h.head = 5;
    const found = kinds(h);
    expect(found).toContain('duplicate-event');
    expect(found).toContain('duplicate-op');
  });

  it('finds a position gap, a position out of order and a head that disagrees', () => {
    const gap = clean();
    gap.server[2]!.position = 4;
    expect(kinds(gap)).toContain('position-gap');
    const order = clean();
    order.server[2]!.position = 2;
    expect(kinds(order)).toContain('position-order');
    const head = clean();
    head.head = 4;
    expect(kinds(head)).toContain('position-gap');
  });

  it('finds a stream version gap', () => {
    const h = clean();
    h.server[2]!.version = 3;
    expect(kinds(h)).toContain('version-gap');
  });

  it('finds a client that diverged: a missing event, a different position, a pending event', () => {
    const missing = clean();
    missing.clients[0]!.events.pop();
    expect(kinds(missing)).toEqual(['divergence']);
    const moved = clean();
    moved.clients[0]!.events[0]!.serverPosition = 9;
    expect(kinds(moved)).toEqual(['divergence']);
    const pending = clean();
    pending.clients[0]!.events[0]!.pending = true;
    expect(kinds(pending)).toContain('divergence');
  });

  it('finds an event of a rejected append that is visible on the server or in a client', () => {
    const onServer = clean();
    onServer.server.push({
      id: 'r1',
      stream: 'acct-0',
      type: 'Noted',
      data: {},
      metadata: { op: 'op-r' },
      version: 3,
      position: 4,
    });
    onServer.head = 4;
    onServer.clients[0]!.events.push({
      id: 'r1',
      stream: 'acct-0',
      version: 3,
      serverPosition: 4,
      pending: false,
    });
    expect(kinds(onServer)).toContain('rejected-visible');
    const inClient = clean();
    inClient.clients[0]!.events.push({ id: 'r1', stream: 'acct-0', version: 3, pending: true });
    expect(kinds(inClient)).toContain('rejected-visible');
  });

  it('finds a replayed command that was reported rejected and yet stored', () => {
    const h = clean();
    h.clients[0]!.rejections.push({
      commitId: 'k2',
      stream: 'acct-0',
      eventIds: ['w1'],
      command: { decider: 'account', command: { kind: 'withdraw', amount: 3, op: 'op-w' } },
    });
    expect(kinds(h)).toContain('rejected-visible');
  });

  it('finds the events of a refused request on the server', () => {
    const h = clean();
    h.server.push({
      id: 'f1',
      stream: 'http-a',
      type: 'Noted',
      data: {},
      metadata: { op: 'op-f' },
      version: 2,
      position: 4,
    });
    h.head = 4;
    h.clients[0]!.events.push({ id: 'f1', stream: 'http-a', version: 2, serverPosition: 4, pending: false });
    expect(kinds(h)).toEqual(['failed-visible']);
  });

  it("finds a subscription's view that kept a withdrawn event or missed one", () => {
    const h = clean();
    h.clients[0]!.subscribed = ['h1', 'd1', 'w2'];
    expect(kinds(h)).toEqual([]);
    // The replayed command's first event was withdrawn; a view that kept it, and missed the new one.
    h.clients[0]!.subscribed = ['h1', 'd1', 'w1'];
    expect(kinds(h)).toEqual(['subscription']);
  });

  it('finds an event no operation made, and a balance that went below zero', () => {
    const orphan = clean();
    orphan.server[0]!.metadata = {};
    expect(kinds(orphan)).toContain('orphan-event');
    const overdraft = clean();
    (overdraft.server[2]!.data as { amount: number }).amount = 6;
    expect(kinds(overdraft)).toEqual(['overdraft']);
  });
});
