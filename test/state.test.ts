// `vnet state`: every allocation of a network with its host veth, routes, neighbour entries and
// masquerade element, and every kind of leak named, in human and --json output, with the exit
// status (0 no leak, 1 leaks, 2 usage). Each leak is made on purpose in namespaces of the lab; the
// built binary runs `state` inside the node namespace.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, BIN_DIR, Lab, cniEnv, type Ran, transparentConf } from './helpers/lab.js';

const lab = new Lab();
afterAll(() => lab.cleanup());

const V4 = { subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60' };
const V6 = { subnet: 'fd00:224::/64', rangeStart: 'fd00:224::10', rangeEnd: 'fd00:224::60' };
const VETH = /^azv[0-9a-f]{11}$/;

let seq = 0;
type Pod = { id: string; netns: string };
const pod = (): Pod => ({ id: `${lab.prefix}-c${++seq}`, netns: lab.ns(`pod${seq}`) });
const dataDir = (net: string) => join(lab.dir, `ipam-${net}`);

const transparent = (net: string, ranges: object[][] = [[V4]]) => transparentConf(net, ranges, dataDir(net));
function bridge(net: string, br: string, over: Record<string, unknown> = {}): any {
  return {
    cniVersion: '1.1.0',
    name: net,
    type: 'vnet',
    mode: 'bridge',
    bridge: br,
    isGateway: true,
    mtu: 1500,
    ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.244.0.0/24', gateway: '10.244.0.1' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: dataDir(net) },
    ...over,
  };
}
/** The config as a file of the lab, for --conf. */
function confFile(c: any): string {
  const f = join(lab.dir, `${c.name}.conf`);
  writeFileSync(f, JSON.stringify(c));
  return f;
}

const call = (command: string, node: string, p: Partial<Pod>, stdin: object, bin?: string) =>
  lab.run({ node, bin, env: cniEnv(command, { id: p.id, netns: p.netns ?? '' }), stdin });
function ok(r: Ran): any {
  expect(r.stdout + r.stderr, `exit ${r.code}`).not.toMatch(/"code":/);
  expect(r.code).toBe(0);
  return r.json;
}
/** vnet-ipam alone: the address goes, the veth stays. */
const ipamDel = async (node: string, p: Pod, c: object) => ok(await call('DEL', node, p, c, join(BIN_DIR, 'vnet-ipam')));

/** `vnet state ARGS` inside the node namespace. */
function state(node: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', [`--net=${node}`, BIN, 'state', ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function stateJson(node: string, args: string[]): { code: number; json: any } {
  const r = state(node, [...args, '--json']);
  return { code: r.code, json: JSON.parse(r.stdout) };
}
const addrOf = (r: any, family: 4 | 6) => r.ips.find((i: any) => i.address.includes(':') === (family === 6))?.address.split('/')[0];

describe('a clean node: every allocation with its veth, routes and neighbours, and no leak (exit 0)', () => {
  it('transparent, dual stack: a /32 and a /128 through each veth, a permanent neighbour entry per IPv6 address', async () => {
    const { node } = lab.aksNode('tclean', { dualStack: true });
    const c = transparent('tclean', [[V4], [V6]]);
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', node, a, c));
    const rb = ok(await call('ADD', node, b, c));

    const { code, json } = stateJson(node, ['--conf', confFile(c)]);
    expect(code).toBe(0);
    expect(json).toMatchObject({ network: 'tclean', dataDir: dataDir('tclean'), mode: 'transparent', leaks: [] });
    expect(json.allocations).toHaveLength(4);
    for (const [p, r] of [[a, ra], [b, rb]] as const) {
      const veth = r.interfaces[0].name;
      const podMac = r.interfaces[1].mac;
      const v4 = json.allocations.find((x: any) => x.ip === addrOf(r, 4));
      const v6 = json.allocations.find((x: any) => x.ip === addrOf(r, 6));
      for (const x of [v4, v6]) {
        expect(x).toMatchObject({ containerId: p.id, ifname: 'eth0', veth: { name: veth, present: true, up: true, master: null }, masquerade: null });
      }
      expect(v4.routes).toEqual([expect.objectContaining({ dst: `${addrOf(r, 4)}/32`, dev: veth, scope: 'link' })]);
      expect(v6.routes).toEqual([expect.objectContaining({ dst: `${addrOf(r, 6)}/128`, dev: veth })]);
      expect(v6.neighbours).toEqual([{ dst: addrOf(r, 6), dev: veth, lladdr: podMac, state: ['PERMANENT'] }]);
    }

    const human = state(node, ['--conf', confFile(c)]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Network "tclean", mode transparent');
    expect(human.stdout).toContain('Allocations (4):');
    expect(human.stdout).toContain(`${addrOf(ra, 4)}  container ${a.id} eth0`);
    expect(human.stdout).toContain(`veth        ${ra.interfaces[0].name} up, aa:aa:aa:aa:aa:aa`);
    expect(human.stdout).toContain(`route       ${addrOf(ra, 4)}/32 dev ${ra.interfaces[0].name} scope link`);
    expect(human.stdout).toMatch(new RegExp(`route       ${addrOf(rb, 6)}/128 dev ${rb.interfaces[0].name}`));
    expect(human.stdout).toContain(`neighbour   ${addrOf(rb, 6)} dev ${rb.interfaces[0].name} lladdr ${rb.interfaces[1].mac} PERMANENT`);
    expect(human.stdout).toContain('Leaks: none');
  });

  it('bridge with ipMasq: each veth a port of the bridge, a permanent entry on the bridge, a masquerade element', async () => {
    const node = lab.ns('bclean');
    const br = `${lab.prefix.slice(0, 6)}b1`;
    const c = bridge('bclean', br, { ipMasq: true });
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', node, a, c));
    ok(await call('ADD', node, b, c));

    const { code, json } = stateJson(node, ['--conf', confFile(c)]);
    expect(code).toBe(0);
    expect(json).toMatchObject({ mode: 'bridge', leaks: [], masquerade: { checked: true, table: true } });
    expect(json.allocations).toHaveLength(2);
    const x = json.allocations.find((y: any) => y.containerId === a.id);
    expect(x).toMatchObject({ ip: addrOf(ra, 4), ifname: 'eth0', veth: { name: ra.interfaces[1].name, present: true, up: true, master: br }, masquerade: true });
    expect(x.neighbours).toEqual([{ dst: addrOf(ra, 4), dev: br, lladdr: ra.interfaces[2].mac, state: ['PERMANENT'] }]);
    expect(json.bridges).toEqual([expect.objectContaining({ name: br, present: true, up: true, addresses: ['10.244.0.1/24'] })]);
    expect(json.bridges[0].ports.sort()).toEqual(json.allocations.map((y: any) => y.veth.name).sort());

    const human = state(node, ['--conf', confFile(c)]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`veth        ${ra.interfaces[1].name} up, ${ra.interfaces[1].mac}, port of ${br}`);
    expect(human.stdout).toContain(`neighbour   ${addrOf(ra, 4)} dev ${br} lladdr ${ra.interfaces[2].mac} PERMANENT`);
    expect(human.stdout).toMatch(new RegExp(`masquerade  element of pods_[0-9a-f]{10}, tagged ${ra.interfaces[1].name}`));
    expect(human.stdout).toContain(`Bridge ${br}: up`);
    expect(human.stdout).toContain('Leaks: none');

    // with --data-dir and --network only, the mode and the bridge come from the veths
    const bare = stateJson(node, ['--data-dir', dataDir('bclean'), '--network', 'bclean']);
    expect(bare.code).toBe(0);
    expect(bare.json).toMatchObject({ mode: 'bridge', config: null, leaks: [] });
    expect(bare.json.allocations.map((y: any) => y.masquerade)).toEqual([true, true]);
  });
});

describe('an allocation whose veth does not exist is a leaked address (exit 1)', () => {
  it('ADD, then the veth deleted by hand', async () => {
    const { node } = lab.aksNode('leakaddr');
    const c = transparent('leakaddr');
    const p = pod();
    const r = ok(await call('ADD', node, p, c));
    const veth = r.interfaces[0].name;
    lab.in(node, ['ip', 'link', 'del', veth]);
    const ip = addrOf(r, 4);

    const human = state(node, ['--conf', confFile(c)]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`veth        ${veth} absent`);
    expect(human.stdout).toContain('Leaks (1):');
    expect(human.stdout).toContain(`allocation ${ip} (container ${p.id} eth0) has no veth ${veth}: leaked address`);

    const { code, json } = stateJson(node, ['--conf', confFile(c)]);
    expect(code).toBe(1);
    expect(json.allocations).toEqual([expect.objectContaining({ ip, veth: { name: veth, present: false, up: null, master: null, mac: null }, routes: [], neighbours: [] })]);
    expect(json.leaks).toEqual([{ kind: 'address', message: expect.stringContaining('leaked address'), ip, containerId: p.id, ifname: 'eth0', veth }]);
  });
});

describe('vnet state --free-leaked frees what vnet state finds leaked, safe against ADDs under way, and says what it freed', () => {
  it('an old leaked address (both families) is freed; a young one and a live pod are kept', async () => {
    const { node } = lab.aksNode('freeleak', { dualStack: true });
    const c = transparent('freeleak', [[V4], [V6]]);
    const [gone, young, live] = [pod(), pod(), pod()];
    const rg = ok(await call('ADD', node, gone, c));
    const ry = ok(await call('ADD', node, young, c));
    ok(await call('ADD', node, live, c));
    // Two pods vanish without a DEL (a reboot of the runtime, a kill): their veths are gone, their addresses held.
    for (const r of [rg, ry]) lab.in(node, ['ip', 'link', 'del', r.interfaces[0].name]);
    // One of them long ago: its address files are old; the other is as young as an ADD under way.
    const old = new Date(Date.now() - 10 * 60_000);
    for (const ip of [addrOf(rg, 4), addrOf(rg, 6)]) utimesSync(join(dataDir('freeleak'), 'freeleak', ip), old, old);

    const r = state(node, ['--conf', confFile(c), '--free-leaked']);
    expect(r.stdout).toContain('Network "freeleak": 4 leaked addresses found (no veth on this node).');
    expect(r.stdout).toContain(`freed ${addrOf(rg, 4)} (container ${gone.id} eth0)`);
    expect(r.stdout).toContain(`freed ${addrOf(rg, 6)} (container ${gone.id} eth0)`);
    expect(r.stdout).toMatch(new RegExp(`kept ${addrOf(ry, 4).replace(/\./g, '\\.')} \\(container ${young.id} eth0\\): allocated less than 60 s ago`));
    expect(r.code).toBe(1); // the young one is still leaked
    const after = stateJson(node, ['--conf', confFile(c)]).json;
    expect(after.allocations.map((a: any) => a.containerId).sort()).toEqual([live.id, live.id, young.id, young.id].sort());
    expect(after.allocations.map((a: any) => a.ip)).not.toContain(addrOf(rg, 4));
    expect(after.allocations.map((a: any) => a.ip)).not.toContain(addrOf(rg, 6));
  });
  it('nothing leaked: says so, exit 0', async () => {
    const { node } = lab.aksNode('noleak');
    const c = transparent('noleak');
    const p = pod();
    ok(await call('ADD', node, p, c));
    const r = state(node, ['--conf', confFile(c), '--free-leaked']);
    expect(r.stdout).toBe('Network "noleak": 0 leaked addresses found (no veth on this node).\n');
    expect(r.code).toBe(0);
    ok(await call('DEL', node, p, c));
  });
});

describe('a veth of the network whose attachment holds no address is a leaked link (exit 1)', () => {
  it('ADD, then vnet-ipam DEL alone', async () => {
    const { node } = lab.aksNode('leaklink');
    const c = transparent('leaklink');
    const p = pod();
    const r = ok(await call('ADD', node, p, c));
    await ipamDel(node, p, c);
    const veth = r.interfaces[0].name;

    const human = state(node, ['--conf', confFile(c)]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('Allocations (0):');
    expect(human.stdout).toContain(`veth ${veth} (container ${p.id} eth0) holds no address: leaked link`);
    const { code, json } = stateJson(node, ['--conf', confFile(c)]);
    expect(code).toBe(1);
    expect(json.leaks).toEqual([{ kind: 'link', message: expect.stringContaining('leaked link'), veth, containerId: p.id, ifname: 'eth0', alias: `vnet:leaklink:${p.id}:eth0` }]);
  });

  it('ADD, then the address file deleted; seen with --data-dir and --network alone', async () => {
    const { node } = lab.aksNode('leakfile');
    const c = transparent('leakfile');
    const kept = pod();
    const p = pod();
    const rk = ok(await call('ADD', node, kept, c));
    const r = ok(await call('ADD', node, p, c));
    rmSync(join(dataDir('leakfile'), 'leakfile', addrOf(r, 4)));
    const args = ['--data-dir', dataDir('leakfile'), '--network', 'leakfile'];

    const human = state(node, args);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('mode transparent (from its veths)');
    expect(human.stdout).toContain(`veth ${r.interfaces[0].name} (container ${p.id} eth0) holds no address: leaked link`);
    const { json } = stateJson(node, args);
    expect(json.allocations.map((x: any) => x.containerId)).toEqual([kept.id]);
    expect(json.allocations[0].veth).toMatchObject({ name: rk.interfaces[0].name, present: true });
    expect(json.leaks.map((l: any) => [l.kind, l.veth])).toEqual([['link', r.interfaces[0].name]]);
  });
});

describe('bridge mode with ipMasq: a masquerade element and a bridge neighbour entry left behind are leaks (exit 1)', () => {
  it('the veth and the allocation removed, the element and the entry left', async () => {
    const node = lab.ns('leakbr');
    const br = `${lab.prefix.slice(0, 6)}b2`;
    const c = bridge('leakbr', br, { ipMasq: true });
    const live = pod();
    const p = pod();
    ok(await call('ADD', node, live, c));
    const r = ok(await call('ADD', node, p, c));
    const veth = r.interfaces[1].name;
    const ip = addrOf(r, 4);
    const podMac = r.interfaces[2].mac;
    lab.in(node, ['ip', 'link', 'del', veth]);
    await ipamDel(node, p, c);
    // what is left: the element (tagged with the veth) and the bridge's entry for the pod's MAC
    expect(lab.in(node, ['nft', 'list', 'table', 'inet', 'vnet'])).toContain(`${ip} comment "${veth}"`);
    expect(lab.ipJson(node, ['neigh', 'show', 'dev', br]).map((n) => [n.dst, n.lladdr])).toContainEqual([ip, podMac]);

    const human = state(node, ['--conf', confFile(c)]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('Leaks (2):');
    expect(human.stdout).toMatch(new RegExp(`masquerade element ${ip.replaceAll('.', '\\.')} \\(tagged ${veth}\\) in pods_[0-9a-f]{10} matches no allocation: leaked masquerade element`));
    expect(human.stdout).toContain(`neighbour ${ip} lladdr ${podMac} on ${br} (permanent) is the pod MAC of no live attachment: leaked neighbour entry`);

    const { code, json } = stateJson(node, ['--conf', confFile(c)]);
    expect(code).toBe(1);
    expect(json.allocations.map((x: any) => [x.containerId, x.masquerade])).toEqual([[live.id, true]]);
    expect(json.leaks).toEqual([
      { kind: 'masquerade', message: expect.stringContaining('leaked masquerade element'), ip, tag: veth, set: expect.stringMatching(/^pods_[0-9a-f]{10}$/) },
      { kind: 'neighbour', message: expect.stringContaining('leaked neighbour entry'), ip, lladdr: podMac, dev: br },
    ]);
  });
});

describe('a data directory or a network that does not exist is said plainly', () => {
  it('no data directory: said, exit 0, nothing listed', async () => {
    const node = lab.ns('nodir');
    const missing = join(lab.dir, 'no-such-dir');
    const human = state(node, ['--data-dir', missing, '--network', 'ghost']);
    expect(human.code).toBe(0);
    expect(human.stdout.split('\n').slice(0, 3)).toEqual([
      `Network "ghost", mode unknown; no address directory ${join(missing, 'ghost')}/`,
      '  Network "ghost" does not exist on this node: no address directory, no veth, no masquerade set.',
      `  The data directory ${missing} does not exist: vnet-ipam holds no address there (is --data-dir, or the config's ipam.dataDir, right?).`,
    ]);
    expect(human.stdout).toContain('Allocations (0):');
    const { json } = stateJson(node, ['--data-dir', missing, '--network', 'ghost']);
    expect(json).toMatchObject({ network: 'ghost', dataDir: missing, dataDirExists: false, networkDirExists: false, allocations: [], leaks: [] });
  });

  it('no such network in the data directory: said, with the networks that are there', async () => {
    const node = lab.ns('nonet');
    const dir = join(lab.dir, 'ipam-nonet');
    mkdirSync(join(dir, 'azure'), { recursive: true });
    const human = state(node, ['--data-dir', dir, '--network', 'azrue']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`No network "azrue" in ${dir} (no directory ${join(dir, 'azrue')}): vnet-ipam holds no address of it there; the networks there: azure.`);
  });
});

describe('usage errors exit 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['no network named', [], /name the network: --conf FILE, or --network NAME/],
    ['an unknown option', ['--network', 'x', '--verbose'], /Unknown option '--verbose'/],
    ['an argument', ['x'], /Unexpected argument|positional/i],
    ['a network name that is a path', ['--network', '../etc'], /invalid network name "\.\.\/etc"/],
    ['a config that cannot be read', ['--conf', '/nonexistent/x.conf'], /cannot read \/nonexistent\/x\.conf/],
  ];
  for (const [what, args, msg] of cases) {
    it(what, () => {
      const r = state(lab.ns(`usage${++seq}`), args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe('');
    });
  }
});

describe('what is read from files and the kernel never drives the terminal', () => {
  it('an address file whose container ID holds escape sequences: escaped in the text, exact in the JSON', async () => {
    const node = lab.ns('hostile');
    const dir = join(lab.dir, 'ipam-hostile');
    mkdirSync(join(dir, 'hostile'), { recursive: true });
    const id = 'evil\x1b]0;owned\x07\x1b[2J\u009b31m';
    writeFileSync(join(dir, 'hostile', '10.9.0.5'), `${id}\r\neth0`);
    const human = state(node, ['--data-dir', dir, '--network', 'hostile']);
    expect(human.code).toBe(1); // no veth: a leaked address
    expect(human.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/);
    expect(human.stdout).toContain('container evil\\x1b]0;owned\\x07\\x1b[2J\\x9b31m eth0');
    const raw = state(node, ['--data-dir', dir, '--network', 'hostile', '--json']).stdout;
    expect(raw).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f]/);
    const json = JSON.parse(raw);
    expect(json.allocations[0].containerId).toBe(id);
    expect(json.leaks).toEqual([expect.objectContaining({ kind: 'address', ip: '10.9.0.5', containerId: id, veth: expect.stringMatching(VETH) })]);
  });
});
