import { createApp } from './app.ts';
import type { ServerEnv } from './env.ts';

export { ProjectionDO } from './projection-do.ts';
export { SequencerDO } from './sequencer-do.ts';
export { StreamDO } from './stream-do.ts';

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
} satisfies ExportedHandler<ServerEnv>;
