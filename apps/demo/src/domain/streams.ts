/** Stream names of the demo (zod-free, so the page bundle can import them). */
export const productStream = (sku: string) => `product-${sku}`;
export const orderStream = (orderId: string) => `order-${orderId}`;
