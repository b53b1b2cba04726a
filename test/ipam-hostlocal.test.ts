// vnet-ipam next to the real host-local (containernetworking/plugins), when it is installed:
// same addresses for the same requests, same files, and each can release what the other wrote.
import type { IfName } from '../src/net/values.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CniEnv, Command } from '../src/cni/env.js';
import { CniError, Code } from '../src/errors.js';
import { listAllocations, runIpam } from '../src/ipam/plugin.js';

const HOST_LOCAL = '/usr/lib/cni/host-local';

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'vnet-ipam-hl-'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const netconf = (dataDir: string, extra: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: 'net1',
  ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.0.0.0/29' }], [{ subnet: 'fd00::/125' }]] },
  ...extra,
});

interface Outcome {
  ips?: string[];
  code?: number;
  msg?: string;
}

function hostLocal(command: Command, id: string, conf: Record<string, unknown>): Outcome {
  const r = spawnSync(HOST_LOCAL, [], {
    input: JSON.stringify(conf),
    env: { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
    encoding: 'utf8',
  });
  const out = r.stdout.trim() ? (JSON.parse(r.stdout) as { ips?: { address: string }[]; code?: number; msg?: string }) : {};
  return out.code ? { code: out.code, msg: out.msg } : { ips: out.ips?.map((i) => i.address) ?? [] };
}

async function vnet(command: Command, id: string, conf: Record<string, unknown>): Promise<Outcome> {
  const env: CniEnv = { command, containerId: id, netns: '/nonexistent', ifname: 'eth0' as IfName, args: new Map(), path: [] };
  try {
    const r = await runIpam(env, conf);
    return { ips: r?.ips.map((i) => i.address) ?? [] };
  } catch (err) {
    if (!(err instanceof CniError)) throw err;
    return { code: err.code, msg: err.message };
  }
}

/** host-local's files: everything but our dot-names. */
async function files(dataDir: string): Promise<Record<string, string>> {
  const dir = join(dataDir, 'net1');
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) if (!name.startsWith('.')) out[name] = await readFile(join(dir, name), 'utf8');
  return out;
}

describe.skipIf(!existsSync(HOST_LOCAL))('vnet-ipam behaves like the real host-local', () => {
  it('the same sequence of ADD and DEL gives the same addresses and the same files', async () => {
    const hl = join(base, 'hl');
    const ours = join(base, 'ours');
    const steps: [Command, string, Record<string, unknown>?][] = [
      ['ADD', 'a'],
      ['ADD', 'b'],
      ['DEL', 'a'],
      ['ADD', 'c'],
      ['ADD', 'd', { runtimeConfig: { ips: ['FD00:0:0:0:0:0:0:6/125'] } }],
      ['ADD', 'e'],
      ['DEL', 'c'],
      ['ADD', 'f'],
    ];
    for (const [cmd, id, extra] of steps) {
      const want = hostLocal(cmd, id, netconf(hl, extra));
      const got = await vnet(cmd, id, netconf(ours, extra));
      expect(got, `${cmd} ${id}`).toEqual(want);
    }
    expect(await files(ours)).toEqual(await files(hl));
  });

  it('exhaustion: the same message (host-local prefixes the range set number)', async () => {
    const conf = (d: string) => ({ ...netconf(d), ipam: { type: 'host-local', dataDir: d, ranges: [[{ subnet: '10.9.0.0/30' }]] } });
    hostLocal('ADD', 'a', conf(join(base, 'hl')));
    await vnet('ADD', 'a', conf(join(base, 'ours')));
    const want = hostLocal('ADD', 'b', conf(join(base, 'hl')));
    const got = await vnet('ADD', 'b', conf(join(base, 'ours')));
    expect(got.code).toBe(Code.ipamExhausted);
    expect(want.msg).toBe(`failed to allocate for range 0: ${got.msg}`);
  });

  it('vnet-ipam DEL releases what host-local allocated', async () => {
    const d = join(base, 'shared');
    hostLocal('ADD', 'a', netconf(d));
    hostLocal('ADD', 'b', netconf(d));
    await vnet('DEL', 'a', netconf(d));
    expect((await listAllocations(d, 'net1')).map((x) => `${x.containerId} ${x.ip}`)).toEqual(['b 10.0.0.3', 'b fd00::3']);
    expect(await vnet('ADD', 'b', netconf(d))).toMatchObject({ code: Code.alreadyAttached });
    expect(await vnet('ADD', 'c', netconf(d))).toEqual({ ips: ['10.0.0.4/29', 'fd00::4/125'] });
  });

  it('host-local reads and releases what vnet-ipam allocated', async () => {
    const d = join(base, 'shared');
    await vnet('ADD', 'a', netconf(d));
    expect(hostLocal('ADD', 'b', netconf(d))).toEqual({ ips: ['10.0.0.3/29', 'fd00::3/125'] });
    expect(hostLocal('ADD', 'a', netconf(d))).toMatchObject({ code: 999 }); // a duplicate to host-local too
    expect(hostLocal('DEL', 'a', netconf(d))).toEqual({ ips: [] });
    expect((await listAllocations(d, 'net1')).map((x) => `${x.containerId} ${x.ip}`)).toEqual(['b 10.0.0.3', 'b fd00::3']);
    // Our index still names a's old addresses; they are not a's any more, so a is new again.
    expect(await vnet('ADD', 'a', netconf(d))).toEqual({ ips: ['10.0.0.4/29', 'fd00::4/125'] });
  });
});
