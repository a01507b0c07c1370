export type { BoardEvent, Emitted, OrderEvent, ProductEvent } from './events.ts';
export {
  definitions,
  LineAdded,
  LineRemoved,
  OrderCancelled,
  OrderOpened,
  OrderPlaced,
  orderStream,
  ProductListed,
  productStream,
  registry,
  StockReceived,
  StockReleased,
  StockReserved,
} from './events.ts';
export type { OrderCommand, OrderState, OrderStatus } from './order.ts';
export { MAX_LINES, order, orderTotal } from './order.ts';
export type { ProductCommand, ProductState } from './product.ts';
export { product } from './product.ts';
export type { OrderRow, StockRow } from './projections.ts';
export { orders, projections, stock } from './projections.ts';
