import { exports } from 'cloudflare:workers';
import { describeEventStoreContract } from '@edgelog/core/testing';
import { BASE, freshStore, token } from './helpers.ts';
import { HttpEventStore } from './http-event-store.ts';

describeEventStoreContract('edge server over HTTP + WebSocket', async () => {
  const store = freshStore('contract');
  return {
    store: new HttpEventStore({
      base: BASE,
      store,
      token: await token({ store, role: 'writer' }),
      fetch: (request) => exports.default.fetch(request),
    }),
  };
});
