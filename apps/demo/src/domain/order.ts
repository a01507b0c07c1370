import type { Decider } from '@edgelog/core';
import { error } from '@edgelog/core';
import type { Emitted, OrderEvent } from './events.ts';

export type OrderCommand =
  | { type: 'OpenOrder'; orderId: string; customer: string; by: string }
  | { type: 'AddLine'; sku: string; quantity: number; unitPriceCents: number }
  | { type: 'RemoveLine'; sku: string }
  | { type: 'PlaceOrder'; at: string }
  | { type: 'CancelOrder'; reason: string };

export type OrderStatus = 'none' | 'open' | 'placed' | 'cancelled';

export interface OrderState {
  status: OrderStatus;
  customer: string;
  lines: Record<string, { quantity: number; unitPriceCents: number }>;
}

export const MAX_LINES = 20;

type Event = Emitted<OrderEvent>;

export const orderTotal = (lines: OrderState['lines']): number =>
  Object.values(lines).reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0);

/** An order: lines change only while it is open; an empty order cannot be placed. */
export const order: Decider<OrderCommand, Event, OrderState> = {
  initialState: () => ({ status: 'none', customer: '', lines: {} }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'OrderOpened':
        return { ...state, status: 'open', customer: event.data.customer };
      case 'LineAdded': {
        const before = state.lines[event.data.sku]?.quantity ?? 0;
        return {
          ...state,
          lines: {
            ...state.lines,
            [event.data.sku]: {
              quantity: before + event.data.quantity,
              unitPriceCents: event.data.unitPriceCents,
            },
          },
        };
      }
      case 'LineRemoved': {
        const { [event.data.sku]: _removed, ...lines } = state.lines;
        return { ...state, lines };
      }
      case 'OrderPlaced':
        return { ...state, status: 'placed' };
      case 'OrderCancelled':
        return { ...state, status: 'cancelled' };
      default: {
        const unexpected: never = event;
        return unexpected;
      }
    }
  },
  decide: (command, state) => {
    if (command.type !== 'OpenOrder' && state.status === 'none') {
      throw error('CommandRejected', 'the order does not exist');
    }
    switch (command.type) {
      case 'OpenOrder':
        if (state.status !== 'none')
          throw error('CommandRejected', `order ${command.orderId} exists already`);
        return [
          {
            type: 'OrderOpened',
            data: { orderId: command.orderId, customer: command.customer, openedBy: command.by },
          },
        ];
      case 'AddLine':
        if (state.status !== 'open')
          throw error('CommandRejected', `the order is ${state.status}; lines cannot change`);
        if (state.lines[command.sku] === undefined && Object.keys(state.lines).length >= MAX_LINES) {
          throw error('CommandRejected', `an order holds at most ${MAX_LINES} lines`);
        }
        return [
          {
            type: 'LineAdded',
            data: { sku: command.sku, quantity: command.quantity, unitPriceCents: command.unitPriceCents },
          },
        ];
      case 'RemoveLine':
        if (state.status !== 'open')
          throw error('CommandRejected', `the order is ${state.status}; lines cannot change`);
        if (state.lines[command.sku] === undefined)
          throw error('CommandRejected', `the order has no ${command.sku}`);
        return [{ type: 'LineRemoved', data: { sku: command.sku } }];
      case 'PlaceOrder':
        if (state.status !== 'open') throw error('CommandRejected', `the order is ${state.status} already`);
        if (Object.keys(state.lines).length === 0)
          throw error('CommandRejected', 'cannot place an empty order');
        return [{ type: 'OrderPlaced', data: { placedAt: command.at, totalCents: orderTotal(state.lines) } }];
      case 'CancelOrder':
        if (state.status === 'cancelled') throw error('CommandRejected', 'the order is cancelled already');
        return [{ type: 'OrderCancelled', data: { reason: command.reason } }];
      default: {
        const unexpected: never = command;
        return unexpected;
      }
    }
  },
};
