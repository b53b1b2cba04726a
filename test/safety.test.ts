// Safe by construction: nothing from outside (env, config, a delegated IPAM's result, prevResult)
// can change what `ip` runs, the pod's namespace is opened once and checked, and a failed call
// never harms a running pod or leaves anything behind. Every case runs the built binary inside a
// namespace playing the node, and compares the node before and after.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, BIN_DIR, Lab, REF_DIR, cniEnv, type Ran } from './helpers/lab.js';

const lab = new Lab();
let node = '';
let other = '';
const NET = 'azure';
const CANARY = join(lab.dir, 'pwned');
const FAKE_DIR = join(lab.dir, 'fakebin');
const FAKE_RESULT = join(lab.dir, 'fake-result.json');
const FAKE_DELS = join(lab.dir, 'fake-dels');

beforeAll(() => {
  ({ node } = lab.aksNode());
  other = lab.ns('other');
  // A fake IPAM plugin that prints whatever result a test puts in FAKE_RESULT, and counts DELs.
  mkdirSync(FAKE_DIR);
  writeFileSync(
    join(FAKE_DIR, 'fake-ipam'),
    `#!/bin/sh\nif [ "$CNI_COMMAND" = DEL ]; then echo del >> '${FAKE_DELS}'; exit 0; fi\nexec cat '${FAKE_RESULT}'\n`,
  );
  chmodSync(join(FAKE_DIR, 'fake-ipam'), 0o755);
});
afterAll(() => lab.cleanup());
afterEach(() => {
  for (const l of azvLinks()) lab.in(node, ['ip', 'link', 'del', l.ifname]);
  rmSync(dataDir(), { recursive: true, force: true });
  rmSync(FAKE_DELS, { force: true });
});

const dataDir = () => join(lab.dir, 'ipam');
const RANGE = { subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60', gateway: '10.224.0.1' };
const conf = (over: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: NET,
  type: 'vnet',
  ipam: { type: 'vnet-ipam', ranges: [[RANGE]], routes: [{ dst: '0.0.0.0/0' }], dataDir: dataDir(), ...ipam },
  ...over,
});

let seq = 0;
const pod = () => {
  const n = ++seq;
  return { id: `${lab.prefix}-c${n}`, netns: lab.ns(`pod${n}`) };
};
type Pod = { id: string; netns: string };
const path = `${BIN_DIR}:${REF_DIR}:${FAKE_DIR}`;
const run = (command: string, p: Partial<Pod>, stdin: object, extra: Record<string, string | undefined> = {}, ifname?: string) =>
  lab.run({ node, env: { ...cniEnv(command, { id: p.id, netns: p.netns ?? '', ifname, path }), ...extra }, stdin });
const add = (p: Pod, c: object = conf(), ifname?: string) => run('ADD', p, c, {}, ifname);
const del = (p: Partial<Pod>, c: object = conf(), ifname?: string) => run('DEL', p, c, {}, ifname);

function ok(r: Ran): any {
  expect(r.stdout + r.stderr, `exit ${r.code}`).not.toMatch(/"code":/);
  expect(r.code).toBe(0);
  return r.json;
}
function fails(r: Ran, code: number, msg?: RegExp): any {
  expect(r.code, r.stdout).toBe(1);
  expect(r.json).toMatchObject({ code });
  if (msg) expect(r.json.msg).toMatch(msg);
  return r.json;
}

const azvLinks = () => lab.ipJson(node, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'));
/** Every file under a directory, recursively, as relative paths. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => !statSync(join(dir, f)).isDirectory()).sort();
}
/** What ADD or DEL may leave in the store when nothing is held: host-local's lock and cursor. */
const held = () => files(join(dataDir(), NET)).filter((f) => f !== 'lock' && f !== '.boot' && !f.startsWith('last_reserved_ip.'));

/** The node as the tests see it: links, addresses, routes, neighbours, sysctls, and the files around. */
function snapshot() {
  // IPv6 DAD ends on its own while a test runs: an address's `tentative` flag is the kernel's, not a change.
  const addrs = (infos: any[] = []) => infos.map(({ tentative, ...rest }) => rest);
  const strip = (rows: any[]) => rows.map(({ ifindex, stats, stats64, addr_info, ...rest }) => ({ ...rest, addr_info: addrs(addr_info) }));
  return {
    links: strip(lab.ipJson(node, ['-d', 'addr', 'show'])),
    routes: lab.ipJson(node, ['route', 'show', 'table', 'all']),
    routes6: lab.ipJson(node, ['-6', 'route', 'show', 'table', 'all']),
    neighs: lab.ipJson(node, ['neigh', 'show']).filter((n) => n.state?.includes('PERMANENT')),
    sysctls: ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding', 'net/ipv4/conf/all/proxy_arp', 'net/ipv4/conf/eth0/proxy_arp'].map((k) =>
      lab.in(node, ['cat', `/proc/sys/${k}`]).trim(),
    ),
    other: strip(lab.ipJson(other, ['-d', 'addr', 'show'])),
    // the store's lock and round-robin cursor may appear (host-local's too), and its boot stamp; nothing else may
    files: files(lab.dir).filter((f) => f !== 'vnet.log' && !f.startsWith('fake') && !/^ipam\/azure\/(lock|last_reserved_ip\.\d+|\.boot)$/.test(f)),
    held: held(),
  };
}
/** Runs `call`, then checks that the node is exactly as before and no injected command ran. */
async function unchanged(call: () => Promise<void>) {
  const before = snapshot();
  await call();
  expect(snapshot()).toEqual(before);
  expect(existsSync(CANARY)).toBe(false);
}
const INJECT = `link del eth0\nnetns exec x touch ${CANARY}`;

describe('the pod namespace is opened once and must be a network namespace other than the node’s', () => {
  const cases: [string, () => string, number, RegExp][] = [
    ['a path that does not exist', () => join(lab.dir, `nope\n${INJECT}`), 3, /does not exist/],
    [
      'a directory whose name holds batch lines',
      () => {
        const d = join(lab.dir, `pod1\n${INJECT}\n#`);
        mkdirSync(d, { recursive: true });
        return `${d}/../..`;
      },
      4,
      /is not a network namespace \(it is a directory\)/,
    ],
    ['/dev/null', () => '/dev/null', 4, /it is a device/],
    ['a regular file', () => (writeFileSync(join(lab.dir, 'plain'), ''), join(lab.dir, 'plain')), 4, /it is a file/],
    ['the plugin’s own namespace, /proc/self/ns/net', () => '/proc/self/ns/net', 4, /own network namespace/],
    ['the node’s namespace by its name', () => node, 4, /own network namespace/],
    ['a pid namespace, /proc/self/ns/pid', () => '/proc/self/ns/pid', 4, /is not a network namespace \(it is a pid namespace\)/],
    ['a user namespace, /proc/self/ns/user', () => '/proc/self/ns/user', 4, /is not a network namespace \(it is a user namespace\)/],
    ['a mount namespace, /proc/self/ns/mnt', () => '/proc/self/ns/mnt', 4, /is not a network namespace \(it is a mnt namespace\)/],
    [
      'a pid namespace bind-mounted as a runtime mounts a network one',
      () => {
        const f = join(lab.dir, 'pidns');
        writeFileSync(f, '');
        execFileSync('mount', ['--bind', `/proc/${process.pid}/ns/pid`, f]);
        return f;
      },
      4,
      /is not a network namespace \(it is a pid namespace\)/,
    ],
  ];
  for (const [what, netns, code, msg] of cases) {
    it(`refuses ${what} before IPAM allocates anything`, async () => {
      const p = { id: `${lab.prefix}-ns`, netns: netns() };
      try {
        await unchanged(async () => void fails(await add(p), code, msg));
      } finally {
        if (existsSync(join(lab.dir, 'pidns'))) spawnSync('umount', [join(lab.dir, 'pidns')]);
      }
      rmSync(join(lab.dir, 'pidns'), { force: true });
      rmSync(join(lab.dir, 'plain'), { force: true });
      for (const f of readdirSync(lab.dir)) if (f.startsWith('pod1\n')) rmSync(join(lab.dir, f), { recursive: true });
    });
  }
  for (const name of ['pod one', 'pod#1', "pod'1\"x"]) {
    it(`a namespace path holding ${JSON.stringify(name.replace(/pod/, ''))} works exactly: children get the opened namespace`, async () => {
      const p = pod();
      const link = join(lab.dir, name);
      symlinkSync(p.netns, link);
      try {
        const r = ok(await add({ id: p.id, netns: link }));
        expect(r.interfaces[1].sandbox).toBe(link);
        const eth0 = lab.ipJson(p.netns, ['addr', 'show', 'dev', 'eth0'])[0];
        expect(eth0.addr_info.some((a: any) => `${a.local}/${a.prefixlen}` === r.ips[0].address)).toBe(true);
        ok(await run('CHECK', { id: p.id, netns: link }, { ...conf(), prevResult: r }));
        ok(await del(p));
        expect(azvLinks()).toEqual([]);
        expect(held()).toEqual([]);
      } finally {
        rmSync(link, { force: true });
      }
    });
  }
});

describe('every kernel-valid interface name works exactly; others are refused with code 4', () => {
  for (const ifname of ['"e""netns"x#', '"x"', 'e\\', 'a#b', "it's", '-x', 'é1']) {
    it(`CNI_IFNAME ${JSON.stringify(ifname)}: the pod gets exactly that name, nothing else moves`, async () => {
      const p = pod();
      const before = snapshot().other;
      const r = ok(await add(p, conf(), ifname));
      expect(r.interfaces[1].name).toBe(ifname);
      const names = lab.ipJson(p.netns, ['link', 'show']).map((l) => l.ifname);
      expect(names).toEqual(['lo', ifname]);
      expect(snapshot().other).toEqual(before);
      ok(await run('CHECK', p, { ...conf(), prevResult: r }, {}, ifname));
      ok(await del(p, conf(), ifname));
      expect(azvLinks()).toEqual([]);
      expect(held()).toEqual([]);
      expect(existsSync(CANARY)).toBe(false);
    });
  }
  for (const ifname of ['a b', `e\n${INJECT}`, 'x'.repeat(16), 'a/b', 'a:b', '.', '..', 'a\u0001', 'a\tb']) {
    it(`CNI_IFNAME ${JSON.stringify(ifname)} is refused, the node unchanged`, async () => {
      await unchanged(async () => void fails(await add(pod(), conf(), ifname), 4, /CNI_IFNAME/));
    });
  }
});

describe('hostile values in the environment and the config are refused before anything is done', () => {
  const env: [string, Record<string, string>, RegExp][] = [
    ['CNI_CONTAINERID with a newline', { CNI_CONTAINERID: `c\n${INJECT}` }, /CNI_CONTAINERID/],
    ['CNI_CONTAINERID with a space', { CNI_CONTAINERID: 'c 1' }, /CNI_CONTAINERID/],
    ['CNI_CONTAINERID with a path', { CNI_CONTAINERID: '../c' }, /CNI_CONTAINERID/],
    ['CNI_ARGS IP with a newline', { CNI_ARGS: `IP=10.224.0.20\n${INJECT}` }, /IP/],
  ];
  for (const [what, vars, msg] of env) {
    it(`${what}: code 4`, async () => {
      const p = pod();
      await unchanged(async () => void fails(await run('ADD', p, conf(), vars), 4, msg));
    });
  }
  const configs: [string, object, RegExp][] = [
    ['a network name with a newline', conf({ name: `azure\n${INJECT}` }), /name/],
    ['a network name of 300 characters', conf({ name: 'n'.repeat(300) }), /name.*longer than 200/],
    ['ipsToRouteViaHost with a newline', conf({ ipsToRouteViaHost: [`169.254.20.10\n${INJECT}`] }), /ipsToRouteViaHost\[0\]/],
    ['ipsToRouteViaHost with a prefix', conf({ ipsToRouteViaHost: ['169.254.20.10/32'] }), /ipsToRouteViaHost\[0\]/],
    ['ipsToRouteViaHost with a zone', conf({ ipsToRouteViaHost: ['fe80::1%eth0'] }), /ipsToRouteViaHost\[0\]/],
    ['mtu as text', conf({ mtu: `1500\n${INJECT}` }), /mtu/],
    ['mtu out of range', conf({ mtu: 65536 }), /mtu/],
    ['a relative logFile', conf({ logFile: 'vnet.log' }), /logFile/],
    ['a logFile with a newline', conf({ logFile: `/tmp/x\n${INJECT}` }), /logFile/],
    ['a bridge name with a space', conf({ bridge: 'azure 0' }), /bridge/],
    ['an uplink of 16 bytes', conf({ uplink: 'e'.repeat(16) }), /uplink/],
    ['hairpinMode as text', conf({ hairpinMode: 'yes' }), /hairpinMode/],
    ['isGateway as text', conf({ isGateway: 'true' }), /isGateway/],
    ['an ipMasqExclude with a newline', conf({ mode: 'bridge', ipMasq: true, ipMasqExclude: [`10.0.0.0/8\n${INJECT}`] }), /ipMasqExclude\[0\]/],
    ['an ipMasqExclude that is an address', conf({ mode: 'bridge', ipMasq: true, ipMasqExclude: ['10.0.0.1'] }), /ipMasqExclude\[0\]/],
    ['an IPAM type that is a path', conf({ ipam: { type: '../../bin/sh' } }), /ipam\.type/],
    ['an IPAM route with a newline', conf({}, { routes: [{ dst: `0.0.0.0/0\n${INJECT}` }] }), /routes\[0\]\.dst/],
    ['an IPAM route with host bits', conf({}, { routes: [{ dst: '10.1.2.3/8' }] }), /routes\[0\]\.dst.*host bits/],
    ['an IPAM route gateway with a space', conf({}, { routes: [{ dst: '10.0.0.0/8', gw: '10.224.0.1 dev eth0' }] }), /routes\[0\]\.gw/],
    ['a relative dataDir', conf({}, { dataDir: 'ipam' }), /dataDir/],
    // IPv6 spellings: zones, IPv4-mapped addresses, brackets, "::/0" written every which way
    ['ipsToRouteViaHost IPv4-mapped', conf({ ipsToRouteViaHost: ['::ffff:169.254.20.10'] }), /ipsToRouteViaHost\[0\]/],
    ['ipsToRouteViaHost in brackets', conf({ ipsToRouteViaHost: ['[fd00::10]'] }), /ipsToRouteViaHost\[0\]/],
    ['ipsToRouteViaHost "::/0"', conf({ ipsToRouteViaHost: ['::/0'] }), /ipsToRouteViaHost\[0\]/],
    ['an IPv6 ipMasqExclude with a zone', conf({ mode: 'bridge', ipMasq: true, ipMasqExclude: ['fe80::%eth0/64'] }), /ipMasqExclude\[0\]/],
    ['an IPv4-mapped ipMasqExclude', conf({ mode: 'bridge', ipMasq: true, ipMasqExclude: ['::ffff:0.0.0.0/96'] }), /ipMasqExclude\[0\]/],
    ['an IPAM route ":::/0"', conf({}, { routes: [{ dst: ':::/0' }] }), /routes\[0\]\.dst/],
    ['an IPAM route "::/0 " with a space', conf({}, { routes: [{ dst: '::/0 ' }] }), /routes\[0\]\.dst/],
    ['an IPAM route "::/00000"', conf({}, { routes: [{ dst: '::/00000' }] }), /routes\[0\]\.dst/],
    ['an IPAM route "::1/0" (host bits)', conf({}, { routes: [{ dst: '::1/0' }] }), /routes\[0\]\.dst.*host bits/],
    ['an IPAM route "::/129"', conf({}, { routes: [{ dst: '::/129' }] }), /routes\[0\]\.dst/],
    ['an IPAM route gw with a zone', conf({}, { routes: [{ dst: '::/0', gw: 'fe80::1%eth0' }] }), /routes\[0\]\.gw/],
    ['an IPv6 range subnet with a zone', conf({}, { ranges: [[RANGE], [{ subnet: 'fd00::%eth0/64' }]] }), /ranges\[1\]\[0\]\.subnet/],
    ['an IPv4-mapped IPv6 range', conf({}, { ranges: [[RANGE], [{ subnet: '::ffff:10.0.0.0/120' }]] }), /ranges\[1\]\[0\]\.subnet/],
  ];
  for (const [what, c, msg] of configs) {
    it(`${what}: code 7 naming the field`, async () => {
      await unchanged(async () => void fails(await add(pod(), c), 7, msg));
    });
  }
});

describe('a delegated IPAM result is parsed strictly; a bad one is released and changes nothing', () => {
  const good = { cniVersion: '1.1.0', ips: [{ address: '10.224.0.50/16', gateway: '10.224.0.1' }], routes: [{ dst: '0.0.0.0/0' }] };
  const fake = conf({}, { type: 'fake-ipam' });
  const cases: [string, object][] = [
    ['an address with a trailing /x', { ...good, ips: [{ address: '10.224.0.50/16/x' }] }],
    ['an address with a newline', { ...good, ips: [{ address: `10.224.0.50/16\n${INJECT}` }] }],
    ['an address without a prefix', { ...good, ips: [{ address: '10.224.0.50' }] }],
    ['an address with a zone', { ...good, ips: [{ address: 'fe80::1%eth0/64' }] }],
    ['an IPv4-mapped IPv6 address', { ...good, ips: [{ address: '::ffff:10.224.0.50/128' }] }],
    ['an IPv6 address with a zone beside a good IPv4 one', { ...good, ips: [...good.ips, { address: 'fd00::50%eth0/64', gateway: 'fd00::1' }] }],
    ['an IPv6 gateway with a zone', { ...good, ips: [...good.ips, { address: 'fd00::50/64', gateway: 'fe80::1%eth0' }] }],
    ['an IPv6 address /129', { ...good, ips: [...good.ips, { address: 'fd00::50/129' }] }],
    ['an IPv6 route ":::/0"', { ...good, routes: [{ dst: ':::/0' }] }],
    ['an IPv6 route "::1/0" (host bits)', { ...good, routes: [{ dst: '::1/0' }] }],
    ['an IPv6 route gw IPv4-mapped', { ...good, routes: [{ dst: '::/0', gw: '::ffff:10.224.0.1' }] }],
    ['a gateway with a space', { ...good, ips: [{ address: '10.224.0.50/16', gateway: '10.224.0.1 dev eth0' }] }],
    ['a route dst with a newline', { ...good, routes: [{ dst: `0.0.0.0/0\n${INJECT}` }] }],
    ['a route dst with host bits', { ...good, routes: [{ dst: '10.1.2.3/8' }] }],
    ['a route gw that is not an address', { ...good, routes: [{ dst: '10.0.0.0/8', gw: 'eth0' }] }],
    ['an interface index that is not a number', { ...good, ips: [{ address: '10.224.0.50/16', interface: 'x' }] }],
    ['not JSON at all', 'ip link del eth0' as unknown as object],
  ];
  for (const [what, result] of cases) {
    it(`${what}: code 6, IPAM DEL called, node unchanged`, async () => {
      writeFileSync(FAKE_RESULT, typeof result === 'string' ? result : JSON.stringify(result));
      await unchanged(async () => void fails(await add(pod(), fake), 6, /IPAM plugin fake-ipam/));
      expect(readFileSync(FAKE_DELS, 'utf8')).toBe('del\n');
    });
  }
  it('the same plugin with a good result wires the pod (the fake is sound)', async () => {
    writeFileSync(FAKE_RESULT, JSON.stringify(good));
    const p = pod();
    const r = ok(await add(p, fake));
    expect(r.ips[0].address).toBe('10.224.0.50/16');
    ok(await del(p, fake));
    expect(azvLinks()).toEqual([]);
  });
});

describe('prevResult is outside text: CHECK refuses a bad one with code 7', () => {
  const cases: [string, (r: any) => object][] = [
    ['an address with a trailing /x', (r) => ({ ...r, ips: [{ ...r.ips[0], address: `${r.ips[0].address}/x` }] })],
    ['an address with a newline', (r) => ({ ...r, ips: [{ ...r.ips[0], address: `${r.ips[0].address}\n${INJECT}` }] })],
    ['a route with a newline', (r) => ({ ...r, routes: [{ dst: `0.0.0.0/0\n${INJECT}`, gw: '169.254.1.1' }] })],
    ['a route with host bits', (r) => ({ ...r, routes: [{ dst: '10.1.2.3/8', gw: '169.254.1.1' }] })],
    ['ips that are not a list', (r) => ({ ...r, ips: 'x' })],
    ['an IPv6 address with a zone', (r) => ({ ...r, ips: [...r.ips, { address: 'fd00::50%eth0/64', gateway: 'fe80::1234:5678:9abc', interface: 1 }] })],
    ['an IPv6 route "::/0" with a zoned gateway', (r) => ({ ...r, routes: [...r.routes, { dst: '::/0', gw: 'fe80::1234:5678:9abc%eth0' }] })],
  ];
  for (const [what, spoil] of cases) {
    it(what, async () => {
      const p = pod();
      const r = ok(await add(p));
      await unchanged(async () => void fails(await run('CHECK', p, { ...conf(), prevResult: spoil(r) }), 7, /prevResult/));
      ok(await del(p));
    });
  }
});

describe('a repeated ADD that fails leaves the running pod exactly as it was', () => {
  const cases: [string, () => object][] = [
    ['vnet-ipam', () => conf()],
    ['the reference static IPAM', () => conf({ cniVersion: '1.0.0' }, { type: 'static', addresses: [{ address: '10.224.0.77/16' }], ranges: undefined })],
  ];
  for (const [what, c] of cases) {
    it(`with ${what}: code 101, the veth, the address and the allocation stay`, async () => {
      const p = pod();
      const r = ok(await add(p, c()));
      const podBefore = lab.ipJson(p.netns, ['addr', 'show']);
      await unchanged(async () => void fails(await add(p, c()), 101, /already attached.*DEL it first/));
      expect(lab.ipJson(p.netns, ['addr', 'show'])).toEqual(podBefore);
      expect(lab.in(p.netns, ['ping', '-c', '1', '-W', '2', '10.224.0.4'])).toContain('1 received');
      ok(await run('CHECK', p, { ...c(), prevResult: r }));
      ok(await del(p, c()));
      expect(azvLinks()).toEqual([]);
    });
  }
});

describe('DEL parses only what it needs, so an edited config still frees everything', () => {
  const edits: [string, Record<string, unknown>][] = [
    ['an mtu now out of range', { mtu: 1 }],
    ['an unknown mode', { mode: 'macvlan' }],
    ['the mode switched to bridge', { mode: 'bridge' }],
    ['switched to Azure’s bridge layout', { mode: 'bridge', uplink: 'eth0' }],
    ['ipMasq turned on (not implemented)', { ipMasq: true }],
    ['bad ipsToRouteViaHost and logLevel', { ipsToRouteViaHost: ['x'], logLevel: 'loud' }],
    ['ranges now invalid', { ipam: { type: 'vnet-ipam', ranges: 'x', dataDir: dataDir() } }],
  ];
  for (const [what, over] of edits) {
    it(`${what}: DEL exits 0, the veth and the address go`, async () => {
      const p = pod();
      ok(await add(p));
      ok(await del(p, { ...conf(), ...over, ipam: over.ipam ?? conf().ipam }));
      expect(azvLinks()).toEqual([]);
      expect(held()).toEqual([]);
    });
  }
});

describe('GC keeps going past a failed item and reports every failure', () => {
  it('a link that cannot be deleted does not stop the stale veths after it', async () => {
    const keep = pod();
    const stale1 = pod();
    const stale2 = pod();
    const rk = ok(await add(keep));
    ok(await add(stale1));
    ok(await add(stale2));
    // lo comes first in the link list and cannot be deleted; mark it as ours.
    lab.in(node, ['ip', 'link', 'set', 'dev', 'lo', 'alias', `vnet:${NET}:ghost:eth0`]);
    try {
      const r = await run('GC', {}, { ...conf(), 'cni.dev/valid-attachments': [{ containerID: keep.id, ifname: 'eth0' }] });
      fails(r, 5, /link del dev lo: /);
      expect(azvLinks().map((l) => l.ifname)).toEqual([rk.interfaces[0].name]);
      expect(held().filter((f) => !f.startsWith('.'))).toEqual([rk.ips[0].address.split('/')[0]]);
    } finally {
      lab.in(node, ['ip', 'link', 'set', 'dev', 'lo', 'alias', '']);
    }
    ok(await del(keep));
  });
});

describe('a failed ADD leaves the node as it was, IPv4 forwarding included', () => {
  it('forwarding off, the pod’s interface name taken: ADD fails, forwarding still off', async () => {
    lab.in(node, ['sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward']);
    const p = pod();
    lab.in(p.netns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
    await unchanged(async () => void fails(await add(p), 102, /Creating veth pair/));
    expect(lab.in(node, ['cat', '/proc/sys/net/ipv4/ip_forward']).trim()).toBe('0');
  });
});

describe('container IDs of any length the runtime sends work', () => {
  it('a 300-character container ID: ADD, GC keeps it, DEL frees it', async () => {
    const p = { id: `${lab.prefix}-${'c'.repeat(300)}`, netns: lab.ns(`long${++seq}`) };
    const r = ok(await add(p));
    const alias = lab.ipJson(node, ['link', 'show', 'dev', r.interfaces[0].name])[0].ifalias;
    expect(alias.startsWith(`vnet:${NET}:${lab.prefix}-ccc`)).toBe(true);
    expect(alias.length).toBeLessThanOrEqual(255);
    ok(await run('GC', {}, { ...conf(), 'cni.dev/valid-attachments': [{ containerID: p.id, ifname: 'eth0' }] }));
    expect(azvLinks()).toHaveLength(1);
    ok(await del(p));
    expect(azvLinks()).toEqual([]);
    expect(held()).toEqual([]);
  });
});

describe('the system tools run are the system’s, whatever PATH holds', () => {
  it('an `ip`, `nsenter` and `nft` planted first on PATH never run; ADD and DEL work', async () => {
    const planted = join(lab.dir, 'planted');
    mkdirSync(planted, { recursive: true });
    const marker = join(lab.dir, 'planted-ran');
    for (const name of ['ip', 'nsenter', 'nft']) {
      writeFileSync(join(planted, name), `#!/bin/sh\necho ${name} >> '${marker}'\nexit 1\n`);
      chmodSync(join(planted, name), 0o755);
    }
    const p = pod();
    const env = { PATH: `${planted}:${process.env.PATH}` };
    ok(await run('ADD', p, conf(), env));
    ok(await run('DEL', p, conf(), env));
    expect(existsSync(marker)).toBe(false);
  });
});

describe('the log cannot be forged and is private, whatever the umask', () => {
  it('a newline in CNI_ARGS stays on its line; the log is created 0600 under umask 0', async () => {
    const logFile = join(lab.dir, 'private', 'vnet.log');
    const old = process.umask(0);
    try {
      const p = pod();
      const r = await run('ADD', p, conf({ logFile }), {
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=a\n2026/01/01 00:00:00.000 [1] [vnet] FORGED`,
        VNET_LOG_FILE: '',
      });
      ok(r);
      ok(await del(p, conf({ logFile })));
    } finally {
      process.umask(old);
    }
    const lines = readFileSync(logFile, 'utf8').split('\n');
    expect(lines.some((l) => l.includes('FORGED'))).toBe(true);
    expect(lines.some((l) => l.startsWith('2026/01/01'))).toBe(false);
    expect(statSync(logFile).mode & 0o777).toBe(0o600);
    const store = join(dataDir(), NET);
    expect(statSync(store).mode & 0o777).toBe(0o700);
  });
});

describe('explain quotes every value it prints, so its lines can be pasted', () => {
  const explain = (args: string[]) =>
    spawnSync(BIN, ['explain', '--conf', 'conf/10-azure-transparent.conflist', ...args], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
  it('a namespace path with spaces, quotes and $( ) is single-quoted; comments stay comments', () => {
    const netns = `/var/run/netns/a b'$(touch ${CANARY})\n#x`;
    const r = explain(['--container-id', 'c0ffee', '--netns', netns, '--ip', '10.224.0.17']);
    expect(r.status).toBe(0);
    for (const l of r.stdout.split('\n')) expect(l).toMatch(/^(#|ip |nsenter '--net=|sysctl -w |$)/);
    expect(r.stdout).toContain(`nsenter '--net=/var/run/netns/a b'\\''$(touch ${CANARY})\n#x' ip addr add 10.224.0.17/16 dev eth0`);
  });
  it('an interface name with quotes is quoted as the plugin would pass it', () => {
    const r = explain(['--container-id', 'c0ffee', '--netns', '/run/netns/p', '--ifname', `it's#1`, '--ip', '10.224.0.17']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`ip addr add 10.224.0.17/16 dev 'it'\\''s#1'`);
  });
  for (const [what, args] of [
    ['a container ID with a newline', ['--container-id', 'c\nip link del eth0', '--netns', '/run/netns/p']],
    ['an --ip with a newline', ['--container-id', 'c', '--netns', '/run/netns/p', '--ip', '10.224.0.17/16\nip link del eth0']],
  ] as const) {
    it(`${what} is refused`, () => {
      const r = explain([...args]);
      expect(r.status).not.toBe(0);
      expect(r.stdout).toBe('');
    });
  }
});

describe('the store never follows a symlink under dataDir', () => {
  const store = () => join(dataDir(), NET);
  const victim = join(lab.dir, 'victim');
  const victimFiles = () => (existsSync(victim) ? readdirSync(victim).sort() : []);
  const plant = (name: string, target: string) => {
    mkdirSync(store(), { recursive: true });
    symlinkSync(target, join(store(), name));
  };
  afterEach(() => rmSync(victim, { recursive: true, force: true }));
  const setVictim = () => {
    mkdirSync(victim, { recursive: true });
    writeFileSync(join(victim, 'keep'), 'precious');
  };

  it('the network directory itself a symlink: ADD refuses, naming it; nothing written there', async () => {
    setVictim();
    mkdirSync(dataDir(), { recursive: true });
    symlinkSync(victim, store());
    await unchanged(async () => void fails(await add(pod()), 5, /symbolic link/));
    expect(victimFiles()).toEqual(['keep']);
  });
  it('a .by-container symlink: ADD and GC refuse, naming it; the target is untouched', async () => {
    setVictim();
    plant('.by-container', victim);
    await unchanged(async () => void fails(await add(pod()), 5, /\.by-container.*symbolic link|symbolic link.*\.by-container/));
    const r = await run('GC', {}, { ...conf(), 'cni.dev/valid-attachments': [] });
    expect(r.code).toBe(1);
    expect(r.json.msg).toMatch(/symbolic link/);
    expect(victimFiles()).toEqual(['keep']);
  });
  it('a dangling lock symlink: STATUS and ADD refuse at once, and its target is never created', async () => {
    plant('lock', join(victim, 'created'));
    const s = await run('STATUS', {}, conf());
    expect(s.json.code).toBe(50);
    expect(s.json.msg).toMatch(/lock.*symbolic link|symbolic link.*lock/);
    fails(await add(pod()), 5, /symbolic link/);
    expect(existsSync(victim)).toBe(false);
  });
  it('a .lock symlink: ADD fails at once naming it (not "try again" after a 30 s wait)', async () => {
    setVictim();
    plant('.lock', victim);
    await unchanged(async () => void fails(await add(pod()), 5, /\.lock.*symbolic link|symbolic link.*\.lock/));
    expect(victimFiles()).toEqual(['keep']);
  });
  it('an address file planted as a symlink is never read or written through', async () => {
    setVictim();
    plant('10.224.0.10', join(victim, 'keep'));
    const p = pod();
    const r = await add(p);
    expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('precious');
    if (r.code === 0) expect(r.json.ips[0].address).not.toBe('10.224.0.10/16');
    else expect(r.json.msg).toMatch(/symbolic link/);
    ok(await del(p));
    expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('precious');
    expect(victimFiles()).toEqual(['keep']);
  });
});

describe('out of resources is a CNI error with code 11, never a crash, and leaves nothing', () => {
  // Below ~17 descriptors node itself aborts before any of the plugin runs (its own event loops).
  for (const nofile of [18, 20, 22, 24, 26, 28, 30, 32]) {
    it(`ADD with ${nofile} file descriptors: a result, or code 11 with nothing made or held`, async () => {
      const p = pod();
      const env = { PATH: process.env.PATH!, ...cniEnv('ADD', { id: p.id, netns: p.netns }), CNI_PATH: path, VNET_LOG_FILE: join(lab.dir, 'vnet.log') };
      const r = spawnSync('nsenter', [`--net=${node}`, 'prlimit', `--nofile=${nofile}`, BIN], { input: JSON.stringify(conf()), encoding: 'utf8', env: env as NodeJS.ProcessEnv });
      expect(r.signal).toBeNull();
      const answer = JSON.parse(r.stdout);
      if (r.status === 0) {
        expect(answer.ips).toHaveLength(1);
        ok(await del(p));
      } else {
        expect(answer).toMatchObject({ code: 11, msg: expect.stringMatching(/out of resources.*try again later|try again later/) });
      }
      expect(azvLinks()).toEqual([]);
      expect(held()).toEqual([]);
    });
  }
});
