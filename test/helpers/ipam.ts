// What the in-process vnet-ipam tests share: a fresh data dir per test, a CNI environment, and
// a way to catch the CniError a call must throw.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import type { IfName } from '../../src/net/values.js';
import type { CniEnv, Command } from '../../src/cni/env.js';
import { CniError } from '../../src/errors.js';

/** Makes a data dir before each test (handed to `use`) and deletes it after, pass or fail. */
export function useTempDataDir(prefix: string, use: (dir: string) => void): void {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    use(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
}

export const ipamEnv = (command: Command, containerId = 'c1', ifname = 'eth0', args: [string, string][] = []): CniEnv => ({
  command,
  containerId,
  netns: '/var/run/netns/test',
  ifname: ifname as IfName,
  args: new Map(args),
  path: [],
});

/** The CniError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function rejects(p: Promise<unknown>): Promise<CniError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CniError) return err;
    throw err;
  }
  throw new Error('expected a CniError');
}
