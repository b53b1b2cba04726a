import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CniError, Code } from '../src/errors.js';
import { ipamEnv, useTempDataDir } from './helpers/ipam.js';
import { listAllocations, runIpam } from '../src/ipam/plugin.js';
import { indexName, Store } from '../src/ipam/store.js';

let dataDir: string;
let store: Store;
useTempDataDir('vnet-ipam-store-', (d) => {
  dataDir = d;
  store = Store.forNetwork(dataDir, 'net1');
});

const env = ipamEnv;
const conf = () => ({ cniVersion: '1.1.0', name: 'net1', ipam: { type: 'vnet-ipam', dataDir, ranges: [[{ subnet: '10.0.0.0/29' }]] } });
const add = async (id: string, ifname = 'eth0') => (await runIpam(env('ADD', id, ifname), conf()))!.ips.map((i) => i.address);
const del = (id: string, ifname = 'eth0') => runIpam(env('DEL', id, ifname), conf());
const dir = () => join(dataDir, 'net1');
const byContainer = () => join(dir(), '.by-container');

describe('claiming an address is an exclusive create of a fully written file', () => {
  it('the first claim wins, the second fails without touching the file', async () => {
    const a = await store.prepare({ containerId: 'a', ifname: 'eth0' });
    const b = await store.prepare({ containerId: 'b', ifname: 'eth0' });
    expect(await store.claim(a, '10.0.0.2')).toBe(true);
    expect(await store.claim(b, '10.0.0.2')).toBe(false);
    expect(await readFile(join(dir(), '10.0.0.2'), 'utf8')).toBe('a\r\neth0');
  });

  it('prepared files are temp files in the .tmp/ directory, created with the directory if needed', async () => {
    const tmp = await store.prepare({ containerId: 'a', ifname: 'eth0' });
    expect(tmp.startsWith(join(dir(), '.tmp') + '/')).toBe(true);
    expect(await readFile(tmp, 'utf8')).toBe('a\r\neth0');
    expect(await readFile(join(dir(), 'lock'), 'utf8')).toBe('');
  });

  it('ADD leaves no temp file behind, on success and on failure', async () => {
    await add('a');
    await expect(runIpam(env('ADD', 'a'), conf())).rejects.toBeInstanceOf(CniError);
    expect(await readdir(join(dir(), '.tmp'))).toEqual([]);
  });
});

describe('a crash never leaves a half-written file blocking an address', () => {
  it('temp files left by a killed process are ignored by allocation, listing and DEL', async () => {
    await mkdir(join(dir(), '.tmp'), { recursive: true });
    await writeFile(join(dir(), '.tmp', '999-deadbeef'), 'dead\r\neth0');
    await writeFile(join(dir(), '.tmp', '999-cafe'), 'de'); // half written
    expect(await add('a')).toEqual(['10.0.0.2/29']);
    expect(await listAllocations(dataDir, 'net1')).toEqual([{ ip: '10.0.0.2', containerId: 'a', ifname: 'eth0' }]);
  });

  it('an index entry naming an address that was never linked (killed between the two writes) is ignored', async () => {
    await add('first'); // creates the directory and index
    await writeFile(join(byContainer(), indexName({ containerId: 'dead', ifname: 'eth0' })), JSON.stringify({ containerID: 'dead', ifname: 'eth0', ips: ['10.0.0.3'] }));
    expect(await add('b')).toEqual(['10.0.0.3/29']); // the address was free
    await del('dead'); // must not release b's address
    expect(await listAllocations(dataDir, 'net1')).toContainEqual({ ip: '10.0.0.3', containerId: 'b', ifname: 'eth0' });
    expect(await readdir(byContainer())).not.toContain('dead:eth0');
  });

  it('an index entry whose address files are gone (killed during DEL) does not make the attachment a duplicate', async () => {
    await add('a');
    await rm(join(dir(), '10.0.0.2'));
    expect(await add('a')).toEqual(['10.0.0.3/29']);
  });
});

describe('the index lets DEL find what an attachment holds without scanning', () => {
  it('one JSON entry per attachment, written on ADD and removed on DEL', async () => {
    await add('c1', 'eth0');
    const path = join(byContainer(), 'c1:eth0');
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ containerID: 'c1', ifname: 'eth0', ips: ['10.0.0.2'] });
    await del('c1', 'eth0');
    await expect(stat(path)).rejects.toThrow();
  });

  it('names cannot collide across the container ID / ifname boundary; long IDs are hashed', () => {
    expect(indexName({ containerId: 'a.b', ifname: 'c' })).not.toBe(indexName({ containerId: 'a', ifname: 'b.c' }));
    const long = indexName({ containerId: 'x'.repeat(300), ifname: 'eth0' });
    expect(long).toMatch(/^~[0-9a-f]{64}$/);
  });

  it('a long container ID works end to end', async () => {
    const id = 'f'.repeat(250);
    expect(await add(id)).toEqual(['10.0.0.2/29']);
    await del(id);
    expect(await listAllocations(dataDir, 'net1')).toEqual([]);
  });
});

describe("data written by the real host-local (no index) is indexed once, then DEL needs no scan", () => {
  async function hostLocalData() {
    await mkdir(dir(), { recursive: true });
    await writeFile(join(dir(), 'lock'), '');
    await writeFile(join(dir(), '10.0.0.2'), 'old1\r\neth0');
    await writeFile(join(dir(), '10.0.0.3'), 'old2\r\neth0');
    await writeFile(join(dir(), 'last_reserved_ip.0'), '10.0.0.3');
  }

  it('DEL of a host-local attachment releases it', async () => {
    await hostLocalData();
    await del('old1');
    expect(await listAllocations(dataDir, 'net1')).toEqual([{ ip: '10.0.0.3', containerId: 'old2', ifname: 'eth0' }]);
    expect(await readdir(byContainer())).toEqual(['old2:eth0']);
  });

  it('ADD of a host-local attachment is a duplicate; a new one continues the round-robin', async () => {
    await hostLocalData();
    const err = await runIpam(env('ADD', 'old2'), conf()).catch((e: CniError) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(Code.alreadyAttached);
    expect((err as CniError).message).toMatch(/already holds 10\.0\.0\.3/);
    expect(await add('new')).toEqual(['10.0.0.4/29']);
  });

  it('an interrupted indexing (a leftover temp directory) is simply redone', async () => {
    await hostLocalData();
    await mkdir(join(dir(), '.tmp', '1-interrupted'), { recursive: true });
    await writeFile(join(dir(), '.tmp', '1-interrupted', 'old1:eth0'), '{}');
    await del('old2');
    expect(await readdir(byContainer())).toEqual(['old1:eth0']);
  });
});
