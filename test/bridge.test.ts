// Bridge mode, kubenet's layout (seed 000): a `cbr0` bridge holding the pod range's gateway, a
// veth port per pod, a permanent neighbour entry per pod on the bridge. In namespaces, with the
// built binary, the plugin running inside the node namespace as a runtime runs it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Lab, ask, cniEnv, sh, whoami, type Ran } from './helpers/lab.js';
import { SUPPORTED_VERSIONS } from '../src/cni/version.js';
import { l2Names } from '../src/net/nft.js';

const lab = new Lab();
let node = '';
const NET = 'kubenet';
const BR = `${lab.prefix.slice(0, 6)}br`;

beforeAll(() => {
  node = lab.ns('node');
});
afterAll(() => lab.cleanup());
afterEach(() => {
  for (const l of lab.ipJson(node, ['link', 'show']).filter((x) => x.ifname.startsWith('azv'))) lab.in(node, ['ip', 'link', 'del', l.ifname]);
  rmSync(dataDir(), { recursive: true, force: true });
});

const dataDir = () => join(lab.dir, 'ipam');
const conf = (over: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: NET,
  type: 'vnet',
  mode: 'bridge',
  bridge: BR,
  isGateway: true,
  mtu: 1500,
  ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.244.0.0/24', gateway: '10.244.0.1' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: dataDir() },
  ...over,
});

let seq = 0;
const pod = () => ({ id: `${lab.prefix}-c${++seq}`, netns: lab.ns(`pod${seq}`) });
type Pod = { id: string; netns: string };
const call = (command: string, p: Partial<Pod>, stdin: object, on = node) =>
  lab.run({ node: on, env: cniEnv(command, { id: p.id, netns: p.netns ?? '' }), stdin });
const add = (p: Pod, c: object = conf(), on = node) => call('ADD', p, c, on);
const del = (p: Partial<Pod>, c: object = conf(), on = node) => call('DEL', p, c, on);
function ok(r: Ran): any {
  expect(r.stdout + r.stderr, `exit ${r.code}`).not.toMatch(/"code":/);
  expect(r.code).toBe(0);
  return r.json;
}

const ports = (on = node, br = BR) => lab.ipJson(on, ['link', 'show']).filter((l) => l.master === br).map((l) => l.ifname);
const staticNeighs = (on = node) => lab.ipJson(on, ['neigh', 'show', 'dev', BR]).filter((n) => n.state?.includes('PERMANENT'));
function held(): string[] {
  const dir = join(dataDir(), NET);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
}
function expectClean(on = node) {
  expect(ports(on)).toEqual([]);
  expect(staticNeighs(on)).toEqual([]);
  expect(held()).toEqual([]);
}
const ping = (from: string, to: string) => lab.ping(from, to);

describe('ADD wires a pod the way kubenet does: a port of cbr0, the bridge is the gateway', () => {
  it('two pods ping each other and the gateway; the tables are kubenet’s; DEL leaves the bridge and nothing else', async () => {
    const a = pod();
    const b = pod();
    const ra = ok(await add(a));
    const rb = ok(await add(b));
    const ipA = ra.ips[0].address.split('/')[0];
    const ipB = rb.ips[0].address.split('/')[0];
    expect(ping(a.netns, ipB)).toContain('1 received');
    expect(ping(b.netns, ipA)).toContain('1 received');
    expect(ping(a.netns, '10.244.0.1')).toContain('1 received');

    const bridge = lab.ipJson(node, ['addr', 'show', 'dev', BR])[0];
    expect(bridge.addr_info.find((x: any) => x.family === 'inet')).toMatchObject({ local: '10.244.0.1', prefixlen: 24 });
    expect(bridge.address).toBe(ra.interfaces[0].mac);
    expect(ports().sort()).toEqual([ra.interfaces[1].name, rb.interfaces[1].name].sort());
    expect(staticNeighs()).toEqual(
      expect.arrayContaining([expect.objectContaining({ dst: ipA, lladdr: ra.interfaces[2].mac }), expect.objectContaining({ dst: ipB, lladdr: rb.interfaces[2].mac })]),
    );
    expect(lab.ipJson(a.netns, ['route', 'show'])).toEqual([
      expect.objectContaining({ dst: 'default', gateway: '10.244.0.1', dev: 'eth0' }),
      expect.objectContaining({ dst: '10.244.0.0/24', dev: 'eth0', scope: 'link' }),
    ]);
    expect(lab.in(node, ['cat', '/proc/sys/net/ipv4/ip_forward']).trim()).toBe('1');

    ok(await del(a, { ...conf(), prevResult: ra }));
    ok(await del(b)); // without prevResult: the neighbour entry is found by the pod's MAC
    expectClean();
    expect(lab.ipJson(node, ['link', 'show', 'dev', BR])).toHaveLength(1);
  });

  it('hairpinMode turns hairpin on for the pod’s port', async () => {
    const p = pod();
    const r = ok(await add(p, conf({ hairpinMode: true })));
    const portInfo = lab.ipJson(node, ['-d', 'link', 'show', 'dev', r.interfaces[1].name])[0];
    expect(portInfo.linkinfo.info_slave_data.hairpin).toBe(true);
    ok(await del(p, conf({ hairpinMode: true })));
    expectClean();
  });

  it('the result names the bridge, the host veth and the pod’s interface; the IP is on interface 2', async () => {
    const p = pod();
    const r = ok(await add(p));
    expect(r.interfaces.map((i: any) => i.name)).toEqual([BR, expect.stringMatching(/^azv[0-9a-f]{11}$/), 'eth0']);
    expect(r.interfaces[2]).toMatchObject({ sandbox: p.netns, mtu: 1500 });
    expect(r.ips).toEqual([{ interface: 2, address: expect.stringMatching(/^10\.244\.0\.\d+\/24$/), gateway: '10.244.0.1' }]);
    ok(await del(p));
    expectClean();
  });
});

describe('promiscMode: the bridge in promiscuous mode, as the reference bridge sets it', () => {
  it('an ADD with promiscMode true leaves the bridge promiscuous; a non-boolean is refused with code 7 naming the field, nothing changed', async () => {
    const n = lab.ns('promnode');
    const bad = await add(pod(), conf({ promiscMode: 'yes' }), n);
    expect(bad.json).toMatchObject({ code: 7, msg: expect.stringMatching(/promiscMode: must be true or false \(got "yes"\)/) });
    expect(lab.ipJson(n, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    const p = pod();
    ok(await add(p, conf({ promiscMode: true }), n));
    expect(lab.ipJson(n, ['-d', 'link', 'show', 'dev', BR])[0].promiscuity).toBeGreaterThan(0);
    ok(await del(p, conf({ promiscMode: true }), n));
  });
});

describe('a bridge name that batch grammar cannot carry works exactly (its commands run as argv)', () => {
  it(`bridge "b#'0": the pod is wired on exactly that bridge, and DEL leaves nothing`, async () => {
    const n = lab.ns('oddbr');
    const odd = "b#'0";
    const c = conf({ bridge: odd, ipMasq: true });
    const p = pod();
    const r = ok(await add(p, c, n));
    expect(r.interfaces[0].name).toBe(odd);
    expect(lab.ipJson(n, ['link', 'show', 'type', 'bridge']).map((l) => l.ifname)).toEqual([odd]);
    expect(ports(n, odd)).toEqual([r.interfaces[1].name]);
    expect(ping(p.netns, '10.244.0.1')).toContain('1 received');
    ok(await del(p, c, n));
    expect(ports(n, odd)).toEqual([]);
    expect(lab.ipJson(n, ['neigh', 'show', 'nud', 'permanent'])).toEqual([]);
  });
});

describe('DEL is idempotent and leak-free in bridge mode too', () => {
  it('on repeat, without prevResult or netns, after the netns is gone, and for a pod never added', async () => {
    const c = conf({ ipMasq: true });
    const p = pod();
    ok(await add(p, c));
    sh(['ip', 'netns', 'del', p.netns.split('/').pop()!]);
    ok(await del(p, c));
    ok(await del({ id: p.id }, c));
    ok(await del({ id: `${lab.prefix}-never` }, c));
    expectClean();
  });
});

describe('the bridge is shared: ten first ADDs at once on a fresh node all succeed', () => {
  it('one bridge, ten ports, ten addresses; all DELs leave it clean', async () => {
    const fresh = lab.ns('fresh');
    const pods = Array.from({ length: 10 }, pod);
    const results = await Promise.all(pods.map((p) => add(p, conf(), fresh)));
    for (const r of results) ok(r);
    expect(lab.ipJson(fresh, ['link', 'show', 'type', 'bridge']).map((l) => l.ifname)).toEqual([BR]);
    expect(ports(fresh)).toHaveLength(10);
    expect(new Set(results.map((r) => r.json.ips[0].address)).size).toBe(10);
    for (const r of await Promise.all(pods.map((p) => del(p, conf(), fresh)))) ok(r);
    expectClean(fresh);
  });
});

describe('CHECK names the first thing that drifted; DEL still cleans up', () => {
  const cases: [string, (p: Pod, r: any) => void, RegExp][] = [
    ['the neighbour entry deleted', (_p, r) => lab.in(node, ['ip', 'neigh', 'del', r.ips[0].address.split('/')[0], 'dev', BR]), /static ARP entry 10\.244\.0\.\d+ -> \S+ on \S+ is missing on the node/],
    ['the veth taken off the bridge', (_p, r) => lab.in(node, ['ip', 'link', 'set', 'dev', r.interfaces[1].name, 'nomaster']), /interface azv\S+ is on no bridge, expected a port of/],
    ['the gateway address removed from the bridge', () => lab.in(node, ['ip', 'addr', 'del', '10.244.0.1/24', 'dev', BR]), /address 10\.244\.0\.1\/24 is missing on \S+ on the node/],
    ['the pod’s default route deleted', (p) => lab.in(p.netns, ['ip', 'route', 'del', 'default']), /route default via 10\.244\.0\.1 dev eth0 is missing in /],
  ];
  for (const [what, tamper, msg] of cases) {
    it(what, async () => {
      const p = pod();
      const r = ok(await add(p));
      ok(await call('CHECK', p, { ...conf(), prevResult: r }));
      tamper(p, r);
      const c = await call('CHECK', p, { ...conf(), prevResult: r });
      expect(c.json?.code, c.stdout).toBe(103);
      expect(c.json.msg).toMatch(msg);
      ok(await del(p, { ...conf(), prevResult: r }));
      expectClean();
    });
  }
});

describe('a failed ADD leaves no pod state behind (the bridge, shared, stays)', () => {
  it('the pod’s interface name taken: no port, no neighbour entry, no address', async () => {
    const p = pod();
    lab.in(p.netns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
    const r = await add(p);
    expect(r.json.code).toBe(102);
    expectClean();
  });
});

describe('shared objects are checked by kind first: a bridge that exists as another kind is refused, nothing changed', () => {
  const shape = (on: string) => ({
    links: lab.ipJson(on, ['-d', 'addr', 'show']).map(({ ifindex, stats, stats64, ...rest }: any) => rest),
    routes: lab.ipJson(on, ['route', 'show', 'table', 'all']),
    neighs: lab.ipJson(on, ['neigh', 'show']),
  });
  const cases: [string, (on: string) => string][] = [
    ['lo (the node would claim the whole pod range)', () => 'lo'],
    ['the node’s NIC', (on) => (lab.in(on, ['ip', 'link', 'add', 'nic0', 'type', 'veth', 'peer', 'name', 'nic0p']), lab.in(on, ['ip', 'addr', 'add', '10.250.0.4/24', 'dev', 'nic0']), 'nic0')],
  ];
  for (const [what, make] of cases) {
    it(`isGateway with bridge = ${what}: code 7 naming it, no gateway address, no veth, nothing allocated`, async () => {
      const on = lab.ns(`kind${++seq}`);
      const name = make(on);
      const before = shape(on);
      const r = await add(pod(), conf({ bridge: name }), on);
      expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(new RegExp(`bridge ${name} already exists but is not a bridge \\(it is a (NIC, lo or another kind of link|veth link)`)) });
      expect(shape(on)).toEqual(before);
      expect(held()).toEqual([]);
    });
  }
  it('Azure’s layout: an uplink that is already a port of another bridge (a VM host’s br0) is refused, the node unchanged', async () => {
    const { node: n } = lab.aksNode(`hostbr${++seq}`);
    lab.in(n, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    lab.in(n, ['ip', 'link', 'set', 'eth0', 'master', 'br0']);
    const before = shape(n);
    const az = { cniVersion: '1.1.0', name: 'azure', type: 'vnet', mode: 'bridge', bridge: 'azure0', uplink: 'eth0',
      ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60', gateway: '10.224.0.1' }]], dataDir: dataDir() } };
    const r = await add(pod(), az, n);
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/uplink eth0 is a port of "br0"; moving it onto azure0 would take it from there/) });
    expect(shape(n)).toEqual(before);
  });
});

describe('every supported cniVersion gets a result of its shape', () => {
  for (const v of SUPPORTED_VERSIONS) {
    it(v, async () => {
      const p = pod();
      const r = ok(await add(p, conf({ cniVersion: v })));
      expect(r.cniVersion).toBe(v);
      if (v === '0.1.0' || v === '0.2.0') expect(r.ip4).toMatchObject({ ip: expect.stringMatching(/^10\.244\.0\./), gateway: '10.244.0.1' });
      else expect(r.interfaces).toHaveLength(3);
      ok(await del(p, conf({ cniVersion: v })));
      expectClean();
    });
  }
});

describe('ipsToRouteViaHost: a listener on the node at that address is what the pod reaches', () => {
  const LOCAL_DNS = '169.254.20.10';
  let listener: ChildProcess | undefined;
  afterEach(() => {
    listener?.kill();
    listener = undefined;
    lab.in(node, ['ip', 'addr', 'flush', 'dev', 'lo', 'to', `${LOCAL_DNS}/32`]);
  });
  // A TCP listener on the node at LOCAL_DNS that answers "node-local"; the pod connects to it.
  async function listen(on: string) {
    lab.in(on, ['ip', 'addr', 'add', `${LOCAL_DNS}/32`, 'dev', 'lo']);
    listener = spawn('nsenter', [`--net=${on}`, process.execPath, '-e',
      `require('net').createServer((s) => s.end('node-local')).listen(5353, '${LOCAL_DNS}', () => console.log('ready'))`]);
    await new Promise((r) => listener!.stdout!.once('data', r));
  }
  const connect = (from: string) =>
    sh(['nsenter', `--net=${from}`, process.execPath, '-e',
      `const s = require('net').connect(5353, '${LOCAL_DNS}'); s.on('data', (d) => process.stdout.write(d)); s.setTimeout(3000, () => process.exit(2));`]);

  for (const mode of ['bridge', 'transparent'] as const) {
    it(`${mode} mode: the pod has a /32 route to it via the node, reaches it, and DEL takes the route with the pod`, async () => {
      const on = lab.ns(`dns${mode}`);
      if (mode === 'transparent') {
        // a node with its own uplink, so the pod's address is not the node's subnet
        lab.in(on, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
        lab.in(on, ['ip', 'addr', 'add', '10.250.0.4/24', 'dev', 'eth0']);
        lab.in(on, ['ip', 'link', 'set', 'eth0', 'up']);
      }
      await listen(on);
      const p = pod();
      const c = conf({ mode, ipsToRouteViaHost: [LOCAL_DNS] });
      const r = ok(await add(p, c, on));
      expect(r.routes).toContainEqual({ dst: `${LOCAL_DNS}/32`, gw: mode === 'bridge' ? '10.244.0.1' : '169.254.1.1' });
      expect(lab.ipJson(p.netns, ['route', 'show', `${LOCAL_DNS}/32`])).toHaveLength(1);
      expect(connect(p.netns)).toBe('node-local');
      ok(await del(p, c, on));
      expect(lab.ipJson(on, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'))).toEqual([]);
      expect(held()).toEqual([]);
    });
  }
});

describe('Azure’s layout: the uplink moves onto the bridge on first use, and comes back if the move fails', () => {
  const AZ = `${lab.prefix.slice(0, 6)}az`;
  const azure = (over: Record<string, unknown> = {}) => ({
    cniVersion: '1.1.0',
    name: 'azure',
    type: 'vnet',
    mode: 'bridge',
    bridge: AZ,
    uplink: 'eth0',
    ipam: {
      type: 'vnet-ipam',
      ranges: [[{ subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60', gateway: '10.224.0.1' }]],
      routes: [{ dst: '0.0.0.0/0' }],
      dataDir: join(lab.dir, 'ipam-azure'),
    },
    ...over,
  });
  const link = (on: string, name: string) => lab.ipJson(on, ['addr', 'show', 'dev', name])[0];
  const v4 = (l: any) => l.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`);
  const defaultRoute = (on: string) => lab.ipJson(on, ['route', 'show', 'default'])[0];

  it('an ADD that reads the node while another ADD is moving the uplink (its address on neither link) reads again, and routes ipsToRouteViaHost via the node, not the gateway', async () => {
    const { node: n } = lab.aksNode('azmid');
    // Another ADD's move, stopped half-way by hand: the address is off eth0, not yet on the bridge.
    lab.in(n, ['ip', 'link', 'add', AZ, 'type', 'bridge']);
    lab.in(n, ['ip', 'route', 'del', 'default']);
    lab.in(n, ['ip', 'addr', 'del', '10.224.0.4/16', 'dev', 'eth0']);
    const a = pod();
    const adding = add(a, azure({ ipsToRouteViaHost: ['169.254.20.10'] }), n);
    await new Promise((r) => setTimeout(r, 100));
    // ... and the move ends.
    lab.in(n, ['ip', 'link', 'set', 'dev', 'eth0', 'master', AZ]);
    lab.in(n, ['ip', 'link', 'set', 'dev', AZ, 'address', link(n, 'eth0').address, 'up']);
    lab.in(n, ['ip', 'addr', 'add', '10.224.0.4/16', 'dev', AZ]);
    lab.in(n, ['ip', 'route', 'add', 'default', 'via', '10.224.0.1', 'dev', AZ]);
    ok(await adding);
    expect(lab.ipJson(a.netns, ['route', 'show', '169.254.20.10'])).toEqual([expect.objectContaining({ dst: '169.254.20.10', gateway: '10.224.0.4' })]);
    ok(await del(a, azure(), n));
  });

  it('after the first ADD the node’s address and default route are on the bridge, whose MAC is the NIC’s, the NIC a port with hairpin on; pods reach the gateway, each other and the node', async () => {
    const { node: n } = lab.aksNode('aznode');
    const eth0Mac = link(n, 'eth0').address;
    const a = pod();
    const b = pod();
    const ra = ok(await add(a, azure(), n));
    expect(v4(link(n, AZ))).toEqual(['10.224.0.4/16']);
    expect(v4(link(n, 'eth0'))).toEqual([]);
    expect(link(n, 'eth0').master).toBe(AZ);
    expect(link(n, AZ).address).toBe(eth0Mac);
    expect(lab.in(n, ['bridge', '-d', 'link', 'show', 'dev', 'eth0'])).toMatch(/\bhairpin on\b/);
    expect(defaultRoute(n)).toMatchObject({ gateway: '10.224.0.1', dev: AZ });
    expect(ping(n, '10.224.0.1')).toContain('1 received');
    const rb = ok(await add(b, azure(), n)); // finds the move done
    const ipB = rb.ips[0].address.split('/')[0];
    expect(ra.ips[0].gateway).toBe('10.224.0.1');
    expect(ping(a.netns, '10.224.0.1')).toContain('1 received');
    expect(ping(a.netns, ipB)).toContain('1 received');
    expect(ping(a.netns, '10.224.0.4')).toContain('1 received');
    ok(await call('CHECK', a, { ...azure(), prevResult: ra }, n));
    lab.in(n, ['ip', 'link', 'set', 'dev', 'eth0', 'nomaster']);
    const c = await call('CHECK', a, { ...azure(), prevResult: ra }, n);
    expect(c.json.msg).toMatch(/interface eth0 is on no bridge, expected a port of/);
    lab.in(n, ['ip', 'link', 'set', 'dev', 'eth0', 'master', AZ]);
    ok(await del(a, azure(), n));
    ok(await del(b, azure(), n));
    // DEL never moves the uplink back: the node's connectivity is on the bridge now.
    expect(v4(link(n, AZ))).toEqual(['10.224.0.4/16']);
    expect(ports(n, AZ)).toEqual(['eth0']);
    expect(ping(n, '10.224.0.1')).toContain('1 received');
  });

  /** The network's address-to-MAC map elements on node n, as `nft -j` lists them: "ip mac tag". */
  const mapped = (n: string) => {
    const t = lab.in(n, ['nft', '-j', 'list', 'table', 'bridge', 'vnet']);
    return (JSON.parse(t).nftables as any[]).filter((x) => x.map?.name?.startsWith('podmac')).flatMap((x) => (x.map.elem ?? []).map((e: any) => `${e[0].elem?.val ?? e[0]} ${e[1]} ${e[0].elem?.comment ?? ''}`));
  };
  /** Azure's fabric, at the VNet end of the node's NIC: it takes no frame whose source MAC is not the NIC's. */
  const fabric = (gw: string, nicMac: string) =>
    lab.in(gw, ['nft', '-f', '-'], `table netdev fabric {\n  chain in {\n    type filter hook ingress device "vnet0" priority 0; policy accept;\n    ether saddr != ${nicMac} counter drop\n  }\n}\n`);

  it('Azure’s L2 rules: behind a fabric that takes only the NIC’s MAC, a pod reaches the gateway; without the rules it does not', async () => {
    const { node: n, gw } = lab.aksNode('azl2');
    const nicMac = link(n, 'eth0').address;
    fabric(gw, nicMac);
    const a = pod();
    const ra = ok(await add(a, azure(), n));
    expect(ping(a.netns, '10.224.0.1')).toContain('1 received');
    const rules = lab.in(n, ['nft', 'list', 'table', 'bridge', 'vnet']);
    expect(rules).toContain(`oifname "eth0" ether saddr set ${nicMac}`);
    expect(rules).toContain(`oifname "eth0" arp htype 1 arp hlen 6 arp saddr ether set ${nicMac}`);
    expect(rules).toContain('iifname "eth0" arp operation reply ether daddr set ff:ff:ff:ff:ff:ff');
    expect(rules).toContain('iifname "eth0" oifname "eth0" ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 drop');
    expect(rules).not.toContain('02:00:00:00:00:00'); // a gateway's MAC may start 02: too (the lab's did)
    const ipA = ra.ips[0].address.split('/')[0];
    const macA = ra.interfaces.find((i: any) => i.sandbox).mac;
    expect(mapped(n)).toEqual([expect.stringMatching(new RegExp(`^${ipA} ${macA} azv[0-9a-f]{11}$`))]);
    // The rules gone (as if vnet had none): the fabric drops the pod's frames.
    lab.in(n, ['nft', 'delete', 'table', 'bridge', 'vnet']);
    lab.in(gw, ['ip', 'neigh', 'flush', 'dev', 'vnet0']);
    lab.in(a.netns, ['ip', 'neigh', 'flush', 'dev', 'eth0']);
    expect(() => ping(a.netns, '10.224.0.1')).toThrow();
    const c = await call('CHECK', a, { ...azure(), prevResult: ra }, n);
    expect(c.json.msg).toMatch(new RegExp(`CHECK failed: MAC DNAT rule ${ipA.replace(/\./g, '\\.')} -> ${macA} is missing from nftables map bridge vnet podmac_`));
    // The next ADD ensures them again.
    const b = pod();
    ok(await add(b, azure(), n));
    expect(ping(b.netns, '10.224.0.1')).toContain('1 received');
    ok(await del(a, azure(), n));
    ok(await del(b, azure(), n));
    expect(mapped(n)).toEqual([]);
    expect(lab.in(n, ['nft', 'list', 'table', 'bridge', 'vnet'])).toContain('ether saddr set'); // the node's rules stay
  });

  it('Azure’s L2 rules: DEL removes the pod’s MAC DNAT rule, GC the rules of attachments no longer valid', async () => {
    const { node: n } = lab.aksNode('azl2gc');
    const keep = pod();
    const gone = pod();
    const rk = ok(await add(keep, azure(), n));
    const rg = ok(await add(gone, azure(), n));
    const ipOf = (r: any) => r.ips[0].address.split('/')[0];
    expect(mapped(n).map((x) => x.split(' ')[0]).sort()).toEqual([ipOf(rk), ipOf(rg)].sort());
    lab.in(n, ['ip', 'link', 'del', 'dev', lab.ipJson(n, ['link', 'show']).find((l) => l.ifname.startsWith('azv') && l.ifalias?.includes(gone.id)).ifname]);
    // A rule no allocation explains: `vnet state` names it a leak, GC removes it with the rest.
    lab.in(n, ['nft', 'add', 'element', 'bridge', 'vnet', l2Names('azure').map[4], '{ 10.224.0.99 : 02:00:00:00:00:99 }']);
    const confFile = join(lab.dir, 'azl2gc.conf');
    writeFileSync(confFile, JSON.stringify(azure()));
    const st = JSON.parse(spawnSync('nsenter', [`--net=${n}`, BIN, 'state', '--conf', confFile, '--json'], { encoding: 'utf8' }).stdout);
    expect(st.leaks).toContainEqual(expect.objectContaining({ kind: 'mac-dnat', ip: '10.224.0.99', mac: '02:00:00:00:00:99', message: expect.stringMatching(/matches no allocation: leaked MAC DNAT rule$/) }));
    expect(st.leaks.filter((l: any) => l.kind === 'mac-dnat')).toHaveLength(1);
    ok(await call('GC', {}, { ...azure(), 'cni.dev/valid-attachments': [{ containerID: keep.id, ifname: 'eth0' }] }, n));
    expect(mapped(n).map((x) => x.split(' ')[0])).toEqual([ipOf(rk)]);
    ok(await del(keep, azure(), n));
    expect(mapped(n)).toEqual([]);
  });

  it('a failure once the move ran gives the NIC back its addresses and routes; nothing else is left', async () => {
    const { node: n } = lab.aksNode('aznode2');
    const p = pod();
    const r = await lab.run({ node: n, env: { ...cniEnv('ADD', { id: p.id, netns: p.netns }), VNET_TEST_FAIL_AT: 'after the node commands: Moving uplink' }, stdin: azure() });
    expect(r.json?.code, r.stdout).toBe(102);
    expect(r.json.msg).toMatch(/test fault .*after the node commands: Moving uplink/);
    expect(v4(link(n, 'eth0'))).toEqual(['10.224.0.4/16']);
    expect(link(n, 'eth0').master).toBeUndefined();
    expect(defaultRoute(n)).toMatchObject({ gateway: '10.224.0.1', dev: 'eth0' });
    expect(ping(n, '10.224.0.1')).toContain('1 received');
    expect(lab.ipJson(n, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'))).toEqual([]);
    expect(readdirSync(join(lab.dir, 'ipam-azure', 'azure')).filter((f) => /^\d/.test(f))).toEqual([]);
    // and then it works
    ok(await add(p, azure(), n));
    expect(defaultRoute(n)).toMatchObject({ gateway: '10.224.0.1', dev: AZ });
    ok(await del(p, azure(), n));
  });

  describe('a route whose preferred source is the uplink’s own address (systemd-networkd’s DHCP default route) moves with it, source and all', () => {
    // As a DHCP-configured Azure VM has it: `default via … proto dhcp src <node address> metric 100`.
    const dhcpDefault = (n: string) => {
      lab.in(n, ['ip', 'route', 'del', 'default']);
      lab.in(n, ['ip', 'route', 'add', 'default', 'via', '10.224.0.1', 'dev', 'eth0', 'proto', 'dhcp', 'src', '10.224.0.4', 'metric', '100']);
    };
    const expected = (dev: string) => [{ dst: 'default', gateway: '10.224.0.1', dev, protocol: 'dhcp', prefsrc: '10.224.0.4', metric: 100, flags: [] }];

    it('ADD: the default route is on the bridge with its source, protocol and metric; pod and node reach the gateway', async () => {
      const { node: n } = lab.aksNode('azsrc1');
      dhcpDefault(n);
      const p = pod();
      ok(await add(p, azure(), n));
      expect(lab.ipJson(n, ['route', 'show', 'default'])).toEqual(expected(AZ));
      expect(ping(n, '10.224.0.1')).toContain('1 received');
      expect(ping(p.netns, '10.224.0.1')).toContain('1 received');
      ok(await del(p, azure(), n));
    });

    it('a /32 node address, its gateway reached by a host route (as some DHCP clouds have it): the host route moves first, then the default; a failure gives both back', async () => {
      const { node: n } = lab.aksNode('azsrc3');
      lab.in(n, ['ip', 'addr', 'del', '10.224.0.4/16', 'dev', 'eth0']); // takes the node's routes with it
      lab.in(n, ['ip', 'addr', 'add', '10.224.0.4/32', 'dev', 'eth0']);
      lab.in(n, ['ip', 'route', 'add', '10.224.0.1', 'dev', 'eth0', 'proto', 'dhcp', 'scope', 'link', 'src', '10.224.0.4', 'metric', '100']);
      lab.in(n, ['ip', 'route', 'add', 'default', 'via', '10.224.0.1', 'dev', 'eth0', 'proto', 'dhcp', 'src', '10.224.0.4', 'metric', '100']);
      const routes = () => lab.ipJson(n, ['route', 'show']).map((r: any) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev} src ${r.prefsrc}`).sort();
      const want = (dev: string) => [`10.224.0.1 dev ${dev} src 10.224.0.4`, `default via 10.224.0.1 dev ${dev} src 10.224.0.4`];
      const p = pod();
      const r = await lab.run({ node: n, env: { ...cniEnv('ADD', { id: p.id, netns: p.netns }), VNET_TEST_FAIL_AT: 'after the node commands: Moving uplink' }, stdin: azure() });
      expect(r.json?.code, r.stdout).toBe(102);
      expect(routes()).toEqual(want('eth0'));
      expect(ping(n, '10.224.0.1')).toContain('1 received');
      ok(await add(p, azure(), n));
      expect(routes()).toEqual(want(AZ));
      expect(ping(n, '10.224.0.1')).toContain('1 received');
      ok(await del(p, azure(), n));
    });

    it('a failure once the move ran gives the NIC its route back, source and all', async () => {
      const { node: n } = lab.aksNode('azsrc2');
      dhcpDefault(n);
      const p = pod();
      const r = await lab.run({ node: n, env: { ...cniEnv('ADD', { id: p.id, netns: p.netns }), VNET_TEST_FAIL_AT: 'after the node commands: Moving uplink' }, stdin: azure() });
      expect(r.json?.code, r.stdout).toBe(102);
      expect(lab.ipJson(n, ['route', 'show', 'default'])).toEqual(expected('eth0'));
      expect(link(n, 'eth0').master).toBeUndefined();
    });
  });

  const shapeOf = (n: string) => ({
    links: lab.ipJson(n, ['-d', 'addr', 'show']).map(({ ifindex, stats, stats64, ...rest }: any) => rest),
    routes: lab.ipJson(n, ['route', 'show', 'table', 'all']),
    routes6: lab.ipJson(n, ['-6', 'route', 'show', 'table', 'all']),
  });
  const uncarried: [string, string[], RegExp][] = [
    ['a route in another table (policy routing)', ['route', 'add', '10.9.0.0/24', 'via', '10.224.0.1', 'dev', 'eth0', 'table', '100'], /is in table 100/],
    ['an onlink default route (a /32 node address, as on some clouds)', ['route', 'replace', 'default', 'via', '10.224.0.1', 'dev', 'eth0', 'onlink'], /is onlink/],
    ['a route whose preferred source is not the uplink’s (an address on lo)', ['route', 'add', '10.8.0.0/24', 'via', '10.224.0.1', 'dev', 'eth0', 'src', '10.99.0.9'], /has a preferred source \(10\.99\.0\.9\) that is not one of eth0's addresses/],
    ['a route with its own MTU', ['route', 'add', '10.7.0.0/24', 'via', '10.224.0.1', 'dev', 'eth0', 'mtu', '1400'], /carries metrics/],
    ['a route made by a routing daemon (proto bird)', ['route', 'add', '10.6.0.0/24', 'via', '10.224.0.1', 'dev', 'eth0', 'proto', 'bird'], /was made by bird/],
  ];
  for (const [what, route, why] of uncarried) {
    it(`an uplink carrying ${what}: refused with code 7 before the NIC is touched`, async () => {
      const { node: n } = lab.aksNode(`unc${++seq}`);
      lab.in(n, ['ip', 'addr', 'add', '10.99.0.9/32', 'dev', 'lo']);
      lab.in(n, ['ip', ...route]);
      const before = shapeOf(n);
      const r = await add(pod(), azure(), n);
      expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(why) });
      expect(r.json.msg).toMatch(/would not carry exactly: refusing \(nothing changed\)/);
      expect(shapeOf(n)).toEqual(before);
    });
  }

  it('an IPv6 route with the NIC’s own IPv6 address as source: refused with code 7 before the NIC is touched (a restore would put the address back tentative, and no route takes a tentative source)', async () => {
    const { node: n } = lab.aksNode(`unc${++seq}`, { dualStack: true });
    lab.in(n, ['ip', '-6', 'route', 'add', 'fd00:9::/64', 'via', 'fd00:224::1', 'dev', 'eth0', 'src', 'fd00:224::4']);
    const before = shapeOf(n);
    const r = await add(pod(), azure(), n);
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/fd00:9::\/64 via fd00:224::1 dev eth0.* has an IPv6 preferred source \(fd00:224::4\), which a restore could not give back/) });
    expect(shapeOf(n)).toEqual(before);
  });

  it('dual stack: the IPv6 default route moves onto the bridge with the uplink too', async () => {
    const { node: n } = lab.aksNode(`az6${++seq}`, { dualStack: true });
    const c = { ...azure(), ipam: { ...azure().ipam, ranges: [[azure().ipam.ranges[0]![0]], [{ subnet: 'fd00:224::/64', rangeStart: 'fd00:224::10', rangeEnd: 'fd00:224::60', gateway: 'fd00:224::1' }]] } };
    const p = pod();
    ok(await add(p, c, n));
    expect(lab.ipJson(n, ['-6', 'route', 'show', 'default'])).toEqual([expect.objectContaining({ gateway: 'fd00:224::1', dev: AZ })]);
    expect(defaultRoute(n)).toMatchObject({ gateway: '10.224.0.1', dev: AZ });
    ok(await del(p, c, n));
  });

  it('ten first ADDs at once on a fresh node: all succeed, the uplink moves once, the node keeps its connectivity', async () => {
    const { node: n } = lab.aksNode('aznode3');
    const pods = Array.from({ length: 10 }, pod);
    const results = await Promise.all(pods.map((p) => add(p, azure(), n)));
    for (const r of results) ok(r);
    expect(v4(link(n, AZ))).toEqual(['10.224.0.4/16']);
    expect(v4(link(n, 'eth0'))).toEqual([]);
    expect(lab.ipJson(n, ['route', 'show', 'default'])).toEqual([expect.objectContaining({ gateway: '10.224.0.1', dev: AZ })]);
    expect(ports(n, AZ)).toHaveLength(11);
    expect(ping(n, '10.224.0.1')).toContain('1 received');
    expect(ping(pods[9]!.netns, '10.224.0.1')).toContain('1 received');
    for (const r of await Promise.all(pods.map((p) => del(p, azure(), n)))) ok(r);
    expect(ports(n, AZ)).toEqual(['eth0']);
  });

  it('an uplink that does not exist is a config error and changes nothing', async () => {
    const p = pod();
    const r = await add(p, azure({ uplink: 'nosuch0' }));
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toMatch(/uplink nosuch0: no such interface/);
    expect(lab.ipJson(node, ['link', 'show']).filter((l) => l.ifname === AZ)).toEqual([]);
  });

  it('an uplink whose name holds a double quote (the kernel takes it; an nft rule cannot carry it) is a config error and changes nothing', async () => {
    const n = lab.ns('azquote');
    const nic = 'e"0;x';
    lab.in(n, ['ip', 'link', 'add', nic, 'type', 'veth', 'peer', 'name', 'q0']);
    lab.in(n, ['ip', 'addr', 'add', '10.224.0.4/16', 'dev', nic]);
    lab.in(n, ['ip', 'link', 'set', nic, 'up']);
    const before = lab.in(n, ['ip', '-d', 'addr', 'show']);
    const r = await add(pod(), azure({ uplink: nic }), n);
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toMatch(/interface "e\\"0;x": a name with a double quote cannot be written in an nftables rule/);
    expect(lab.in(n, ['ip', '-d', 'addr', 'show'])).toBe(before);
    expect(() => lab.in(n, ['nft', 'list', 'table', 'bridge', 'vnet'])).toThrow();
    expect(readdirSync(join(lab.dir, 'ipam-azure', 'azure')).filter((f) => /^\d/.test(f))).toEqual([]);
  });
});

describe('ipMasq: pod traffic leaving the cluster is SNATed to the node, with one nftables element per pod', () => {
  /** The network's pod set in the node's nftables table, or undefined before any ADD. */
  const podSet = (on: string): any => {
    try {
      return JSON.parse(lab.in(on, ['nft', '-j', 'list', 'table', 'inet', 'vnet'])).nftables.find((x: any) => x.set?.name?.startsWith('pods_'))?.set;
    } catch {
      return undefined;
    }
  };
  const nftElems = (on: string): any[] => podSet(on)?.elem ?? [];

  it('the outside world sees the node’s address; a pod of the range sees the pod’s; DEL removes the element', async () => {
    const n = lab.ns('masqnode');
    const outside = lab.ns('outside');
    lab.in(n, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', outside]);
    lab.in(n, ['ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'eth0']);
    lab.in(n, ['ip', 'link', 'set', 'eth0', 'up']);
    lab.in(outside, ['ip', 'addr', 'add', '203.0.113.10/24', 'dev', 'wan0']);
    lab.in(outside, ['ip', 'link', 'set', 'wan0', 'up']);
    const c = conf({ ipMasq: true });
    const a = pod();
    const b = pod();
    const ra = ok(await add(a, c, n));
    const rb = ok(await add(b, c, n));
    const ipA = ra.ips[0].address.split('/')[0];
    const world = whoami(outside, '203.0.113.10');
    const peer = whoami(b.netns, rb.ips[0].address.split('/')[0]);
    try {
      await Promise.all([world.ready, peer.ready]);
      expect(ask(a.netns, '203.0.113.10')).toBe('203.0.113.1');
      expect(ask(a.netns, rb.ips[0].address.split('/')[0])).toBe(ipA);
    } finally {
      world.stop();
      peer.stop();
    }
    expect(nftElems(n).map((e: any) => e.elem.val).sort()).toEqual([ipA, rb.ips[0].address.split('/')[0]].sort());
    expect(nftElems(n).find((e: any) => e.elem.val === ipA).elem.comment).toBe(ra.interfaces[1].name);

    // CHECK names a missing element
    lab.in(n, ['nft', 'delete', 'element', 'inet', 'vnet', podSet(n).name, `{ ${ipA} }`]);
    const chk = await call('CHECK', a, { ...c, prevResult: ra }, n);
    expect(chk.json.msg).toMatch(new RegExp(`masquerade element ${ipA.replaceAll('.', '\\.')} is missing`));
    ok(await del(a, { ...c, prevResult: ra }, n));
    ok(await del(b, c, n)); // no prevResult: the address comes from the bridge's neighbour table
    expect(nftElems(n)).toEqual([]);
    expect(ports(n)).toEqual([]);
  });

  it('GC removes the elements (and veths) of attachments no longer valid, keeps the valid one', async () => {
    const n = lab.ns('gcnode');
    const c = conf({ ipMasq: true });
    const keep = pod();
    const drop = pod();
    const rk = ok(await add(keep, c, n));
    ok(await add(drop, c, n));
    ok(await call('GC', {}, { ...c, 'cni.dev/valid-attachments': [{ containerID: keep.id, ifname: 'eth0' }] }, n));
    expect(nftElems(n).map((e: any) => e.elem.val)).toEqual([rk.ips[0].address.split('/')[0]]);
    expect(ports(n)).toEqual([rk.interfaces[1].name]);
    expect(staticNeighs(n).map((x) => x.dst)).toEqual([rk.ips[0].address.split('/')[0]]);
    ok(await del(keep, c, n));
    expect(nftElems(n)).toEqual([]);
  });

  it('a bad ipMasqExclude is code 7', async () => {
    expect((await add(pod(), conf({ ipMasq: true, ipMasqExclude: ['10.0.0.0/8\nflush ruleset'] }))).json).toMatchObject({ code: 7, msg: expect.stringMatching(/ipMasqExclude\[0\]/) });
  });
});

describe('explain prints both bridge layouts as this node would run them', () => {
  const explain = (on: string, conf: string) =>
    lab.in(on, [BIN, 'explain', '--conf', conf, '--container-id', 'c0ffee', '--netns', '/var/run/netns/pod-a', '--ip', conf.includes('kubenet') ? '10.244.2.17' : '10.220.2.17']);
  it('kubenet: the bridge, its gateway, the port, the neighbour entry, the masquerade script', () => {
    const out = explain(node, 'conf/10-kubenet.conflist');
    expect(out).toContain('ip link add name cbr0 address 02:');
    expect(out).toContain('ip addr replace 10.244.2.1/24 dev cbr0');
    expect(out).toMatch(/ip neigh replace 10\.244\.2\.17 lladdr 02:\S+ dev cbr0 nud permanent/);
    expect(out).toMatch(/add rule inet vnet masq_\w+ ip saddr @pods_\w+ ip daddr != @excl_\w+ masquerade/);
  });
  it('Azure: reads this node’s eth0 and shows its move onto azure0, addresses and routes included', () => {
    const { node: n } = lab.aksNode('explainnode');
    const out = explain(n, 'conf/10-azure-bridge.conflist');
    expect(out).toContain(`ip link add name azure0 address ${lab.ipJson(n, ['link', 'show', 'dev', 'eth0'])[0].address} type bridge`);
    expect(out).toContain('ip route del default via 10.224.0.1 dev eth0');
    expect(out).toContain('ip addr del 10.224.0.4/16 dev eth0');
    expect(out).toContain('ip link set dev eth0 master azure0 up');
    expect(out).toContain('ip addr add 10.224.0.4/16 dev azure0');
    expect(out).toContain('ip route add default via 10.224.0.1 dev azure0');
    // and ran nothing
    expect(lab.ipJson(n, ['link', 'show']).map((l) => l.ifname)).not.toContain('azure0');
  });
});

describe('hairpin: a pod reaches itself through a Service (kube-proxy’s DNAT, under br_netfilter) with hairpinMode, and not with promiscMode alone', () => {
  // kube-proxy's part, played in the node namespace: a ClusterIP DNATed to the pod, and hairpin
  // traffic masqueraded (KUBE-MARK-MASQ), so the pod sees the bridge's address as the source.
  const SVC = '10.96.0.10';
  function service(podIp: string): () => void {
    lab.in(node, ['sh', '-c', 'echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables']);
    const rules = [
      ['PREROUTING', '-d', `${SVC}/32`, '-p', 'tcp', '--dport', '7000', '-j', 'DNAT', '--to-destination', `${podIp}:7000`],
      ['POSTROUTING', '-s', `${podIp}/32`, '-d', `${podIp}/32`, '-j', 'MASQUERADE'],
    ];
    for (const r of rules) lab.in(node, ['iptables', '-t', 'nat', '-A', ...r]);
    return () => {
      for (const r of rules) lab.in(node, ['iptables', '-t', 'nat', '-D', ...r]);
    };
  }
  const answer = (from: string) => {
    try {
      return ask(from, SVC);
    } catch {
      return 'no answer';
    }
  };
  for (const [what, over, want] of [
    ['hairpinMode: the pod’s port sends the frame back where it came from', { hairpinMode: true }, '10.244.0.1'],
    ['promiscMode without hairpinMode (kubenet’s conflist): no answer, as vnet validate warns', { promiscMode: true, hairpinMode: false }, 'no answer'],
  ] as const) {
    it(what, async () => {
      const a = pod();
      const ip = ok(await add(a, conf(over))).ips[0].address.split('/')[0];
      const undo = service(ip);
      const self = whoami(a.netns, ip);
      try {
        await self.ready;
        expect(answer(a.netns)).toBe(want);
      } finally {
        self.stop();
        undo();
      }
      ok(await del(a, conf(over)));
    });
  }
});
