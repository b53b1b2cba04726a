// One binary for every node: the default build starts on the baseline CPU (QEMU's qemu64 model,
// run with user-mode qemu-x86_64, no VM), and every installer runs the executable on the node
// before it writes anything, refusing one that cannot start there with the cause named.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the scripts, no types
import { emptySnapshotExe } from '../scripts/empty-snapshot.mjs';
import { BIN, BIN_DIR } from './helpers/lab.js';

const BASELINE = 'qemu64';
const dir = mkdtempSync(join(tmpdir(), 'vtport-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VERSION_IN = '{"cniVersion":"1.0.0"}';
function onBaseline(file: string, env: Record<string, string>, input: string, args: string[] = []) {
  return spawnSync('qemu-x86_64', ['-cpu', BASELINE, file, ...args], { env, input, encoding: 'utf8', timeout: 120_000 });
}

describe('the default build starts on the baseline CPU (qemu-x86_64 -cpu qemu64)', () => {
  it('says it is the portable build', () => {
    const r = spawnSync(BIN, ['version'], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^build: portable \(starts on any x86-64 Linux node\)$/m);
  });
  it('answers VERSION there', () => {
    const r = onBaseline(BIN, { CNI_COMMAND: 'VERSION' }, VERSION_IN);
    expect(r.error, 'qemu-user is installed by scripts/deps.sh').toBeUndefined();
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '1.0.0', supportedVersions: expect.arrayContaining(['1.0.0']) });
  });
  it('runs a whole vnet-ipam ADD, CHECK and DEL there (config, lock and store, not just start-up)', () => {
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'portable', ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.91.0.0/24' }]], dataDir: join(dir, 'ipam') } });
    const env = (command: string) => ({ CNI_COMMAND: command, CNI_CONTAINERID: 'baseline', CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, VNET_LOG_FILE: join(dir, 'vnet.log') });
    const ipam = join(BIN_DIR, 'vnet-ipam');
    const add = onBaseline(ipam, env('ADD'), conf);
    expect(add.stderr).toBe('');
    expect(JSON.parse(add.stdout).ips[0].address).toBe('10.91.0.2/24');
    expect(readdirSync(join(dir, 'ipam', 'portable'))).toContain('10.91.0.2');
    const prev = JSON.stringify({ ...JSON.parse(conf), prevResult: JSON.parse(add.stdout) });
    expect(onBaseline(ipam, env('CHECK'), prev).status).toBe(0);
    const del = onBaseline(ipam, env('DEL'), conf);
    expect(del.status).toBe(0);
    expect(readdirSync(join(dir, 'ipam', 'portable'))).not.toContain('10.91.0.2');
  });
});

describe('an executable built for another CPU is refused by the installers, the cause named, nothing written', () => {
  // What a this-cpu build from another machine is here: a V8 startup snapshot made on qemu64's features.
  let foreign = '';
  beforeAll(() => {
    foreign = emptySnapshotExe(join(dir, 'foreign'), { cpu: BASELINE });
  }, 120_000);

  it('the foreign executable itself does not start here (node refuses its snapshot)', () => {
    const r = spawnSync(foreign, [], { encoding: 'utf8' });
    expect(r.status).toBe(14);
    expect(r.stderr).toMatch(/Invalid snapshot data in single executable binary/);
  });
  it('scripts/install.sh --binary refuses it and installs nothing', () => {
    const out = join(dir, 'install-sh');
    const r = spawnSync('bash', ['scripts/install.sh', '--binary', foreign, '--prefix', join(out, 'bin'), '--bin-link', '', '--conf', 'conf/10-kubenet.conflist', '--conf-dir', join(out, 'conf')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/does not run on this node: it is a this-cpu build \(a V8 startup snapshot\) made on a CPU whose features differ from this node's; build the portable one \(npm run build, the default\)/);
    expect(existsSync(out)).toBe(false);
  });
  it('the kind node installer refuses it before `vnet install` runs', () => {
    const out = join(dir, 'kind');
    const r = spawnSync('sh', ['scripts/kind/install-node.sh', foreign, 'kubenet', '10.244.0.0/24', '10.244.0.0/16', '172.18.0.0/16'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH!, CNI_BIN_DIR: join(out, 'bin'), CNI_CONF_DIR: join(out, 'conf') },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/is a this-cpu build \(a V8 startup snapshot\) made on a CPU unlike this node's: build the portable one/);
    expect(existsSync(out)).toBe(false);
  });
  it('scripts/install.sh installs the default build (it runs here)', () => {
    const out = join(dir, 'install-ok');
    const r = spawnSync('bash', ['scripts/install.sh', '--prefix', join(out, 'bin'), '--bin-link', ''], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readdirSync(join(out, 'bin')).sort()).toEqual(['vnet', 'vnet-ipam']);
  });
});

describe('vnet install runs its copy on the node before it writes a conflist', () => {
  it('a copy that cannot run there (a noexec bin dir) is removed and refused, and no conflist is written', () => {
    const out = join(dir, 'noexec');
    const bin = join(out, 'bin');
    const confDir = join(dir, 'noexec-conf');
    // A private mount namespace: the noexec tmpfs exists only for this one command.
    const script = 'mkdir -p "$1" && mount -t tmpfs -o noexec,size=200m vtport "$1" && { "$2" install --layout kubenet --pod-cidr 10.244.0.0/24 --no-masq 10.244.0.0/16 --bin-dir "$1" --conf-dir "$3"; rc=$?; ls -A "$1"; exit $rc; }';
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', bin, BIN, confDir], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/the copy in .*\/bin does not run on this node \(cannot run .*EACCES.*\); nothing installed/);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe(''); // nothing left in the bin dir
    expect(existsSync(confDir)).toBe(false);
  });
});
