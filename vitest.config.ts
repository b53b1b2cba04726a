import { configDefaults, defineConfig } from 'vitest/config';

// The fast set: tests that need neither root nor the built binary (no namespaces, no dist/), so
// `npm test` runs them anywhere in seconds. Everything else is the "root" set; scripts/test.sh
// (as root, after a build) runs both. A test file starts in the root set: move it here only once
// it runs as an ordinary user without dist/.
const FAST = [
  'test/address-oracles.test.ts',
  'test/elf.test.ts',
  'test/env.test.ts',
  'test/errors.test.ts',
  'test/hash.test.ts',
  'test/ipam-allocator.test.ts',
  'test/ipam-disk.test.ts',
  'test/ipam-hostlocal.test.ts',
  'test/ipam-lock.test.ts',
  'test/ipam-range.test.ts',
  'test/ipam-store.test.ts',
  'test/ipam-verbs.test.ts',
  'test/lab-svg.test.ts',
  'test/plans.test.ts',
  'test/readme.test.ts',
  'test/snapshot.test.ts',
  'test/versions.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests that run the built binary look for it here (scripts/test.sh builds it first).
    env: { VNET_BIN: process.env.VNET_BIN ?? 'dist/bin/vnet' },
    projects: [
      { extends: true, test: { name: 'fast', include: FAST } },
      { extends: true, test: { name: 'root', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...FAST] } },
    ],
  },
});
