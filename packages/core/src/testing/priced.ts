import { z } from 'zod';
import { defineEvent } from '../event-definition.ts';
import pricedEvents from './priced-events.json';

const Money = z.object({ amount: z.number().int(), currency: z.string().length(3) });

/**
 * The event type of the golden fixtures (I8): v1 stored cents (EUR implied), v2 a price with
 * its currency, v3 adds a tax rate. The client's and the edge's upcasting tests both use it.
 */
export const Priced = defineEvent({
  type: 'Priced',
  schemas: [
    z.object({ sku: z.string(), cents: z.number().int() }),
    z.object({ sku: z.string(), price: Money }),
    z.object({ sku: z.string(), price: Money, taxRate: z.number().min(0).max(1) }),
  ],
  upcasters: [
    ({ sku, cents }) => ({ sku, price: { amount: cents, currency: 'EUR' } }),
    (d) => ({ ...d, taxRate: 0 }),
  ],
});

/** Stored Priced events of every schema version, exactly as a store keeps them, and the current shape each must read as. */
export const pricedGolden = pricedEvents;
