import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: './test/worker.ts',
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: { EDGELOG_JWT_SECRET: 'test-secret', EDGELOG_BENCH: '1' },
      },
    }),
  ],
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
  },
});
