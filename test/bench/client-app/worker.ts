import { startWorker } from '@edgelog/client/worker';
import { account } from '../../browser/app/domain.ts';
import { synthetic } from '../synthetic-transport.ts';

startWorker({
  deciders: { account },
  transport: (options) => synthetic(Number(options.url.replace('synthetic://', ''))),
  engine: { pullLimit: Number(new URL(self.location.href).searchParams.get('pull') ?? 1000) },
});
