import type { Decider } from '@edgelog/core';
import { error } from '@edgelog/core';
import type { Emitted, ProductEvent } from './events.ts';

export type ProductCommand =
  | { type: 'ListProduct'; sku: string; name: string; priceCents: number }
  | { type: 'ReceiveStock'; sku: string; quantity: number }
  | { type: 'ReserveStock'; sku: string; orderId: string; quantity: number }
  | { type: 'ReleaseStock'; sku: string; orderId: string };

export interface ProductState {
  listed: boolean;
  name: string;
  priceCents: number;
  /** Units received and not reserved. */
  available: number;
  /** Units reserved per order id. */
  reservations: Record<string, number>;
}

type Event = Emitted<ProductEvent>;

/** A product's stock: nobody can reserve more than there is, whoever was offline. */
export const product: Decider<ProductCommand, Event, ProductState> = {
  initialState: () => ({ listed: false, name: '', priceCents: 0, available: 0, reservations: {} }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'ProductListed':
        return { ...state, listed: true, name: event.data.name, priceCents: event.data.priceCents };
      case 'StockReceived':
        return { ...state, available: state.available + event.data.quantity };
      case 'StockReserved':
        return {
          ...state,
          available: state.available - event.data.quantity,
          reservations: { ...state.reservations, [event.data.orderId]: event.data.quantity },
        };
      case 'StockReleased': {
        const { [event.data.orderId]: _released, ...rest } = state.reservations;
        return { ...state, available: state.available + event.data.quantity, reservations: rest };
      }
      default: {
        const unexpected: never = event;
        return unexpected;
      }
    }
  },
  decide: (command, state) => {
    if (command.type !== 'ListProduct' && !state.listed) {
      throw error('CommandRejected', `product ${command.sku} is not listed`);
    }
    switch (command.type) {
      case 'ListProduct':
        if (state.listed) throw error('CommandRejected', `product ${command.sku} is listed already`);
        return [
          {
            type: 'ProductListed',
            data: { sku: command.sku, name: command.name, priceCents: command.priceCents },
          },
        ];
      case 'ReceiveStock':
        return [{ type: 'StockReceived', data: { sku: command.sku, quantity: command.quantity } }];
      case 'ReserveStock':
        if (state.reservations[command.orderId] !== undefined) return [];
        if (command.quantity > state.available) {
          throw error(
            'CommandRejected',
            `cannot reserve ${command.quantity} of ${state.name || command.sku}: only ${state.available} left`,
            { sku: command.sku, available: state.available, requested: command.quantity },
          );
        }
        return [
          {
            type: 'StockReserved',
            data: { sku: command.sku, orderId: command.orderId, quantity: command.quantity },
          },
        ];
      case 'ReleaseStock': {
        const quantity = state.reservations[command.orderId];
        if (quantity === undefined) return [];
        return [{ type: 'StockReleased', data: { sku: command.sku, orderId: command.orderId, quantity } }];
      }
      default: {
        const unexpected: never = command;
        return unexpected;
      }
    }
  },
};
