import { type Decider, type DomainEvent, defineProjection, error } from '@edgelog/core';

export type AccountEvent =
  | DomainEvent<'Deposited', { amount: number }>
  | DomainEvent<'Withdrawn', { amount: number }>;
export type AccountCommand = { kind: 'deposit'; amount: number } | { kind: 'withdraw'; amount: number };

export const account: Decider<AccountCommand, AccountEvent, { balance: number }> = {
  initialState: () => ({ balance: 0 }),
  evolve: (s, e) => ({ balance: s.balance + (e.type === 'Deposited' ? e.data.amount : -e.data.amount) }),
  decide: (c, s) => {
    if (c.kind === 'withdraw' && s.balance < c.amount) {
      throw error('CommandRejected', `balance ${s.balance} is below ${c.amount}`);
    }
    return [{ type: c.kind === 'deposit' ? 'Deposited' : 'Withdrawn', data: { amount: c.amount } }];
  },
};

/** Events per stream, as a client projection. */
export const counts = defineProjection<number>({
  name: 'counts',
  version: 1,
  key: (e) => e.stream,
  initialState: () => 0,
  evolve: (n) => n + 1,
});
