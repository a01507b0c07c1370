import 'fake-indexeddb/auto';
import { type Decider, type DomainEvent, error } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { RejectionNotice } from './status.ts';
import { FakeServer } from './testing/fake-server.ts';
import { WorkerCore } from './worker-core.ts';

// Found by the soak (test/soak): W was decided on top of the client's own pending D, so W's
// expected version counted D's event. D conflicted and its replay was refused; W, pushed on
// its own afterwards, still named that version, which another writer's event had taken by
// then, so W committed on a history it was never decided on (a balance went below zero).

type Event = DomainEvent<'Deposited', { amount: number }> | DomainEvent<'Withdrawn', { amount: number }>;
type Command = { kind: 'deposit' | 'withdraw'; amount: number };

const account: Decider<Command, Event, { balance: number }> = {
  initialState: () => ({ balance: 0 }),
  evolve: (s, e) => ({ balance: s.balance + (e.type === 'Deposited' ? e.data.amount : -e.data.amount) }),
  decide: (c, s) => {
    if (c.kind === 'withdraw' && s.balance < c.amount)
      throw error('CommandRejected', `balance ${s.balance} is below ${c.amount}`);
    return [{ type: c.kind === 'deposit' ? 'Deposited' : 'Withdrawn', data: { amount: c.amount } }];
  },
};

let n = 0;
const open: WorkerCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

async function client(server: FakeServer, maxCommitsPerPush = 100) {
  const core = new WorkerCore({
    deciders: { account },
    transport: () => server.transport(),
    limits: { maxCommitsPerPush },
    engine: { backoffBase: 1, backoffCap: 5 },
  });
  open.push(core);
  const rejected: RejectionNotice[] = [];
  core.onRejected((r) => rejected.push(r));
  await core.init({
    url: 'http://fake',
    store: 's',
    dbName: `chain-${++n}`,
    online: false,
    token: 't',
    live: false,
  });
  return { core, rejected };
}

async function balanceOnServer(server: FakeServer): Promise<number[]> {
  const { events } = await server.store.readStream('acct', { limit: 100 });
  let balance = 0;
  return events.map((e) => {
    balance += (e.type === 'Deposited' ? 1 : -1) * (e.data as { amount: number }).amount;
    return balance;
  });
}

describe('a commit decided on top of a pending commit that was refused', () => {
  for (const perPush of [1, 100]) {
    it(`is replayed, never committed on another history (${perPush} commit(s) per push)`, async () => {
      const server = new FakeServer();
      const a = await client(server, perPush);
      const b = await client(server);
      a.core.setOnline(true);
      await a.core.execute('account', 'acct', { kind: 'deposit', amount: 10 });
      await a.core.syncNow();
      a.core.setOnline(false);
      // Offline on A: two withdrawals, the second decided on top of the first (balance 10 -> 5 -> 0).
      await a.core.execute('account', 'acct', { kind: 'withdraw', amount: 5 });
      await a.core.execute('account', 'acct', { kind: 'withdraw', amount: 5 });
      // Meanwhile B withdraws 8: the server's balance is 2, at version 2.
      b.core.setOnline(true);
      await b.core.syncNow();
      await b.core.execute('account', 'acct', { kind: 'withdraw', amount: 8 });
      await b.core.syncNow();
      a.core.setOnline(true);
      for (let i = 0; i < 20 && (await a.core.syncNow()).pending > 0; i++);
      expect(await balanceOnServer(server)).toEqual([10, 2]);
      expect(a.rejected.map((r) => r.error.code)).toEqual(['CommandRejected', 'CommandRejected']);
      const local = await a.core.readStream('acct');
      expect(local.events.map((e) => [e.type, e.pending])).toEqual([
        ['Deposited', false],
        ['Withdrawn', false],
      ]);
    });
  }

  it('reports a raw append counted on a refused one with the version it named, not a stand-in', async () => {
    const server = new FakeServer();
    const a = await client(server);
    const b = await client(server);
    a.core.setOnline(true);
    await a.core.append('acct', [{ type: 'Deposited', data: { amount: 10 } }], {
      expectedVersion: 'no_stream',
    });
    await a.core.syncNow();
    a.core.setOnline(false);
    await a.core.append('acct', [{ type: 'Deposited', data: { amount: 1 } }], { expectedVersion: 1 });
    await a.core.append('acct', [{ type: 'Deposited', data: { amount: 2 } }], { expectedVersion: 2 });
    b.core.setOnline(true);
    await b.core.syncNow();
    await b.core.append('acct', [{ type: 'Withdrawn', data: { amount: 3 } }], { expectedVersion: 1 });
    await b.core.syncNow();
    a.core.setOnline(true);
    for (let i = 0; i < 20 && (await a.core.syncNow()).pending > 0; i++);
    expect(await balanceOnServer(server)).toEqual([10, 7]);
    expect(a.rejected.map((r) => r.error.code)).toEqual(['WrongExpectedVersion', 'WrongExpectedVersion']);
    const second = a.rejected[1]!.error;
    expect(second.details).toMatchObject({ stream: 'acct', expected: 2 });
    expect(second.message).not.toContain(String(Number.MAX_SAFE_INTEGER));
    expect(second.message).toContain('refused');
  });
});
