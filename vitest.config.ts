import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests that run the built binary look for it here (scripts/test.sh builds it first).
    env: { VNET_BIN: process.env.VNET_BIN ?? 'dist/bin/vnet' },
  },
});
