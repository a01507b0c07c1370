import { startWorker } from './worker.ts';

/** The prebuilt worker (dist/worker.js): no deciders, no projections, no registry. */
startWorker();
