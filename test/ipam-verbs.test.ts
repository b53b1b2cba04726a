import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Code } from '../src/errors.js';
import { ipamEnv, rejects, useTempDataDir } from './helpers/ipam.js';
import { listAllocations, runIpam } from '../src/ipam/plugin.js';

let dataDir: string;
useTempDataDir('vnet-ipam-verbs-', (d) => (dataDir = d));

const env = ipamEnv;
const netconf = (extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: 'net1',
  type: 'vnet',
  ipam: { type: 'vnet-ipam', dataDir, ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/64' }]], ...ipam },
  ...extra,
});
const add = async (id: string, ifname = 'eth0') => (await runIpam(env('ADD', id, ifname), netconf()))!;
const dir = () => join(dataDir, 'net1');


const held = async () => (await listAllocations(dataDir, 'net1')).map((a) => `${a.containerId}/${a.ifname} ${a.ip}`);

describe('GC frees every allocation not in cni.dev/valid-attachments', () => {
  it('keeps the valid ones (by container and ifname), frees the rest with their index entries', async () => {
    await add('keep', 'eth0');
    await add('keep', 'eth1');
    await add('gone', 'eth0');
    await runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] }));
    expect(await held()).toEqual(['keep/eth0 10.0.0.2', 'keep/eth0 fd00::2']);
    expect(await readdir(join(dir(), '.by-container'))).toEqual(['keep:eth0']);
  });

  it('an empty list frees everything; null counts as empty', async () => {
    await add('a');
    await add('b');
    await runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': [] }));
    expect(await held()).toEqual([]);
    await add('c');
    await runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': null }));
    expect(await held()).toEqual([]);
  });

  it('accepts the older key cni.dev/attachments', async () => {
    await add('a');
    await add('b');
    await runIpam(env('GC'), netconf({ 'cni.dev/attachments': [{ containerID: 'b', ifname: 'eth0' }] }));
    expect(await held()).toEqual(['b/eth0 10.0.0.3', 'b/eth0 fd00::3']);
  });

  it('never touches lock, last_reserved_ip.*, dot-files or foreign files', async () => {
    await add('a');
    await writeFile(join(dir(), 'README'), 'mine');
    await writeFile(join(dir(), '.hidden'), 'x');
    await runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': [] }));
    expect((await readdir(dir())).sort()).toEqual(['.boot', '.by-container', '.hidden', '.tmp', 'README', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
    expect(await readFile(join(dir(), 'last_reserved_ip.0'), 'utf8')).toBe('10.0.0.2');
  });

  it('frees host-local data that was never indexed, and legacy files holding only a container ID', async () => {
    await mkdir(dir(), { recursive: true });
    await writeFile(join(dir(), '10.0.0.7'), 'old\r\neth0');
    await writeFile(join(dir(), '10.0.0.8'), 'legacy');
    await writeFile(join(dir(), '10.0.0.9'), 'legacy-gone');
    await runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': [{ containerID: 'legacy', ifname: 'eth0' }] }));
    expect(await held()).toEqual(['legacy/ 10.0.0.8']);
  });

  it('no directory: nothing to do', async () => {
    await runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': [] }));
  });

  it('a missing or malformed list is a config error, and frees nothing', async () => {
    await add('a');
    const missing = await rejects(runIpam(env('GC'), netconf()));
    expect(missing.code).toBe(Code.invalidConfig);
    expect(missing.message).toMatch(/^cni\.dev\/valid-attachments: missing/);
    const bad = await rejects(runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': [{ containerID: 'a' }] })));
    expect(bad.code).toBe(Code.invalidConfig);
    expect(bad.message).toBe('cni.dev/valid-attachments[0].ifname: missing');
    expect(await held()).toHaveLength(2);
  });

  it('collects and reports every error, not just the first (directories where address files should be)', async () => {
    await add('a');
    // Directories named like addresses cannot be unlinked: two failures, both reported.
    await mkdir(join(dir(), '10.0.0.200'));
    await mkdir(join(dir(), '10.0.0.201'));
    const err = await rejects(runIpam(env('GC'), netconf({ 'cni.dev/valid-attachments': [] })));
    expect(err.code).toBe(Code.io);
    expect(err.message).toMatch(/failed 2 time\(s\)/);
    expect(err.message).toMatch(/10\.0\.0\.200/);
    expect(err.message).toMatch(/10\.0\.0\.201/);
    expect(err.details.split('\n')).toHaveLength(2);
    expect(await held()).toEqual([]); // the rest was still freed
  });
});

describe('CHECK: the attachment holds the addresses of prevResult', () => {
  const prev = (ips: string[]) => ({ cniVersion: '1.1.0', ips: ips.map((address) => ({ address })) });

  it('passes when it does', async () => {
    const r = await add('c1');
    const conf = netconf({ prevResult: prev(r.ips.map((i) => i.address)) });
    expect(await runIpam(env('CHECK', 'c1', 'eth0'), conf)).toBeUndefined();
  });

  it('accepts an older prevResult format', async () => {
    await add('c1');
    const conf = netconf({ prevResult: { cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24' }, ip6: { ip: 'fd00::2/64' } } });
    await runIpam(env('CHECK', 'c1', 'eth0'), conf);
  });

  it('fails naming the address held by someone else, or by nobody', async () => {
    await add('c1');
    await add('c2');
    const other = await rejects(runIpam(env('CHECK', 'c1', 'eth0'), netconf({ prevResult: prev(['10.0.0.2/24', 'fd00::3/64']) })));
    expect(other.code).toBe(Code.checkFailed);
    expect(other.message).toBe('address fd00::3 of prevResult is not allocated to container c1 (ifname eth0): it is allocated to container c2 (ifname eth0)');
    const nobody = await rejects(runIpam(env('CHECK', 'c1', 'eth0'), netconf({ prevResult: prev(['10.0.0.9/24']) })));
    expect(nobody.code).toBe(Code.checkFailed);
    expect(nobody.message).toMatch(/^address 10\.0\.0\.9 of prevResult is not allocated to container c1 \(ifname eth0\)/);
  });

  it('the ifname matters', async () => {
    const r = await add('c1', 'eth0');
    const err = await rejects(runIpam(env('CHECK', 'c1', 'eth1'), netconf({ prevResult: prev(r.ips.map((i) => i.address)) })));
    expect(err.code).toBe(Code.checkFailed);
  });

  it('addresses outside our subnets are not ours to check, but some must be ours', async () => {
    await add('c1');
    await runIpam(env('CHECK', 'c1', 'eth0'), netconf({ prevResult: prev(['10.0.0.2/24', '192.168.9.9/24']) }));
    const none = await rejects(runIpam(env('CHECK', 'c1', 'eth0'), netconf({ prevResult: prev(['192.168.9.9/24']) })));
    expect(none.code).toBe(Code.checkFailed);
  });

  it('without prevResult: the attachment holds some address, as host-local checks', async () => {
    await add('c1');
    await runIpam(env('CHECK', 'c1', 'eth0'), netconf());
    expect((await rejects(runIpam(env('CHECK', 'c9', 'eth0'), netconf()))).code).toBe(Code.checkFailed);
  });

  it('after DEL it fails', async () => {
    const r = await add('c1');
    await runIpam(env('DEL', 'c1', 'eth0'), netconf());
    const err = await rejects(runIpam(env('CHECK', 'c1', 'eth0'), netconf({ prevResult: prev(r.ips.map((i) => i.address)) })));
    expect(err.code).toBe(Code.checkFailed);
  });
});

describe('STATUS: ready unless the data directory is unusable', () => {
  it('ready: no result, the directory is created (with its temp directory, where the probe was written)', async () => {
    expect(await runIpam(env('STATUS'), netconf())).toBeUndefined();
    expect((await readdir(dir())).sort()).toEqual(['.tmp', 'lock']);
    expect(await readdir(join(dir(), '.tmp'))).toEqual([]);
  });

  it('a data directory that cannot be created is code 50', async () => {
    await writeFile(join(dataDir, 'file'), '');
    const err = await rejects(runIpam(env('STATUS'), netconf({}, { dataDir: join(dataDir, 'file', 'sub') })));
    expect(err.code).toBe(Code.notAvailable);
    expect(err.message).toMatch(/data directory .*file\/sub\/net1 is not usable/);
  });

  it('an invalid config is still a config error', async () => {
    expect((await rejects(runIpam(env('STATUS'), netconf({}, { ranges: [[{ subnet: 'x' }]] })))).code).toBe(Code.invalidConfig);
  });

  // Regression: node's recursive mkdir spins forever at full CPU on /proc/x (ENOENT) and /proc
  // (EEXIST); a STATUS with such a dataDir never returned.
  it('a data directory where mkdir says ENOENT (under /proc) fails at once, STATUS and ADD alike', async () => {
    const bad = netconf({}, { dataDir: '/proc/vnet-ipam-cannot-exist' });
    const status = await rejects(runIpam(env('STATUS'), bad));
    expect(status.code).toBe(Code.notAvailable);
    expect(status.message).toMatch(/ENOENT/);
    expect((await rejects(runIpam(env('ADD', 'c1', 'eth0'), bad))).code).toBe(Code.io);
  });
});
