import { type Decider, type DomainEvent, error } from '@edgelog/core';

/**
 * The soak's domain: an account whose balance may never go below zero, so concurrent offline
 * withdrawals conflict and a replay can refuse them. Every event carries the id of the
 * operation that caused it (`metadata.op`), also after a replay made new events for it, so the
 * history checker can tie every stored event to exactly one operation.
 */
export type SoakEvent =
  | DomainEvent<'Deposited', { amount: number }>
  | DomainEvent<'Withdrawn', { amount: number }>
  | DomainEvent<'Noted', { text: string }>;

export type SoakCommand = { kind: 'deposit' | 'withdraw'; amount: number; op: string };

export const account: Decider<SoakCommand, SoakEvent, { balance: number }> = {
  initialState: () => ({ balance: 0 }),
  evolve: (s, e) => {
    switch (e.type) {
      case 'Deposited':
        return { balance: s.balance + e.data.amount };
      case 'Withdrawn':
        return { balance: s.balance - e.data.amount };
      case 'Noted':
        return s;
      default: {
        const never: never = e;
        return never;
      }
    }
  },
  decide: (c, s) => {
    if (c.kind === 'withdraw' && s.balance < c.amount) {
      throw error('CommandRejected', `balance ${s.balance} is below ${c.amount}`);
    }
    return [
      {
        type: c.kind === 'deposit' ? 'Deposited' : 'Withdrawn',
        data: { amount: c.amount },
        metadata: { op: c.op },
      },
    ];
  },
};

/** Folds a stream's events in version order; the lowest balance reached (never below 0 if I4 held). */
export function lowestBalance(events: ReadonlyArray<{ type: string; data: unknown }>): number {
  let balance = 0;
  let lowest = 0;
  for (const e of events) {
    const amount = (e.data as { amount?: number }).amount ?? 0;
    if (e.type === 'Deposited') balance += amount;
    if (e.type === 'Withdrawn') balance -= amount;
    lowest = Math.min(lowest, balance);
  }
  return lowest;
}
