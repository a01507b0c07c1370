import { startWorker } from '@edgelog/client/worker';
import { FakeServer } from '../../../packages/client/src/testing/fake-server.ts';
import { account } from '../../browser/app/domain.ts';
import { synthetic } from '../synthetic-transport.ts';

// `fake://`: an in-memory server that takes pushes (core's InMemoryEventStore, one per worker),
// for rows that sync what they wrote; `synthetic://<n>`: n confirmed events to pull.
const fake = new FakeServer();
startWorker({
  deciders: { account },
  transport: (options) =>
    options.url.startsWith('fake:')
      ? fake.transport()
      : synthetic(Number(options.url.replace('synthetic://', ''))),
  engine: { pullLimit: Number(new URL(self.location.href).searchParams.get('pull') ?? 1000) },
});
