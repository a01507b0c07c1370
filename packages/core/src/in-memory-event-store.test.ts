import { InMemoryEventStore } from './in-memory-event-store.ts';
import { describeEventStoreContract } from './testing/index.ts';

describeEventStoreContract('InMemoryEventStore', () => ({ store: new InMemoryEventStore() }), {
  modelRuns: 100,
});
describeEventStoreContract('InMemoryEventStore with strict limits', () => {
  const limits = { maxEventBytes: 1024, maxEventsPerAppend: 50, maxScanPerRead: 7 };
  return { store: new InMemoryEventStore({ limits }), limits };
});
