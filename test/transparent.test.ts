// Transparent mode end to end, in namespaces: a node, a VNet gateway behind the node's eth0,
// and pods. The plugin runs inside the node namespace exactly as a runtime runs it.
import { readdirSync, readFileSync, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lab, ask, cniEnv, sh, whoami, type Ran } from './helpers/lab.js';
import { SUPPORTED_VERSIONS } from '../src/cni/version.js';

const lab = new Lab();
let node = '';
let gw = '';
const NET = 'azure';

beforeAll(() => {
  // node eth0 <-> the VNet's gateway, as on an AKS node (10.224.0.4/16, gateway 10.224.0.1)
  ({ node, gw } = lab.aksNode());
});
afterAll(() => lab.cleanup());
// A failing test must not fail the next one: remove whatever it left in the node and the store.
afterEach(() => {
  for (const l of azvLinks()) lab.in(node, ['ip', 'link', 'del', l.ifname]);
  rmSync(dataDir(), { recursive: true, force: true });
});

const dataDir = () => join(lab.dir, 'ipam');
const conf = (over: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: NET,
  type: 'vnet',
  mode: 'transparent',
  ipam: {
    type: 'vnet-ipam',
    ranges: [[{ subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60', gateway: '10.224.0.1' }]],
    routes: [{ dst: '0.0.0.0/0' }],
    dataDir: dataDir(),
    ...ipam,
  },
  ...over,
});

let seq = 0;
function pod(): { id: string; netns: string } {
  const n = ++seq;
  return { id: `${lab.prefix}-c${n}`, netns: lab.ns(`pod${n}`) };
}

const add = (p: { id: string; netns: string }, c: object = conf()) =>
  lab.run({ node, env: cniEnv('ADD', { id: p.id, netns: p.netns }), stdin: c });
const del = (p: { id: string; netns?: string }, c: object = conf()) =>
  lab.run({ node, env: cniEnv('DEL', { id: p.id, netns: p.netns ?? '' }), stdin: c });
const check = (p: { id: string; netns: string }, prevResult: object, c: Record<string, unknown> = conf()) =>
  lab.run({ node, env: cniEnv('CHECK', { id: p.id, netns: p.netns }), stdin: { ...c, prevResult } });

function ok(r: Ran): any {
  expect(r.stderr + r.stdout, `exit ${r.code}`).not.toMatch(/"code":/);
  expect(r.code).toBe(0);
  return r.json;
}

const azvLinks = () => lab.ipJson(node, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'));
const hostRoutes = () => lab.ipJson(node, ['route', 'show']).filter((r) => r.dev?.startsWith('azv'));
function allocations(): string[] {
  const dir = join(dataDir(), NET);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => !f.startsWith('.') && f !== 'lock' && !f.startsWith('last_reserved_ip'));
}
function expectClean() {
  expect(azvLinks()).toEqual([]);
  expect(hostRoutes()).toEqual([]);
  expect(allocations()).toEqual([]);
}
const ping = (from: string, to: string) => lab.ping(from, to);

describe('ADD wires a pod the way AKS transparent mode does', () => {
  it('two pods ping each other, the node and the VNet gateway; DEL leaves nothing', async () => {
    const a = pod();
    const b = pod();
    const ra = ok(await add(a));
    const rb = ok(await add(b));
    const ipA = ra.ips[0].address.split('/')[0];
    const ipB = rb.ips[0].address.split('/')[0];
    // the VNet knows which node holds the pods (Azure programs this in its fabric)
    lab.in(gw, ['ip', 'route', 'add', `${ipA}/32`, 'via', '10.224.0.4']);
    lab.in(gw, ['ip', 'route', 'add', `${ipB}/32`, 'via', '10.224.0.4']);

    expect(ping(a.netns, ipB)).toContain('1 received');
    expect(ping(b.netns, ipA)).toContain('1 received');
    expect(ping(a.netns, '10.224.0.4')).toContain('1 received');
    expect(ping(b.netns, '10.224.0.1')).toContain('1 received');

    // the pod's tables, as the seed shows them
    const addr = lab.ipJson(a.netns, ['addr', 'show', 'dev', 'eth0'])[0];
    expect(addr.addr_info.find((x: any) => x.family === 'inet')).toMatchObject({ local: ipA, prefixlen: 16 });
    const routes = lab.ipJson(a.netns, ['route', 'show']);
    expect(routes).toEqual([
      expect.objectContaining({ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' }),
      expect.objectContaining({ dst: '169.254.1.1', dev: 'eth0', scope: 'link' }),
    ]);
    const neigh = lab.ipJson(a.netns, ['neigh', 'show', 'dev', 'eth0']).find((n) => n.dst === '169.254.1.1');
    expect(neigh).toMatchObject({ lladdr: 'aa:aa:aa:aa:aa:aa', state: ['PERMANENT'] });
    // the node's: a /32 per pod through an azv veth with MAC aa:aa:aa:aa:aa:aa
    const veth = ra.interfaces[0].name;
    expect(veth).toMatch(/^azv[0-9a-f]{11}$/);
    expect(hostRoutes()).toEqual(
      expect.arrayContaining([expect.objectContaining({ dst: ipA, dev: veth, scope: 'link' })]),
    );
    expect(lab.ipJson(node, ['link', 'show', 'dev', veth])[0].address).toBe('aa:aa:aa:aa:aa:aa');

    ok(await del(a));
    ok(await del(b));
    expectClean();
  });

  it('the result names both interfaces, the address and the link-local gateway', async () => {
    const p = pod();
    const r = ok(await add(p));
    expect(r.interfaces).toHaveLength(2);
    expect(r.interfaces[1]).toMatchObject({ name: 'eth0', sandbox: p.netns });
    expect(r.ips[0]).toMatchObject({ interface: 1, gateway: '169.254.1.1' });
    expect(r.routes).toContainEqual({ dst: '0.0.0.0/0', gw: '169.254.1.1' });
    ok(await del(p));
    expectClean();
  });
});

describe('without mtu in the config the pod gets the MTU of the node’s default-route interface, read without a process', () => {
  it('eth0 at 1400: both veth ends at 1400, and the ADD starts only its two ip processes', async () => {
    lab.in(node, ['ip', 'link', 'set', 'eth0', 'mtu', '1400']);
    try {
      const p = pod();
      const c = conf({ cniVersion: '1.1.0' });
      const r = ok(await add(p, c));
      expect(r.interfaces[1].mtu).toBe(1400);
      expect(lab.ipJson(node, ['link', 'show', 'dev', r.interfaces[0].name])[0].mtu).toBe(1400);
      expect(lab.ipJson(p.netns, ['link', 'show', 'dev', 'eth0'])[0].mtu).toBe(1400);
      const log = readFileSync(join(lab.dir, 'vnet.log'), 'utf8').split('\n');
      expect(log.filter((l) => l.includes('MTU 1400 (from eth0')).length).toBeGreaterThan(0);
      expect(log.filter((l) => l.includes('ADD done')).pop()).toMatch(/2 processes started/);
      ok(await del(p, c));
    } finally {
      lab.in(node, ['ip', 'link', 'set', 'eth0', 'mtu', '1500']);
    }
  });
});

describe('CHECK compares the live state with the plan and names the first difference', () => {
  const cases: [string, (p: { netns: string }, r: any) => void, RegExp][] = [
    ['the pod default route deleted', (p) => lab.in(p.netns, ['ip', 'route', 'del', 'default']), /route default via 169\.254\.1\.1 dev eth0 is missing in /],
    ['the host /32 route deleted', (_p, r) => lab.in(node, ['ip', 'route', 'del', r.ips[0].address.replace(/\/\d+$/, '/32')]), /IPv4 route 10\.224\.0\.\d+\/32 dev azv[0-9a-f]+ is missing on the node/],
    ['the neighbour entry deleted', (p) => lab.in(p.netns, ['ip', 'neigh', 'del', '169.254.1.1', 'dev', 'eth0']), /static ARP entry 169\.254\.1\.1 -> aa:aa:aa:aa:aa:aa on eth0 is missing/],
    ['the veth deleted', (_p, r) => lab.in(node, ['ip', 'link', 'del', r.interfaces[0].name]), /interface azv[0-9a-f]+ is missing on the node/],
  ];
  for (const [what, breakIt, message] of cases) {
    it(`fails after ${what}; DEL still exits 0 and leaves nothing`, async () => {
      const p = pod();
      const prev = ok(await add(p));
      ok(await check(p, prev));
      breakIt(p, prev);
      const r = await check(p, prev);
      expect(r.code).toBe(1);
      expect(r.json.msg).toMatch(message);
      ok(await del(p));
      expectClean();
    });
  }
  it('does not fail on a route a later chained plugin added', async () => {
    const p = pod();
    const prev = ok(await add(p));
    lab.in(p.netns, ['ip', 'route', 'add', '192.0.2.0/24', 'via', '169.254.1.1', 'dev', 'eth0']);
    ok(await check(p, prev));
    ok(await del(p));
    expectClean();
  });
  // The datapath stays as ADD made it; only the store changes under the attachment: the failure
  // is IPAM CHECK's (code 103), naming the address and why, and CHECK passes again once the
  // address file is back.
  const ipamCases: [string, (file: string) => void, (file: string) => string][] = [
    ['freed (its address file removed)', (file) => rmSync(file), (file) => `: ${file} does not exist`],
    ['given to another container', (file) => writeFileSync(file, `${lab.prefix}-other\r\neth0`), () => `: it is allocated to container ${lab.prefix}-other (ifname eth0)`],
  ];
  for (const [how, change, cause] of ipamCases) {
    it(`fails when IPAM no longer holds the address: ${how}`, async () => {
      const p = pod();
      const prev = ok(await add(p));
      const ip = prev.ips[0].address.split('/')[0];
      const file = join(dataDir(), NET, ip);
      const held = readFileSync(file);
      ok(await check(p, prev));
      change(file);
      const r = await check(p, prev);
      expect(r.code).toBe(1);
      expect(r.json).toEqual({
        cniVersion: '1.0.0',
        code: 103,
        msg: `address ${ip} of prevResult is not allocated to container ${p.id} (ifname eth0)${cause(file)}`,
      });
      writeFileSync(file, held);
      ok(await check(p, prev));
      ok(await del(p));
      expectClean();
    });
  }
});

describe('DEL is idempotent and leak-free', () => {
  it('works with no prevResult, an empty CNI_NETNS, and on repeat', async () => {
    const p = pod();
    ok(await add(p));
    ok(await del({ id: p.id }));
    ok(await del({ id: p.id }));
    expectClean();
  });
  it('works when the netns is already gone, and still releases the address', async () => {
    const p = pod();
    ok(await add(p));
    sh(['ip', 'netns', 'del', p.netns.split('/').pop()!]);
    ok(await del(p));
    expectClean();
  });
  it('works for a container that was never added', async () => {
    ok(await del({ id: `${lab.prefix}-never` }));
  });
});

describe('DEL answers once the veth is gone from the node, and leaves the kernel’s teardown to ip', () => {
  // The `ip` processes in the node's namespace (the one a DEL leaves finishing the teardown).
  const ipsInNode = () => {
    const want = statSync(node).ino;
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'ip' && statSync(`/proc/${d}/ns/net`).ino === want;
        } catch {
          return false; // gone meanwhile
        }
      });
  };
  it('the veth, its route and the pod’s end are gone when DEL answers; the same pod can be added again at once', async () => {
    const p = pod();
    ok(await add(p));
    ok(await del(p));
    expectClean();
    expect(lab.ipJson(p.netns, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    const log = readFileSync(join(lab.dir, 'vnet.log'), 'utf8').split('\n');
    expect(log.filter((l) => l.includes('is gone from the node; ip waits out the kernel')).length).toBeGreaterThan(0);
    ok(await add(p));
    ok(await del(p));
    expectClean();
  });
  it('the ip left waiting ends by itself', async () => {
    const p = pod();
    ok(await add(p));
    ok(await del(p));
    for (let i = 0; i < 100 && ipsInNode().length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ipsInNode()).toEqual([]);
  });
  it('a veth already gone is not waited for: DEL still says what ip said', async () => {
    const p = pod();
    const r = ok(await add(p));
    lab.in(node, ['ip', 'link', 'del', r.interfaces[0].name]);
    ok(await del(p));
    const log = readFileSync(join(lab.dir, 'vnet.log'), 'utf8').split('\n');
    expect(log.slice(-4).join('\n')).toMatch(/already done: Cannot find device/);
    expectClean();
  });
});

describe('a failed ADD leaves nothing behind', () => {
  it('range exhausted: error, no veth, no route, no address', async () => {
    const tiny = conf({}, { ranges: [[{ subnet: '10.224.0.0/16', rangeStart: '10.224.0.70', rangeEnd: '10.224.0.70' }]] });
    const a = pod();
    ok(await add(a, tiny));
    const b = pod();
    const r = await add(b, tiny);
    expect(r.code).toBe(1);
    expect(r.json.msg).toMatch(/no IP addresses available in range set/);
    expect(azvLinks()).toHaveLength(1);
    ok(await del(a, tiny));
    expectClean();
  });
  it('container netns path invalid: error, nothing allocated', async () => {
    const r = await add({ id: `${lab.prefix}-nons`, netns: `/var/run/netns/${lab.prefix}-missing` });
    expect(r.json.code).toBe(3);
    expectClean();
  });
  it('the interface already exists in the container: veth rolled back, address released', async () => {
    const p = pod();
    lab.in(p.netns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
    const r = await add(p);
    expect(r.code).toBe(1);
    expect(r.json.msg).toMatch(/Creating veth pair .*File exists/);
    expectClean();
  });
});

describe('every supported cniVersion gets a result of its shape', () => {
  for (const v of SUPPORTED_VERSIONS) {
    it(v, async () => {
      const p = pod();
      const r = ok(await add(p, conf({ cniVersion: v })));
      expect(r.cniVersion).toBe(v);
      if (v === '0.1.0' || v === '0.2.0') {
        expect(r.ip4.ip).toMatch(/^10\.224\.0\.\d+\/16$/);
        expect(r.ip4.gateway).toBe('169.254.1.1');
        expect(r.interfaces).toBeUndefined();
      } else {
        expect(r.interfaces).toHaveLength(2);
        expect(r.ips[0].address).toMatch(/^10\.224\.0\.\d+\/16$/);
        if (v.startsWith('0.')) expect(r.ips[0].version).toBe('4');
        else expect(r.ips[0].version).toBeUndefined();
      }
      ok(await del(p, conf({ cniVersion: v })));
      expectClean();
    });
  }
});

describe('the main plugin talks to any IPAM through the protocol', () => {
  it('works with the reference host-local (exec path)', async () => {
    const hl = conf({}, { type: 'host-local', ranges: [[{ subnet: '10.224.0.0/16', rangeStart: '10.224.0.80', rangeEnd: '10.224.0.90' }]] });
    const p = pod();
    const prev = ok(await add(p, hl));
    expect(prev.ips[0].address).toMatch(/^10\.224\.0\.(8\d|90)\/16$/);
    ok(await check(p, prev, hl));
    ok(await del(p, hl));
    expectClean();
  });
});

describe('ipMasq in transparent mode (Azure CNI Overlay): pods from a private CIDR leave with the node’s address', () => {
  const overlay = () => ({
    ...conf({ ipMasq: true, ipMasqExclude: ['10.244.0.0/16'] }, { ranges: [[{ subnet: '10.244.0.0/24', gateway: '10.244.0.1' }]] }),
    name: 'overlay',
  });
  const elements = () => {
    const t = JSON.parse(lab.in(node, ['nft', '-j', 'list', 'table', 'inet', 'vnet'])).nftables;
    return t.filter((x: any) => x.set?.name?.startsWith('pods')).flatMap((x: any) => (x.set.elem ?? []).map((e: any) => e.elem));
  };
  it('the VNet sees the node’s address; CHECK names a missing element; DEL without prevResult finds the element by its tag', async () => {
    const p = pod();
    const r = ok(await add(p, overlay()));
    const ip = r.ips[0].address.split('/')[0];
    expect(ip).toMatch(/^10\.244\.0\./);
    const server = whoami(gw, '10.224.0.1');
    try {
      await server.ready;
      expect(ask(p.netns, '10.224.0.1')).toBe('10.224.0.4');
    } finally {
      server.stop();
    }
    expect(elements()).toEqual([{ val: ip, comment: r.interfaces[0].name }]);
    ok(await check(p, r, overlay()));
    lab.in(node, ['nft', 'flush', 'set', 'inet', 'vnet', elementsSet()]);
    expect((await check(p, r, overlay())).json.msg).toMatch(new RegExp(`masquerade element ${ip.replaceAll('.', '\\.')} is missing`));
    lab.in(node, ['nft', 'add', 'element', 'inet', 'vnet', elementsSet(), `{ ${ip} comment "${r.interfaces[0].name}" }`]);
    ok(await del(p, overlay()));
    expect(elements()).toEqual([]);
    expect(readdirSync(join(dataDir(), 'overlay')).filter((f) => /^\d/.test(f))).toEqual([]);
    expectClean();
  });
  const elementsSet = () =>
    JSON.parse(lab.in(node, ['nft', '-j', 'list', 'table', 'inet', 'vnet'])).nftables.find((x: any) => /^pods_/.test(x.set?.name ?? '')).set.name;
});

describe('GC (1.1.0) removes what no valid attachment holds, in this network only', () => {
  const v11 = (over: Record<string, unknown> = {}) => conf({ cniVersion: '1.1.0', ...over });
  const gc = (c: object) => lab.run({ node, env: cniEnv('GC'), stdin: c });
  it('keeps the listed attachment, frees the other, leaves another network’s veth alone', async () => {
    const keep = pod();
    const drop = pod();
    const other = pod();
    const otherNet = { ...v11({ name: 'othernet' }), ipam: { ...v11().ipam, ranges: [[{ subnet: '10.225.0.0/16' }]] } };
    const rk = ok(await add(keep, v11()));
    const rd = ok(await add(drop, v11()));
    const ro = ok(await add(other, otherNet));
    ok(await gc({ ...v11(), 'cni.dev/valid-attachments': [{ containerID: keep.id, ifname: 'eth0' }] }));
    const names = azvLinks().map((l) => l.ifname);
    expect(names).toContain(rk.interfaces[0].name);
    expect(names).toContain(ro.interfaces[0].name);
    expect(names).not.toContain(rd.interfaces[0].name);
    expect(allocations()).toEqual([rk.ips[0].address.split('/')[0]]);
    ok(await del(keep, v11()));
    ok(await del(other, otherNet));
    expectClean();
  });
  it('GC racing DELs of the same pods: both succeed, what one removed is done for the other', async () => {
    for (let round = 0; round < 3; round++) {
      const pods = Array.from({ length: 6 }, () => pod());
      for (const p of pods) ok(await add(p, v11()));
      const [g, ...dels] = await Promise.all([gc({ ...v11(), 'cni.dev/valid-attachments': [] }), ...pods.map((p) => del(p, v11()))]);
      ok(g!);
      for (const d of dels) ok(d);
      expectClean();
    }
  });
  it('without cni.dev/valid-attachments it refuses (code 7) and deletes nothing', async () => {
    const p = pod();
    ok(await add(p, v11()));
    const r = await gc(v11());
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toContain('cni.dev/valid-attachments');
    expect(azvLinks()).toHaveLength(1);
    expect(allocations()).toHaveLength(1);
    ok(await del(p, v11()));
    expectClean();
  });
});

describe('STATUS (1.1.0) answers ready unless IPAM cannot work', () => {
  it('ready: exit 0, nothing on stdout', async () => {
    const r = await lab.run({ node, env: cniEnv('STATUS'), stdin: conf({ cniVersion: '1.1.0' }) });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });
  it('a data directory that cannot be created: code 50', async () => {
    const file = join(lab.dir, 'a-file');
    writeFileSync(file, '');
    const r = await lab.run({ node, env: cniEnv('STATUS'), stdin: conf({ cniVersion: '1.1.0' }, { dataDir: join(file, 'ipam') }) });
    expect(r.json.code).toBe(50);
  });
});
