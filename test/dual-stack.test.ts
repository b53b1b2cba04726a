// Dual stack, in both modes and both bridge layouts: a pod gets an IPv4 and an IPv6 address from
// vnet-ipam, both wired, both reported, both checked and both removed; and IPv6 alone works too.
// Real namespaces, the built binary run inside the node namespace as a runtime runs it.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Lab, ask, cniEnv, transparentConf, whoami, type Ran } from './helpers/lab.js';

const lab = new Lab();
afterAll(() => lab.cleanup());

const V4 = { subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60', gateway: '10.224.0.1' };
const V6 = { subnet: 'fd00:224::/64', rangeStart: 'fd00:224::10', rangeEnd: 'fd00:224::60', gateway: 'fd00:224::1' };
const K4 = { subnet: '10.244.0.0/24', gateway: '10.244.0.1' };
const K6 = { subnet: 'fd00:244::/64', gateway: 'fd00:244::1' };
const LL6 = 'fe80::1234:5678:9abc';

let seq = 0;
const dataDir = (net: string) => join(lab.dir, `ipam-${net}`);
const conf = (net: string, ranges: object[][], over: Record<string, unknown> = {}) => transparentConf(net, ranges, dataDir(net), over);
type Pod = { id: string; netns: string };
const pod = (): Pod => ({ id: `${lab.prefix}-c${++seq}`, netns: lab.ns(`pod${seq}`) });
const call = (command: string, node: string, p: Partial<Pod>, stdin: object) =>
  lab.run({ node, env: cniEnv(command, { id: p.id, netns: p.netns ?? '' }), stdin });
function ok(r: Ran): any {
  expect(r.stdout + r.stderr, `exit ${r.code}`).not.toMatch(/"code":/);
  expect(r.code).toBe(0);
  return r.json;
}
const addrOf = (r: any, family: 4 | 6) => r.ips.find((i: any) => i.address.includes(':') === (family === 6))?.address.split('/')[0];
const held = (net: string) => (existsSync(join(dataDir(net), net)) ? readdirSync(join(dataDir(net), net)).filter((f) => /^[0-9a-f.:]+$/.test(f) && /[.:]/.test(f)) : []);
const routes6 = (ns: string) => lab.ipJson(ns, ['-6', 'route', 'show']);
const permanent = (ns: string, dev: string) => lab.ipJson(ns, ['neigh', 'show', 'dev', dev]).filter((n) => n.state?.includes('PERMANENT'));
const sysctl = (ns: string, key: string) => lab.in(ns, ['cat', `/proc/sys/${key}`]).trim();

describe('transparent mode, dual stack: one host route per address, a link-local gateway per family', () => {
  it('pods reach each other, the node and the VNet gateway over IPv6 and IPv4; the tables are Azure CNI’s; DEL leaves nothing', async () => {
    const { node, gw } = lab.aksNode('tnode', { dualStack: true });
    const c = conf('azure', [[V4], [V6]]);
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', node, a, c));
    const rb = ok(await call('ADD', node, b, c));
    const [a4, a6, b6] = [addrOf(ra, 4), addrOf(ra, 6), addrOf(rb, 6)];
    expect(a6).toMatch(/^fd00:224::[0-9a-f]+$/);
    for (const r of [ra, rb]) {
      // the VNet knows which node holds each pod address (Azure's fabric)
      lab.in(gw, ['ip', 'route', 'add', `${addrOf(r, 4)}/32`, 'via', '10.224.0.4']);
      lab.in(gw, ['ip', '-6', 'route', 'add', `${addrOf(r, 6)}/128`, 'via', 'fd00:224::4']);
    }
    expect(lab.ping(a.netns, b6)).toContain('1 received');
    expect(lab.ping(b.netns, a6)).toContain('1 received');
    expect(lab.ping(a.netns, 'fd00:224::4')).toContain('1 received');
    expect(lab.ping(a.netns, 'fd00:224::1')).toContain('1 received');
    expect(lab.ping(b.netns, a4)).toContain('1 received');

    // the pod: both addresses, a default route per family via its link-local gateway, both neighbours permanent
    const eth0 = lab.ipJson(a.netns, ['addr', 'show', 'dev', 'eth0'])[0];
    expect(eth0.addr_info.filter((x: any) => x.scope === 'global').map((x: any) => `${x.local}/${x.prefixlen}`)).toEqual([`${a4}/16`, `${a6}/64`]);
    expect(routes6(a.netns).filter((r) => r.dst !== 'fe80::/64')).toEqual([expect.objectContaining({ dst: 'default', gateway: LL6, dev: 'eth0' })]);
    expect(permanent(a.netns, 'eth0').map((n) => [n.dst, n.lladdr])).toEqual(
      expect.arrayContaining([['169.254.1.1', 'aa:aa:aa:aa:aa:aa'], [LL6, 'aa:aa:aa:aa:aa:aa']]),
    );
    // the node: a /128 beside the /32 through the pod's azv veth; IPv6 forwarding on
    const veth = ra.interfaces[0].name;
    expect(routes6(node).filter((r) => r.dev === veth && r.dst !== 'fe80::/64').map((r) => r.dst)).toEqual([a6]);
    expect(lab.ipJson(node, ['route', 'show', 'dev', veth]).map((r) => r.dst)).toEqual([a4]);
    expect(sysctl(node, 'net/ipv6/conf/all/forwarding')).toBe('1');

    // the result: both addresses with their gateways on interface 1, a default route per family
    expect(ra.ips).toEqual([
      { address: `${a4}/16`, gateway: '169.254.1.1', interface: 1 },
      { address: `${a6}/64`, gateway: LL6, interface: 1 },
    ]);
    expect(ra.routes).toEqual([{ dst: '0.0.0.0/0', gw: '169.254.1.1' }, { dst: '::/0', gw: LL6 }]);
    ok(await call('CHECK', node, a, { ...c, prevResult: ra }));

    ok(await call('DEL', node, a, { ...c, prevResult: ra }));
    ok(await call('DEL', node, b, c));
    expect(routes6(node).filter((r) => r.dev?.startsWith('azv'))).toEqual([]);
    expect(lab.ipJson(node, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'))).toEqual([]);
    expect(held('azure')).toEqual([]);
  });

  it('CHECK names a missing IPv6 route or neighbour precisely, on the node and in the pod', async () => {
    const { node } = lab.aksNode('tcheck', { dualStack: true });
    const c = conf('azure', [[V4], [V6]]);
    const cases: [string, (p: Pod, r: any) => void, RegExp][] = [
      ['the pod’s IPv6 default route', (p) => lab.in(p.netns, ['ip', '-6', 'route', 'del', 'default']), /IPv6 route default via fe80::1234:5678:9abc dev eth0 is missing in /],
      ['the pod’s IPv6 gateway neighbour', (p) => lab.in(p.netns, ['ip', 'neigh', 'del', LL6, 'dev', 'eth0']), /static IPv6 neighbour entry fe80::1234:5678:9abc -> aa:aa:aa:aa:aa:aa on eth0 is missing/],
      ['the node’s /128', (_p, r) => lab.in(node, ['ip', '-6', 'route', 'del', `${addrOf(r, 6)}/128`]), /IPv6 route fd00:224::[0-9a-f]+\/128 dev azv[0-9a-f]+ is missing on the node/],
      ['the pod’s IPv6 address', (p, r) => lab.in(p.netns, ['ip', 'addr', 'del', `${addrOf(r, 6)}/64`, 'dev', 'eth0']), /address fd00:224::[0-9a-f]+\/64 is missing on eth0/],
    ];
    for (const [what, spoil, msg] of cases) {
      const p = pod();
      const r = ok(await call('ADD', node, p, c));
      ok(await call('CHECK', node, p, { ...c, prevResult: r }));
      spoil(p, r);
      const chk = await call('CHECK', node, p, { ...c, prevResult: r });
      expect(chk.json?.code, what).toBe(103);
      expect(chk.json.msg, what).toMatch(msg);
      ok(await call('DEL', node, p, { ...c, prevResult: r }));
    }
    expect(held('azure')).toEqual([]);
  });

  it('every cniVersion that can carry both addresses carries both (0.2.0 as ip4 and ip6)', async () => {
    const { node } = lab.aksNode('tver', { dualStack: true });
    for (const v of ['0.2.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
      const c = { ...conf('azure', [[V4], [V6]]), cniVersion: v };
      const p = pod();
      const r = ok(await call('ADD', node, p, c));
      if (v === '0.2.0') {
        expect(r.ip4).toMatchObject({ ip: expect.stringMatching(/^10\.224\./), gateway: '169.254.1.1' });
        expect(r.ip6).toMatchObject({ ip: expect.stringMatching(/^fd00:224::/), gateway: LL6 });
        expect(r.ip6.routes).toEqual([{ dst: '::/0', gw: LL6 }]);
      } else {
        expect(r.ips.map((i: any) => i.gateway), v).toEqual(['169.254.1.1', LL6]);
        if (v < '1.0.0') expect(r.ips.map((i: any) => i.version)).toEqual(['4', '6']);
      }
      ok(await call('DEL', node, p, c));
    }
  });
});

describe('routes of any prefix length, in both families, are planned, reported and checked', () => {
  it('IPAM routes and ipsToRouteViaHost of both families go via their family’s gateway; CHECK names the one that went missing', async () => {
    const { node } = lab.aksNode('troutes', { dualStack: true });
    const c = conf('azure', [[V4], [V6]], { ipsToRouteViaHost: ['169.254.20.10', 'fd00:53::10'] });
    c.ipam.routes.push({ dst: '10.10.0.0/16' }, { dst: 'fd00:10::/48' }, { dst: '10.20.30.40/32' }, { dst: 'fd00:20::5/128' });
    const p = pod();
    const r = ok(await call('ADD', node, p, c));
    expect(r.routes).toEqual([
      { dst: '0.0.0.0/0', gw: '169.254.1.1' },
      { dst: '::/0', gw: LL6 },
      { dst: '10.10.0.0/16', gw: '169.254.1.1' },
      { dst: 'fd00:10::/48', gw: LL6 },
      { dst: '10.20.30.40/32', gw: '169.254.1.1' },
      { dst: 'fd00:20::5/128', gw: LL6 },
      { dst: '169.254.20.10/32', gw: '169.254.1.1' },
      { dst: 'fd00:53::10/128', gw: LL6 },
    ]);
    const six = routes6(p.netns).map((x) => `${x.dst} ${x.gateway ?? ''}`);
    expect(six).toEqual(expect.arrayContaining([`fd00:10::/48 ${LL6}`, `fd00:20::5 ${LL6}`, `fd00:53::10 ${LL6}`, `default ${LL6}`]));
    ok(await call('CHECK', node, p, { ...c, prevResult: r }));
    lab.in(p.netns, ['ip', '-6', 'route', 'del', 'fd00:10::/48']);
    expect((await call('CHECK', node, p, { ...c, prevResult: r })).json.msg).toMatch(/IPv6 route fd00:10::\/48 via fe80::1234:5678:9abc dev eth0 is missing/);
    lab.in(p.netns, ['ip', '-6', 'route', 'add', 'fd00:10::/48', 'via', LL6, 'dev', 'eth0']);
    lab.in(p.netns, ['ip', 'route', 'del', '10.20.30.40/32']);
    expect((await call('CHECK', node, p, { ...c, prevResult: r })).json.msg).toMatch(/IPv4 route 10\.20\.30\.40\/32 via 169\.254\.1\.1 dev eth0 is missing/);
    ok(await call('DEL', node, p, c));
    expect(held('azure')).toEqual([]);
  });
});

describe('transparent mode, IPv6 only: no IPv4 anywhere, nothing IPv4 touched', () => {
  it('pods reach each other and the node over IPv6; the node’s IPv4 forwarding stays as it was', async () => {
    const { node } = lab.aksNode('t6only', { dualStack: true });
    const c = conf('v6only', [[V6]]);
    const before = sysctl(node, 'net/ipv4/ip_forward');
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', node, a, c));
    const rb = ok(await call('ADD', node, b, c));
    expect(ra.ips).toEqual([{ address: expect.stringMatching(/^fd00:224::[0-9a-f]+\/64$/), gateway: LL6, interface: 1 }]);
    expect(lab.ping(a.netns, addrOf(rb, 6))).toContain('1 received');
    expect(lab.ping(b.netns, 'fd00:224::4')).toContain('1 received');
    expect(lab.ipJson(a.netns, ['route', 'show'])).toEqual([]);
    expect(permanent(a.netns, 'eth0').map((n) => n.dst)).toEqual([LL6]);
    expect(sysctl(node, 'net/ipv4/ip_forward')).toBe(before);
    expect(sysctl(node, `net/ipv4/conf/${ra.interfaces[0].name}/proxy_arp`)).toBe('0');
    ok(await call('CHECK', node, a, { ...c, prevResult: ra }));
    ok(await call('DEL', node, a, c));
    ok(await call('DEL', node, b, c));
    expect(held('v6only')).toEqual([]);
  });
});

describe('bridge mode, kubenet layout, dual stack: the bridge holds both gateways', () => {
  it('pods reach each other and both gateways; the bridge has a static neighbour per address; DEL removes both families, with or without prevResult', async () => {
    const node = lab.ns('knode');
    const br = `${lab.prefix.slice(0, 6)}cb`;
    const c = conf('kubenet', [[K4], [K6]], { mode: 'bridge', bridge: br, isGateway: true });
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', node, a, c));
    const rb = ok(await call('ADD', node, b, c));
    expect(lab.ping(a.netns, addrOf(rb, 6))).toContain('1 received');
    expect(lab.ping(a.netns, 'fd00:244::1')).toContain('1 received');
    expect(lab.ping(b.netns, '10.244.0.1')).toContain('1 received');
    const bridge = lab.ipJson(node, ['addr', 'show', 'dev', br])[0];
    expect(bridge.addr_info.filter((x: any) => x.scope === 'global').map((x: any) => `${x.local}/${x.prefixlen}`)).toEqual(['10.244.0.1/24', 'fd00:244::1/64']);
    expect(permanent(node, br).map((n) => n.dst).sort()).toEqual([addrOf(ra, 4), addrOf(ra, 6), addrOf(rb, 4), addrOf(rb, 6)].sort());
    expect(routes6(a.netns).filter((r) => r.dst !== 'fe80::/64')).toEqual([
      expect.objectContaining({ dst: 'fd00:244::/64', dev: 'eth0' }),
      expect.objectContaining({ dst: 'default', gateway: 'fd00:244::1', dev: 'eth0' }),
    ]);
    expect(ra.ips).toEqual([
      { address: `${addrOf(ra, 4)}/24`, gateway: '10.244.0.1', interface: 2 },
      { address: `${addrOf(ra, 6)}/64`, gateway: 'fd00:244::1', interface: 2 },
    ]);
    expect(sysctl(node, 'net/ipv6/conf/all/forwarding')).toBe('1');
    ok(await call('CHECK', node, a, { ...c, prevResult: ra }));
    lab.in(node, ['ip', 'neigh', 'del', addrOf(ra, 6), 'dev', br]);
    expect((await call('CHECK', node, a, { ...c, prevResult: ra })).json.msg).toMatch(/static IPv6 neighbour entry fd00:244::[0-9a-f]+ -> [0-9a-f:]+ on .* is missing on the node/);

    ok(await call('DEL', node, a, { ...c, prevResult: ra }));
    ok(await call('DEL', node, b, c)); // no prevResult: both families' entries found by the pod's MAC
    expect(permanent(node, br)).toEqual([]);
    expect(lab.ipJson(node, ['link', 'show']).filter((l) => l.master === br)).toEqual([]);
    expect(held('kubenet')).toEqual([]);
  });

  it('GC removes a stale attachment’s veth, both its neighbour entries and both its masquerade elements', async () => {
    const node = lab.ns('kgc');
    const br = `${lab.prefix.slice(0, 6)}gc`;
    const c = conf('kgc', [[K4], [K6]], { mode: 'bridge', bridge: br, isGateway: true, ipMasq: true });
    const keep = pod();
    const drop = pod();
    const rk = ok(await call('ADD', node, keep, c));
    ok(await call('ADD', node, drop, c));
    expect(masqElements(node).length).toBe(4);
    ok(await call('GC', node, {}, { ...c, 'cni.dev/valid-attachments': [{ containerID: keep.id, ifname: 'eth0' }] }));
    expect(permanent(node, br).map((n) => n.dst).sort()).toEqual([addrOf(rk, 4), addrOf(rk, 6)].sort());
    expect(masqElements(node).sort()).toEqual([addrOf(rk, 4), addrOf(rk, 6)].sort());
    expect(held('kgc').sort()).toEqual([addrOf(rk, 4), addrOf(rk, 6)].sort());
    ok(await call('DEL', node, keep, c));
    expect(masqElements(node)).toEqual([]);
    expect(permanent(node, br)).toEqual([]);
  });
});

/** Every element of every pod set in the node's `inet vnet` table. */
function masqElements(node: string): string[] {
  const tables = JSON.parse(lab.in(node, ['nft', '-j', 'list', 'table', 'inet', 'vnet'])).nftables;
  return tables.filter((x: any) => x.set?.name?.startsWith('pods')).flatMap((x: any) => (x.set.elem ?? []).map((e: any) => e.elem?.val ?? e));
}

describe('ipMasq, dual stack: each family leaves with the node’s address of that family', () => {

  it('the outside world sees 203.0.113.1 and 2001:db8:113::1; a pod of the range sees the pod’s own addresses', async () => {
    const node = lab.ns('mnode');
    const outside = lab.ns('outside');
    const br = `${lab.prefix.slice(0, 6)}mq`;
    lab.in(node, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', outside]);
    lab.in(node, ['ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'eth0']);
    lab.in(node, ['ip', 'addr', 'add', '2001:db8:113::1/64', 'dev', 'eth0', 'nodad']);
    lab.in(node, ['ip', 'link', 'set', 'eth0', 'up']);
    lab.in(outside, ['ip', 'addr', 'add', '203.0.113.10/24', 'dev', 'wan0']);
    lab.in(outside, ['ip', 'addr', 'add', '2001:db8:113::10/64', 'dev', 'wan0', 'nodad']);
    lab.in(outside, ['ip', 'link', 'set', 'wan0', 'up']);
    const c = conf('masq', [[K4], [K6]], { mode: 'bridge', bridge: br, isGateway: true, ipMasq: true });
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', node, a, c));
    const rb = ok(await call('ADD', node, b, c));
    const servers = [whoami(outside, '203.0.113.10'), whoami(outside, '2001:db8:113::10'), whoami(b.netns, addrOf(rb, 6))];
    try {
      await Promise.all(servers.map((s) => s.ready));
      expect(ask(a.netns, '203.0.113.10')).toBe('203.0.113.1');
      expect(ask(a.netns, '2001:db8:113::10')).toBe('2001:db8:113::1');
      expect(ask(a.netns, addrOf(rb, 6))).toBe(addrOf(ra, 6));
    } finally {
      for (const s of servers) s.stop();
    }
    expect(masqElements(node).sort()).toEqual([addrOf(ra, 4), addrOf(ra, 6), addrOf(rb, 4), addrOf(rb, 6)].sort());
    lab.in(node, ['nft', 'delete', 'element', 'inet', 'vnet', `pods6_${masqHash(node)}`, `{ ${addrOf(ra, 6)} }`]);
    expect((await call('CHECK', node, a, { ...c, prevResult: ra })).json.msg).toMatch(new RegExp(`masquerade element ${addrOf(ra, 6)} is missing`));
    ok(await call('DEL', node, a, { ...c, prevResult: ra }));
    ok(await call('DEL', node, b, c));
    expect(masqElements(node)).toEqual([]);
  });
});

const masqHash = (node: string): string =>
  JSON.parse(lab.in(node, ['nft', '-j', 'list', 'table', 'inet', 'vnet'])).nftables.find((x: any) => x.set?.name?.startsWith('pods6_')).set.name.slice('pods6_'.length);

describe('bridge mode, Azure’s layout, dual stack: the uplink’s IPv6 address and route move with the IPv4 ones', () => {
  it('the node keeps both families on the bridge; pods reach the VNet gateway, each other and the node over IPv6', async () => {
    const { node, gw } = lab.aksNode('anode', { dualStack: true });
    const br = `${lab.prefix.slice(0, 6)}az`;
    const c = conf('azb', [[V4], [V6]], { mode: 'bridge', bridge: br, uplink: 'eth0' });
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', node, a, c));
    const rb = ok(await call('ADD', node, b, c));
    const global = (dev: string) =>
      lab.ipJson(node, ['addr', 'show', 'dev', dev])[0].addr_info.filter((x: any) => x.scope === 'global').map((x: any) => `${x.local}/${x.prefixlen}`);
    expect(global(br)).toEqual(['10.224.0.4/16', 'fd00:224::4/64']);
    expect(global('eth0')).toEqual([]);
    expect(routes6(node).find((r) => r.dst === 'default')).toMatchObject({ gateway: 'fd00:224::1', dev: br });
    expect(lab.ping(node, 'fd00:224::1')).toContain('1 received');
    expect(lab.ping(a.netns, 'fd00:224::1')).toContain('1 received');
    expect(lab.ping(a.netns, addrOf(rb, 6))).toContain('1 received');
    expect(lab.ping(a.netns, 'fd00:224::4')).toContain('1 received');
    expect(lab.ping(gw, addrOf(ra, 6))).toContain('1 received');
    expect(ra.ips[1]).toEqual({ address: `${addrOf(ra, 6)}/64`, gateway: 'fd00:224::1', interface: 2 });
    ok(await call('CHECK', node, a, { ...c, prevResult: ra }));
    ok(await call('DEL', node, a, c));
    ok(await call('DEL', node, b, c));
    expect(permanent(node, br)).toEqual([]);
    expect(global(br)).toEqual(['10.224.0.4/16', 'fd00:224::4/64']);
    expect(held('azb')).toEqual([]);
  });
});

describe('ownership before removal: shared-table entries are re-tagged when re-added and removed only by their owner (both families)', () => {
  /** Elements of the node's masquerade sets: [address, tag]. */
  const elements = (node: string): [string, string][] => {
    try {
      return JSON.parse(lab.in(node, ['nft', '-j', 'list', 'table', 'inet', 'vnet'])).nftables
        .filter((x: any) => /^pods6?_/.test(x.set?.name ?? ''))
        .flatMap((x: any) => (x.set.elem ?? []).map((e: any) => [e.elem?.val ?? e, e.elem?.comment ?? '']));
    } catch {
      return [];
    }
  };
  const neighbours = (node: string, dev: string) => permanent(node, dev).map((n) => [n.dst, n.lladdr]);
  // One address per family, so that the next pod gets the same ones (reuse, as on a busy node).
  const ONE4 = { subnet: '10.244.0.0/24', rangeStart: '10.244.0.9', rangeEnd: '10.244.0.9', gateway: '10.244.0.1' };
  const ONE6 = { subnet: 'fd00:244::/64', rangeStart: 'fd00:244::9', rangeEnd: 'fd00:244::9', gateway: 'fd00:244::1' };
  const layouts: [string, (net: string) => object, string | undefined][] = [
    ['transparent with ipMasq', (net) => conf(net, [[ONE4], [ONE6]], { ipMasq: true }), undefined],
    ['bridge (kubenet) with ipMasq', (net) => ({ ...conf(net, [[ONE4], [ONE6]], { ipMasq: true }), mode: 'bridge', bridge: `${lab.prefix.slice(0, 6)}ob`, isGateway: true }), `${lab.prefix.slice(0, 6)}ob`],
  ];
  for (const [what, mk, br] of layouts) {
    it(`${what}: a DEL retried after the addresses went to another pod, and a GC, leave that pod's entries`, async () => {
      const node = lab.ns(`own${++seq}`);
      const net = `own${seq}`;
      const c = mk(net);
      const a = pod();
      const b = pod();
      const ra = ok(await call('ADD', node, a, c));
      ok(await call('DEL', node, a, { ...c, prevResult: ra }));
      // Stray elements left for the same addresses under another tag (a DEL killed half-way, say):
      // `add element` alone would keep that tag, and a later GC would remove b's masquerade.
      const sets = JSON.parse(lab.in(node, ['nft', '-j', 'list', 'table', 'inet', 'vnet'])).nftables.flatMap((x: any) => (/^pods6?_/.test(x.set?.name ?? '') ? [x.set.name] : []));
      for (const [set, ip] of [[sets.find((n: string) => n.startsWith('pods_')), addrOf(ra, 4)], [sets.find((n: string) => n.startsWith('pods6_')), addrOf(ra, 6)]]) {
        lab.in(node, ['nft', 'add', 'element', 'inet', 'vnet', set, `{ ${ip} comment "azvstale00000" }`]);
      }
      const rb = ok(await call('ADD', node, b, c));
      expect([addrOf(rb, 4), addrOf(rb, 6)]).toEqual([addrOf(ra, 4), addrOf(ra, 6)]);
      const vethB = rb.interfaces.find((i: any) => i.name.startsWith('azv') && !i.sandbox).name;
      const mine = () => elements(node).filter(([, tag]) => tag === vethB).map(([ip]) => ip).sort();
      expect(mine()).toEqual([addrOf(rb, 4), addrOf(rb, 6)].sort());
      const before = { elements: elements(node), neighbours: br ? neighbours(node, br) : [] };
      // a's DEL again, as a runtime retries it, with a's prevResult naming the very same addresses
      ok(await call('DEL', node, a, { ...c, prevResult: ra }));
      expect(elements(node)).toEqual(before.elements);
      if (br) expect(neighbours(node, br)).toEqual(before.neighbours);
      // GC with b valid keeps b's elements (they carry b's tag, not a's)
      ok(await lab.run({ node, env: cniEnv('GC'), stdin: { ...c, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: b.id, ifname: 'eth0' }] } }));
      expect(mine()).toEqual([addrOf(rb, 4), addrOf(rb, 6)].sort());
      ok(await call('DEL', node, b, c));
      expect(elements(node)).toEqual([]);
      if (br) expect(neighbours(node, br)).toEqual([]);
    });
  }
});
