import { describe, expect, it } from 'vitest';
import type { Decider } from './decider.ts';
import { aggregateStream, handleCommand } from './decider.ts';
import { error } from './errors.ts';
import { InMemoryEventStore } from './in-memory-event-store.ts';
import { DeciderSpecification } from './testing/decider-specification.ts';

type Command = { type: 'Deposit'; amount: number } | { type: 'Withdraw'; amount: number };
type Event =
  | { type: 'Deposited'; data: { amount: number } }
  | { type: 'Withdrawn'; data: { amount: number } };
type State = { balance: number };

const account: Decider<Command, Event, State> = {
  initialState: () => ({ balance: 0 }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'Deposited':
        return { balance: state.balance + event.data.amount };
      case 'Withdrawn':
        return { balance: state.balance - event.data.amount };
      default: {
        const unexpected: never = event;
        return unexpected;
      }
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'Deposit':
        return { type: 'Deposited', data: { amount: command.amount } };
      case 'Withdraw':
        if (command.amount > state.balance) throw error('CommandRejected', 'insufficient funds');
        return [{ type: 'Withdrawn', data: { amount: command.amount } }];
      default: {
        const unexpected: never = command;
        return unexpected;
      }
    }
  },
};

describe('DeciderSpecification', () => {
  const spec = DeciderSpecification.for(account);
  it('given/when/then', () => {
    spec([{ type: 'Deposited', data: { amount: 10 } }])
      .when({ type: 'Withdraw', amount: 4 })
      .then([{ type: 'Withdrawn', data: { amount: 4 } }]);
    spec().when({ type: 'Withdraw', amount: 1 }).thenThrows('CommandRejected');
  });
  it('fails when the decision differs', () => {
    expect(() =>
      spec()
        .when({ type: 'Deposit', amount: 1 })
        .then({ type: 'Deposited', data: { amount: 2 } }),
    ).toThrow(/expects/);
    expect(() => spec().when({ type: 'Deposit', amount: 1 }).thenThrows()).toThrow(/expected to refuse/);
  });
});

describe('handleCommand', () => {
  it('appends with the loaded version and returns the new state', async () => {
    const store = new InMemoryEventStore();
    await handleCommand(store, account, 'acc-1', { type: 'Deposit', amount: 5 });
    const r = await handleCommand(
      store,
      account,
      'acc-1',
      { type: 'Withdraw', amount: 3 },
      { metadata: { by: 'me' } },
    );
    expect(r.state).toEqual({ balance: 2 });
    expect(r.version).toBe(2);
    const read = await store.readStream('acc-1');
    expect(read.events.map((e) => e.type)).toEqual(['Deposited', 'Withdrawn']);
    expect(read.events[1]!.metadata).toEqual({ by: 'me' });
  });

  it('decides again when a concurrent writer moved the stream, and refuses when the new state says so', async () => {
    const store = new InMemoryEventStore();
    await handleCommand(store, account, 'acc-2', { type: 'Deposit', amount: 10 });
    const results = await Promise.allSettled([
      handleCommand(store, account, 'acc-2', { type: 'Withdraw', amount: 6 }),
      handleCommand(store, account, 'acc-2', { type: 'Withdraw', amount: 6 }),
      handleCommand(store, account, 'acc-2', { type: 'Deposit', amount: 1 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.code).toBe('CommandRejected');
    const loaded = await aggregateStream(store, 'acc-2', account.evolve, account.initialState);
    expect(loaded).toEqual({ state: { balance: 5 }, version: 3, replayed: 3 });
  });

  it('gives up after maxRetries with WrongExpectedVersion', async () => {
    const store = new InMemoryEventStore();
    let calls = 0;
    const racing: Decider<Command, Event, State> = {
      ...account,
      decide: (command, state) => {
        calls++;
        void store.append('acc-3', [{ id: crypto.randomUUID(), type: 'Deposited', data: { amount: 1 } }]);
        return account.decide(command, state);
      },
    };
    await expect(
      handleCommand(store, racing, 'acc-3', { type: 'Deposit', amount: 1 }, { maxRetries: 2 }),
    ).rejects.toMatchObject({
      code: 'WrongExpectedVersion',
    });
    expect(calls).toBe(3);
  });

  it('loads a stream bigger than one page and from a snapshot plus tail', async () => {
    const store = new InMemoryEventStore();
    for (let i = 0; i < 7; i++) {
      await store.append('acc-4', [{ id: crypto.randomUUID(), type: 'Deposited', data: { amount: i } }]);
    }
    const full = await aggregateStream(store, 'acc-4', account.evolve, account.initialState, { pageSize: 3 });
    expect(full).toEqual({ state: { balance: 21 }, version: 7, replayed: 7 });
    const head = await aggregateStream(store, 'acc-4', account.evolve, account.initialState, { pageSize: 2 });
    const fromSnapshot = await aggregateStream(store, 'acc-4', account.evolve, account.initialState, {
      from: { state: { balance: 0 + 1 + 2 + 3 }, version: 4 },
    });
    expect(fromSnapshot).toEqual({ state: head.state, version: 7, replayed: 3 });
  });
});

declare const crypto: { randomUUID(): string };
