import 'fake-indexeddb/auto';
import { describeEventStoreContract } from '@edgelog/core/testing';
import { openLogDb } from './db.ts';
import { LocalEventStore } from './local-event-store.ts';

let n = 0;
const fresh = async (limits = {}) => {
  const store = new LocalEventStore(await openLogDb(`contract-${++n}`), limits);
  return { store, limits, close: () => store.close() };
};

describeEventStoreContract('LocalEventStore (fake-indexeddb)', () => fresh(), { modelRuns: 50 });
describeEventStoreContract('LocalEventStore with strict limits', () =>
  fresh({ maxEventBytes: 1024, maxEventsPerAppend: 50, maxScanPerRead: 7 }),
);
