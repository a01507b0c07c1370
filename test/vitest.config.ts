import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    environment: 'node',
    // Browser tests drive real Chromium (playwright-core): slow starts, fixed ports.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
