// `vnet install`: the node-side installer the lab, containerd nodes, kind and Vagrant share.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Lab } from './helpers/lab.js';

const lab = new Lab();
afterAll(() => lab.cleanup());
const dir = mkdtempSync(join(tmpdir(), `${lab.prefix}-install-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The node every install runs in by default: eth0 10.220.2.4/24 on a network with other nodes.
// Made in beforeAll, not at load: a file whose tests -t filters out runs no hook, cleanup included.
let home = '';
beforeAll(() => {
  home = lab.ns('home');
  lab.in(home, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
  lab.in(home, ['ip', 'addr', 'add', '10.220.2.4/24', 'dev', 'eth0']);
  lab.in(home, ['ip', 'link', 'set', 'eth0', 'up']);
  lab.in(home, ['ip', 'link', 'set', 'peer0', 'up']);
});

function install(args: string[], ns = home, env: Record<string, string> = {}) {
  const argv = ['nsenter', `--net=${ns}`, BIN, 'install', ...args];
  // The log goes to this file's directory, never to the machine's /var/log/vnet.log.
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { PATH: process.env.PATH!, VNET_LOG_FILE: join(dir, 'vnet.log'), ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const validate = (file: string) => spawnSync(BIN, ['validate', file], { encoding: 'utf8' });
const KUBENET = ['--layout', 'kubenet', '--pod-cidr', '10.244.0.0/24', '--no-masq', '10.244.0.0/16', '--no-masq', '10.220.0.0/16'];
const TRANSPARENT = ['--layout', 'transparent', '--range', '10.220.2.0/24,10.220.2.32,10.220.2.63,10.220.2.1'];

describe('every layout makes a conflist the plugin’s own validate accepts', () => {
  const layouts: [string, string[]][] = [
    ['transparent', TRANSPARENT],
    ['transparent, dual stack', [...TRANSPARENT, '--range', 'fd00:220:2::/64,fd00:220:2::1:0,fd00:220:2::1:ffff,fd00:220:2::1']],
    ['bridge', ['--layout', 'bridge', '--range', '10.220.2.0/24,10.220.2.32,10.220.2.63,10.220.2.1', '--uplink', 'eth0']],
    ['kubenet', KUBENET],
    ['overlay, dual stack', ['--layout', 'overlay', '--pod-cidr', '10.244.1.0/24', '--pod-cidr', 'fd00:244:1::/64', '--no-masq', '10.244.0.0/16', '--no-masq', 'fd00:244::/32']],
  ];
  for (const [what, args] of layouts) {
    it(what, () => {
      const confDir = join(dir, what.replace(/\W+/g, '-'));
      const r = install([...args, '--bin-dir', join(confDir, 'bin'), '--conf-dir', confDir]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const file = join(confDir, '10-vnet.conflist');
      expect(validate(file).status).toBe(0);
      expect(statSync(file).mode & 0o777).toBe(0o644);
      // the executable, under both names, one file: a copy of this one, not a link to it
      expect(statSync(join(confDir, 'bin', 'vnet')).ino).toBe(statSync(join(confDir, 'bin', 'vnet-ipam')).ino);
      expect(statSync(join(confDir, 'bin', 'vnet')).ino).not.toBe(statSync(BIN).ino);
    });
  }
});

describe('the Vagrant nodes’ provisioner writes what vnet install writes, for each layout it offers', () => {
  for (const [layout, args] of [['transparent', TRANSPARENT.slice(2)], ['kubenet', KUBENET.slice(2)]] as const) {
    it(layout, () => {
      const provisioned = spawnSync('bash', ['vagrant/provision.sh', '--node-index', '0', '--layout', layout, ...args, '--print-conflist'], { encoding: 'utf8' });
      expect(provisioned.status, provisioned.stderr).toBe(0);
      const r = install(['--layout', layout, ...args, '--dry-run']);
      expect(r.code, r.err).toBe(0);
      // --dry-run prints a line saying where it would write, then the conflist.
      const written = r.out.slice(r.out.indexOf('\n{') + 1, r.out.indexOf('\n}') + 2);
      expect(JSON.parse(provisioned.stdout)).toEqual(JSON.parse(written));
    });
  }
});

describe('per-node ranges never overlap: the installer refuses a layout that would, and writes nothing', () => {
  const cases: [string, string[], RegExp][] = [
    ['a peer inside this node’s pod CIDR', [...KUBENET, '--peer', '10.244.0.128/25=10.220.2.5'], /overlaps 10\.244\.0\.0\/24/],
    ['two peers overlapping each other', [...KUBENET, '--peer', '10.244.1.0/24=10.220.2.5', '--peer', '10.244.1.0/25=10.220.2.6'], /10\.244\.1\.0\/25 overlaps 10\.244\.1\.0\/24/],
    ['a peer overlapping this node’s slice of the VNet', [...TRANSPARENT, '--peer', '10.220.2.48/28=10.220.2.5'], /overlaps 10\.220\.2\.32-10\.220\.2\.63/],
    ['two IPv4 pod CIDRs', [...KUBENET, '--pod-cidr', '10.245.0.0/24'], /one pod range per family/],
  ];
  for (const [what, args, msg] of cases) {
    it(what, () => {
      const confDir = join(dir, 'refused');
      const r = install([...args, '--bin-dir', join(confDir, 'bin'), '--conf-dir', confDir]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
      expect(existsSync(confDir)).toBe(false);
    });
  }
});

describe('hostile or malformed parameters are refused with exit 2, naming the parameter', () => {
  const cases: [string, string[], RegExp][] = [
    ['no layout', ['--pod-cidr', '10.244.0.0/24'], /--layout/],
    ['an unknown layout', ['--layout', 'calico'], /--layout must be one of/],
    ['a --range in kubenet', [...KUBENET, '--range', '10.0.0.0/24,10.0.0.2,10.0.0.9,10.0.0.1'], /--pod-cidr/],
    ['a --range without a gateway', ['--layout', 'transparent', '--range', '10.220.2.0/24,10.220.2.32,10.220.2.63'], /--range/],
    ['a pod CIDR with host bits', ['--layout', 'kubenet', '--pod-cidr', '10.244.0.1/24', '--no-masq', '10.0.0.0/8'], /--pod-cidr/],
    ['kubenet without --no-masq', ['--layout', 'kubenet', '--pod-cidr', '10.244.0.0/24'], /--no-masq/],
    ['a network name with a newline', [...KUBENET, '--network', 'k8s\nip link del eth0'], /name/],
    ['a bridge name with a space', [...KUBENET, '--bridge', 'cbr 0'], /bridge/],
    ['a peer with a route injection', [...KUBENET, '--peer', '10.244.1.0/24=10.220.2.5 dev lo'], /--peer/],
    ['a peer of mixed families', [...KUBENET, '--peer', 'fd00:244:1::/64=10.220.2.5'], /--peer/],
    ['a range start outside its subnet', ['--layout', 'transparent', '--range', '10.220.2.0/24,10.220.3.32,10.220.2.63,10.220.2.1'], /rangeStart/],
    ['an unknown option', [...KUBENET, '--force'], /unknown option/i],
    ['--mtu that is not a number', [...KUBENET, '--mtu', 'abc'], /--mtu "abc": expected a whole number from 68 to 65535/],
    ['--mtu with a fraction', [...KUBENET, '--mtu', '1500.5'], /--mtu "1500\.5"/],
    ['--mtu out of range', [...KUBENET, '--mtu', '70000'], /--mtu "70000"/],
    ['--mtu in hex', [...KUBENET, '--mtu', '0x5dc'], /--mtu "0x5dc"/],
    ['a peer replacing this node’s own connected network', [...KUBENET, '--peer', '10.220.2.0/24=10.220.2.5'], /--peer 10\.220\.2\.0\/24: holds 10\.220\.2\.0\/24, a network this node is connected to \(dev eth0\): the route would replace or cover it/],
    ['a peer covering it (a wider prefix)', [...KUBENET, '--peer', '10.220.0.0/16=10.220.2.5'], /--peer 10\.220\.0\.0\/16: holds 10\.220\.2\.0\/24/],
    ['a peer via this node’s own address', [...KUBENET, '--peer', '10.244.1.0/24=10.220.2.4'], /10\.220\.2\.4 is this node's own address/],
    ['a peer via an address on no connected network', [...KUBENET, '--peer', '10.244.1.0/24=10.99.0.5'], /10\.99\.0\.5 is on no network this node is connected to/],
    ['a relative --plugins-dir', [...KUBENET, '--plugins-dir', 'usr/lib/cni'], /--plugins-dir "usr\/lib\/cni": expected an absolute path/],
    ['portmap chained but in neither the bin dir nor the plugins dir', [...KUBENET, '--plugins-dir', '/nonexistent-cni'], /the conflist chains portmap, which is neither in .*hostile\/bin nor in \/nonexistent-cni: apt-get install containernetworking-plugins/],
  ];
  for (const [what, args, msg] of cases) {
    it(what, () => {
      const before = lab.ipJson(home, ['route', 'show']);
      const r = install([...args, '--bin-dir', join(dir, 'hostile', 'bin'), '--conf-dir', join(dir, 'hostile')]);
      expect(r.code, r.out).toBe(2);
      expect(r.err).toMatch(msg);
      expect(existsSync(join(dir, 'hostile'))).toBe(false);
      expect(lab.ipJson(home, ['route', 'show'])).toEqual(before);
    });
  }
});

/** A plugins directory (as Debian's /usr/lib/cni) holding a stand-in portmap. */
function pluginsDir(name: string): string {
  const plugins = join(dir, name);
  mkdirSync(plugins, { recursive: true });
  writeFileSync(join(plugins, 'portmap'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return plugins;
}

describe('the plugins the conflist chains are where the runtime looks: the bin dir', () => {
  it('portmap missing from the bin dir is linked from the plugins dir (Debian’s /usr/lib/cni); present, it is left alone; --no-portmap needs none', () => {
    const plugins = pluginsDir('refplugins');
    const at = join(dir, 'chain');
    const r = install([...KUBENET, '--bin-dir', join(at, 'bin'), '--conf-dir', at, '--plugins-dir', plugins]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`linked ${join(at, 'bin', 'portmap')} -> ${join(plugins, 'portmap')}`);
    expect(readlinkSync(join(at, 'bin', 'portmap'))).toBe(join(plugins, 'portmap'));
    // A second run finds it there: nothing to link.
    const again = install([...KUBENET, '--bin-dir', join(at, 'bin'), '--conf-dir', at, '--plugins-dir', '/nonexistent-cni']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).not.toContain('linked');
    const bare = join(dir, 'bare');
    const none = install([...KUBENET, '--no-portmap', '--bin-dir', join(bare, 'bin'), '--conf-dir', bare, '--plugins-dir', '/nonexistent-cni']);
    expect(none.code, none.err).toBe(0);
    expect(existsSync(join(bare, 'bin', 'portmap'))).toBe(false);
  });
});

describe('scripts/install.sh --conf: the plugins a shipped conflist chains are linked into the bin dir, and one found nowhere is named', () => {
  // Inside the test's node namespace, as everything that runs the plugin here.
  const installSh = (args: string[]) => spawnSync('nsenter', [`--net=${home}`, 'bash', 'scripts/install.sh', '--bin-link', '', ...args], { encoding: 'utf8' });
  it('portmap from the plugins dir beside vnet; a type found nowhere is named in a warning, not linked', () => {
    const plugins = pluginsDir('sh-plugins');
    const at = join(dir, 'sh-ok');
    const r = installSh(['--prefix', join(at, 'bin'), '--conf', 'conf/10-azure-transparent.conflist', '--conf-dir', join(at, 'conf'), '--plugins-dir', plugins]);
    expect(r.status, r.stderr).toBe(0);
    expect(readlinkSync(join(at, 'bin', 'portmap'))).toBe(join(plugins, 'portmap'));
    expect(r.stdout).toContain(`linked ${join(at, 'bin', 'portmap')} -> ${join(plugins, 'portmap')}`);
    const none = join(dir, 'sh-none');
    const bad = installSh(['--prefix', join(none, 'bin'), '--conf', 'conf/10-azure-transparent.conflist', '--conf-dir', join(none, 'conf'), '--plugins-dir', '/nonexistent-cni']);
    expect(bad.status, bad.stderr).toBe(0);
    expect(bad.stderr).toMatch(/warning: .* names type portmap, which is neither in .*sh-none\/bin nor in \/nonexistent-cni: .*apt-get install containernetworking-plugins/);
    expect(existsSync(join(none, 'bin', 'portmap'))).toBe(false);
  });
  it('a plugin’s own field called "type" (calico’s policy) is not taken for a plugin to link', () => {
    const plugins = pluginsDir('sh-plugins');
    const at = join(dir, 'sh-calico');
    const r = installSh(['--prefix', join(at, 'bin'), '--conf', 'conf/seeds/aks-calico-chain.conflist', '--conf-dir', join(at, 'conf'), '--plugins-dir', plugins]);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(at, 'bin', 'k8s'))).toBe(false);
    expect(readlinkSync(join(at, 'bin', 'portmap'))).toBe(join(plugins, 'portmap'));
  });
});

describe('routes to the other nodes’ pod ranges are installed, as Azure’s route table would', () => {
  it('each --peer becomes a route via that node; installing again replaces, not duplicates', () => {
    const node = lab.ns('node');
    lab.in(node, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
    lab.in(node, ['ip', 'addr', 'add', '10.220.2.4/24', 'dev', 'eth0']);
    lab.in(node, ['ip', 'link', 'set', 'eth0', 'up']);
    lab.in(node, ['ip', 'link', 'set', 'peer0', 'up']);
    const args = [...KUBENET, '--peer', '10.244.1.0/24=10.220.2.5', '--peer', '10.244.2.0/24=10.220.2.6', '--bin-dir', join(dir, 'n', 'bin'), '--conf-dir', join(dir, 'n')];
    for (let i = 0; i < 2; i++) {
      const r = install(args, node);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/route 10\.244\.1\.0\/24 via 10\.220\.2\.5/);
    }
    const routes = lab.ipJson(node, ['route', 'show']).filter((r) => r.dst.startsWith('10.244.'));
    expect(routes.map((r) => `${r.dst} via ${r.gateway}`)).toEqual(['10.244.1.0/24 via 10.220.2.5', '10.244.2.0/24 via 10.220.2.6']);
    expect(JSON.parse(readFileSync(join(dir, 'n', '10-vnet.conflist'), 'utf8')).plugins[0].ipam.ranges).toEqual([[{ subnet: '10.244.0.0/24', gateway: '10.244.0.1' }]]);
  });
});

describe('the transparent layout without Azure’s fabric: a peer slice inside the connected VNet subnet is a route of its own', () => {
  it('--peer 10.220.2.64/27=10.220.2.5 on a node of 10.220.2.0/24 is installed, the subnet route kept', () => {
    const out = join(dir, 'slice');
    const r = install([...TRANSPARENT, '--peer', '10.220.2.64/27=10.220.2.5', '--bin-dir', join(out, 'bin'), '--conf-dir', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const routes = lab.ipJson(home, ['route', 'show']).map((x) => `${x.dst}${x.gateway ? ` via ${x.gateway}` : ''}`);
    expect(routes).toEqual(expect.arrayContaining(['10.220.2.0/24', '10.220.2.64/27 via 10.220.2.5']));
    lab.in(home, ['ip', 'route', 'del', '10.220.2.64/27']);
  });
});

describe('install never leaves a half install: a failure after the routes removes them, and nothing else is written', () => {
  it('a failure between the routes and the executable (VNET_TEST_FAIL_AT) leaves the routes as they were', () => {
    const before = lab.ipJson(home, ['route', 'show']);
    const out = join(dir, 'half');
    const r = install([...KUBENET, '--peer', '10.244.1.0/24=10.220.2.5', '--peer', '10.244.2.0/24=10.220.2.6', '--bin-dir', join(out, 'bin'), '--conf-dir', out], home, { VNET_TEST_FAIL_AT: 'the routes added' });
    expect(r.err).toMatch(/test fault \(VNET_TEST_FAIL_AT\) at: vnet install: the routes added, no executable yet/);
    expect(r.code).not.toBe(0);
    expect(lab.ipJson(home, ['route', 'show'])).toEqual(before);
    expect(existsSync(out)).toBe(false);
  });
});
