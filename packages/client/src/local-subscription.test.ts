import type { ReadAllResult } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import type { LocalEnvelope } from './envelope.ts';
import { LocalSubscription } from './local-subscription.ts';
import type { Withdrawal } from './status.ts';
import { wireEvent } from './testing/wire-event.ts';

const envelope = (position: number): LocalEnvelope =>
  ({ ...wireEvent(position, `e${position}`), recordedAt: '', pending: true }) as LocalEnvelope;

const withdrawal = (position: number, stream = 's'): Withdrawal => ({
  id: `e${position}`,
  stream,
  type: 'T',
  position,
  reason: 'replayed',
  commitId: 'c',
});

/** A log of `head` events whose reads the test can hold until it lets them go. */
function log(head: number) {
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  const read = async (after: number, limit: number): Promise<ReadAllResult> => {
    await gate;
    const events = [];
    for (let p = after + 1; p <= Math.min(head, after + limit); p++) events.push(envelope(p));
    return { events, head, scannedTo: events.at(-1)?.position ?? after };
  };
  return {
    read,
    grow: (to: number) => {
      head = to;
    },
    hold: () => {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release: () => open(),
  };
}

function subscription(l: ReturnType<typeof log>, after = 0, streamPrefix?: string) {
  const heard: string[] = [];
  const sub = new LocalSubscription(
    { after, ...(streamPrefix ? { filter: { streamPrefix } } : {}) },
    {
      events: (events) => {
        for (const e of events) heard.push(`event ${e.position}`);
      },
      withdrawn: (list) => {
        for (const w of list) heard.push(`withdrawn ${w.position}`);
      },
    },
    l.read,
    () => undefined,
  );
  return { sub, heard };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('a subscription hearing of withdrawals', () => {
  it('hands a catch-up over in batches of up to 500 events, not one message per event', async () => {
    const l = log(1200);
    const sizes: number[] = [];
    const sub = new LocalSubscription(
      {},
      { events: (events) => void sizes.push(events.length) },
      l.read,
      () => undefined,
    );
    await sub.start();
    expect(sizes).toEqual([500, 500, 200]);
  });

  it('tells of a withdrawn event it handed over, after the event', async () => {
    const l = log(3);
    const { sub, heard } = subscription(l);
    await sub.start();
    sub.withdrawn([withdrawal(2)]);
    await settle();
    expect(heard).toEqual(['event 1', 'event 2', 'event 3', 'withdrawn 2']);
  });

  it('tells nothing of events it never read or outside its filter; at once of those before its start', async () => {
    const l = log(3);
    const { sub, heard } = subscription(l, 1, 's');
    await sub.start();
    // 5 was written and withdrawn before this subscription read past 3; 1 is before its start
    // (an app resuming a view it kept may hold it).
    sub.withdrawn([withdrawal(1), withdrawal(5), withdrawal(2, 'other')]);
    l.grow(6);
    sub.wake();
    await settle();
    expect(heard).toEqual(['event 2', 'event 3', 'withdrawn 1', 'event 4', 'event 5', 'event 6']);
  });

  it('tells of a withdrawal only once the handler that was handed the event has returned', async () => {
    const l = log(2);
    const view = new Set<string>();
    const sub = new LocalSubscription(
      {},
      {
        // An app that stores each batch before it shows it.
        events: async (events) => {
          await settle();
          for (const e of events) view.add(e.id);
        },
        withdrawn: (list) => {
          for (const w of list) view.delete(w.id);
        },
      },
      l.read,
      () => undefined,
    );
    const started = sub.start();
    await new Promise((r) => setTimeout(r, 1));
    sub.withdrawn([withdrawal(2)]);
    await started;
    await settle();
    expect([...view]).toEqual(['e1']);
  });

  it('tells of an event that a read in flight when the withdrawal was heard brings', async () => {
    const l = log(2);
    const { sub, heard } = subscription(l);
    await sub.start();
    l.grow(4);
    l.hold();
    sub.wake();
    // The read started before the withdrawal's transaction: it holds event 4.
    await settle();
    sub.withdrawn([withdrawal(4)]);
    l.release();
    await settle();
    expect(heard).toEqual(['event 1', 'event 2', 'event 3', 'event 4', 'withdrawn 4']);
  });

  it('tells of a withdrawal heard while a batch is being handed over, after that batch', async () => {
    const l = log(600);
    const heard: string[] = [];
    let told = false;
    const sub = new LocalSubscription(
      {},
      {
        events: async (events) => {
          for (const e of events) heard.push(`event ${e.position}`);
          if (!told) {
            told = true;
            sub.withdrawn([withdrawal(450)]);
          }
          await settle();
        },
        withdrawn: (list) => {
          for (const w of list) heard.push(`withdrawn ${w.position}`);
        },
      },
      l.read,
      () => undefined,
    );
    await sub.start();
    await settle();
    expect(heard.indexOf('withdrawn 450')).toBe(heard.indexOf('event 500') + 1);
    expect(heard).toHaveLength(601);
  });
});
