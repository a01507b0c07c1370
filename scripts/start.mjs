#!/usr/bin/env node
// `npm start` will run the sync server and the demo app on wrangler dev; neither exists yet.
console.error(
  'edgelog: the sync server is not built yet (packages/server is in progress); nothing to start.',
);
process.exit(1);
