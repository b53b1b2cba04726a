// The contract as a runtime sees it: the built executable, run as a process.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Lab, cniEnv } from './helpers/lab.js';

const lab = new Lab();
let node = '';
beforeAll(() => {
  node = lab.ns('node');
});
afterAll(() => lab.cleanup());

const conf = (over: object = {}) => ({
  cniVersion: '1.0.0',
  name: 'protonet',
  type: 'vnet',
  ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.99.0.0/24' }]], dataDir: join(lab.dir, 'ipam') },
  ...over,
});

async function expectError(env: Record<string, string | undefined>, stdin: string | object, code: number, msg: RegExp) {
  const r = await lab.run({ node, env, stdin });
  expect(r.code).toBe(1);
  expect(r.json).toMatchObject({ code });
  expect(r.json.msg).toMatch(msg);
  // stdout holds the error JSON and nothing else
  expect(r.stdout.trim()).toBe(JSON.stringify(r.json));
  return r.json;
}

describe('the executable is native and needs nothing beside it', () => {
  it('is an ELF executable, not a script', () => {
    const head = spawnSync('head', ['-c', '4', BIN]).stdout;
    expect(head.subarray(1, 4).toString()).toBe('ELF');
  });
  it('runs VERSION from an empty directory with no node on PATH', () => {
    const dir = mkdtempSync(join(tmpdir(), `${lab.prefix}-empty-`));
    try {
      const copy = join(dir, 'vnet');
      copyFileSync(BIN, copy);
      const r = spawnSync(copy, [], {
        cwd: dir,
        env: { CNI_COMMAND: 'VERSION', PATH: '/nonexistent' },
        input: '{"cniVersion":"1.0.0"}',
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout).supportedVersions).toHaveLength(7);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('VERSION answers cniVersion and supportedVersions', () => {
  it('lists all seven versions and echoes the caller’s version', async () => {
    const r = await lab.run({ node, env: { CNI_COMMAND: 'VERSION' }, stdin: { cniVersion: '0.4.0' } });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });
  it('ignores dummy values of the other variables (libcni sends them)', async () => {
    const r = await lab.run({ node, env: { CNI_COMMAND: 'VERSION', CNI_CONTAINERID: '/bad', CNI_IFNAME: 'a:b:c' }, stdin: '' });
    expect(r.code).toBe(0);
    expect(r.json.supportedVersions).toContain('1.1.0');
  });
  it('answers as vnet-ipam too (same executable, second name)', async () => {
    const r = await lab.run({ node, bin: join(BIN, '..', 'vnet-ipam'), env: { CNI_COMMAND: 'VERSION' }, stdin: { cniVersion: '1.0.0' } });
    expect(r.json.supportedVersions).toHaveLength(7);
  });
  it('writes nothing, not even the log its config names', async () => {
    const logFile = join(lab.dir, 'version-log', 'vnet.log');
    const r = await lab.run({ node, env: { CNI_COMMAND: 'VERSION', VNET_LOG_FILE: undefined }, stdin: { cniVersion: '1.0.0', name: 'v', type: 'vnet', logFile } });
    expect(r.json.cniVersion).toBe('1.0.0');
    expect(existsSync(join(lab.dir, 'version-log'))).toBe(false);
  });
});

describe('errors are the spec’s JSON on stdout with exit 1', () => {
  const env = cniEnv('ADD', { id: 'c1', netns: '/var/run/netns/none' });
  it('code 6: stdin is not JSON', async () => {
    await expectError(env, '{not json', 6, /decode/);
  });
  it('code 7: no network name', async () => {
    await expectError(env, { cniVersion: '1.0.0', type: 'vnet' }, 7, /missing network name/);
  });
  it('code 7: invalid network name', async () => {
    await expectError(env, conf({ name: 'bad name' }), 7, /name/);
  });
  it('code 1: cniVersion not supported, both sides in details', async () => {
    const e = await expectError(env, conf({ cniVersion: '9.9.9' }), 1, /incompatible/);
    expect(e.details).toContain('9.9.9');
    expect(e.details).toContain('1.1.0');
  });
  it('code 1: CHECK below 0.4.0', async () => {
    await expectError(cniEnv('CHECK', { id: 'c1', netns: '/x' }), conf({ cniVersion: '0.3.1' }), 1, /CHECK/);
  });
  it('code 1: STATUS and GC below 1.1.0', async () => {
    await expectError(cniEnv('STATUS'), conf(), 1, /STATUS/);
    await expectError(cniEnv('GC'), conf(), 1, /GC/);
  });
  it('code 4: missing variables, all named', async () => {
    await expectError({ CNI_COMMAND: 'ADD' }, conf(), 4, /CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME/);
  });
  it('code 4: bad container ID', async () => {
    await expectError(cniEnv('ADD', { id: '../etc', netns: '/x' }), conf(), 4, /CNI_CONTAINERID/);
  });
  it('code 4: bad ifname', async () => {
    await expectError(cniEnv('ADD', { id: 'c1', netns: '/x', ifname: 'waytoolongname0' + '1' }), conf(), 4, /CNI_IFNAME/);
  });
  it('code 7: a field of the wrong type is named', async () => {
    await expectError(env, conf({ mtu: 'big' }), 7, /mtu/);
  });
  it('code 3: the container netns does not exist, and nothing is allocated', async () => {
    // What the store holds for the network: address files, index entries, temp files (not the
    // lock, the cursor or the boot stamp, which say nothing is held).
    const store = join(lab.dir, 'ipam', 'protonet');
    const held = () =>
      existsSync(store)
        ? readdirSync(store, { recursive: true, encoding: 'utf8' })
            .filter((f) => !statSync(join(store, f)).isDirectory())
            .filter((f) => f !== 'lock' && f !== '.boot' && !f.startsWith('last_reserved_ip.') && !f.startsWith('.lock'))
            .sort()
        : [];
    expect(held()).toEqual([]);
    await expectError(env, conf(), 3, /\/var\/run\/netns\/none/);
    expect(held()).toEqual([]);
    // the same call with a netns that exists allocates, and the look above sees it
    const pod = lab.ns('proto-pod');
    const added = await lab.run({ node, env: cniEnv('ADD', { id: 'c1', netns: pod }), stdin: conf() });
    expect(added.stdout, added.stderr).toMatch(/"10\.99\.0\.2\/24"/);
    expect(held()).toEqual(['.by-container/c1:eth0', '10.99.0.2']);
    expect((await lab.run({ node, env: cniEnv('DEL', { id: 'c1', netns: pod }), stdin: conf() })).code).toBe(0);
    expect(held()).toEqual([]);
  });
  it('the error carries the config’s cniVersion', async () => {
    const e = await expectError(env, conf({ cniVersion: '0.3.1' }), 3, /does not exist/);
    expect(e.cniVersion).toBe('0.3.1');
  });
});

describe('without CNI_COMMAND it is a human CLI', () => {
  const cli = (args: string[]) => spawnSync(BIN, args, { encoding: 'utf8', env: { PATH: process.env.PATH } });
  it('vnet version prints the plugin version, the spec versions and which build it is', () => {
    const r = cli(['version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^vnet \d+\.\d+\.\d+\nCNI spec versions: 0\.1\.0, .*1\.1\.0\nbuild: (portable|this-cpu) \(.*\)\n$/);
  });
  it('vnet help prints usage, exit 0', () => {
    const r = cli(['help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('vnet explain');
  });
  it('an unknown command exits 2 with usage on stderr, nothing on stdout', () => {
    const r = cli(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});
