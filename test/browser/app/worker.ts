import { startWorker } from '@edgelog/client/worker';
import { account, counts } from './domain.ts';

startWorker({ deciders: { account }, projections: [counts] });
