// The design's hop without the SDK: the page posts a message, this dedicated worker writes one
// record through idb (the raw rows' record) and commits at once, as the SDK does, and answers.
// The row it serves shows what an IndexedDB log in a worker costs before any SDK code runs.
import { type IDBPDatabase, openDB } from 'idb';

let db: IDBPDatabase | undefined;
self.onmessage = async (m: MessageEvent<{ open: string } | { put: Record<string, unknown> }>) => {
  const d = m.data;
  if ('open' in d) {
    db?.close();
    db = await openDB(d.open, 1, {
      upgrade(x) {
        x.createObjectStore('events', { keyPath: ['stream', 'version'] });
      },
    });
  } else {
    const tx = db!.transaction('events', 'readwrite');
    tx.store.put(d.put);
    tx.commit();
    await tx.done;
  }
  self.postMessage(0);
};
