import { startWorker } from '@edgelog/client/worker';
import { order, product, projections, registry } from './domain/index.ts';

// The worker owns the IndexedDB log; deciders, projections and the registry run here.
startWorker({ deciders: { order, product }, projections, registry });
