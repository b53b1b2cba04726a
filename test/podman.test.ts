// A real container runtime drives the plugin in every mode: podman 4.3 with its CNI network backend
// runs busybox containers on a vnet network in transparent mode, in bridge mode with kubenet's
// layout (a bridge holding the pod range's gateway) and in bridge mode with Azure's (the node's
// eth0 moved onto the bridge), each chained with the reference portmap. Each mode gets a node of
// its own, made the same way (vnetNode: the node's eth0 leads to a "vnet" namespace holding the
// VNet's gateway, which routes on to a "remote" namespace on another subnet, the outside client of
// a published port), and a podman of its own running inside that node namespace, as it would on a
// node, so the CNI plugins it executes (vnet with vnet-ipam in-process, then portmap) wire the
// containers into that namespace and put portmap's iptables rules there. Tests run in order within
// a mode: run, reach, publish, stop, start, rm.
// See test/helpers/podman.ts for where podman's state lives, why each flag is there, and the
// machine facts these tests rely on.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, sh } from './helpers/lab.js';
import { Podman, vnetNode, type VnetNode } from './helpers/podman.js';
import { hostVethName } from '../src/plan/names.js';

const lab = new Lab();
afterAll(() => lab.cleanup());

// The machine's own namespace, as `ip` and `nft` show it: link names, routes of every table, the
// whole nftables ruleset (iptables-nft's tables included).
function rootNamespace(): { links: string[]; routes: string[]; ruleset: string } {
  const links = sh(['ip', '-o', 'link', 'show']).split('\n').filter(Boolean).map((l) => l.split(':')[1]!.trim().split('@')[0]!);
  const routes = [...sh(['ip', '-4', 'route', 'show', 'table', 'all']).split('\n'), ...sh(['ip', '-6', 'route', 'show', 'table', 'all']).split('\n')]
    .filter(Boolean)
    .map((r) => r.replace(/ expires \d+sec/, ''));
  return { links, routes, ruleset: sh(['nft', 'list', 'ruleset']) };
}
const rootBefore = rootNamespace();

// Container A listens on CTR_PORT and is published on the node's HOST_PORT; B sleeps.
const HOST_PORT = 8081;
const CTR_PORT = 8080;
const PORTMAP = { type: 'portmap', capabilities: { portMappings: true }, snat: true };
const hello = (name: string) => `hello from ${name}`;
// busybox 1.35's small nc: -ll keeps listening after a connection, -e runs the rest of argv for each
const listener = (name: string) => ['nc', '-ll', '-p', String(CTR_PORT), '-e', 'echo', hello(name)];

/** What a mode's tests share: its node, its podman, its network and IPAM store, its containers. */
interface Ctx {
  n: VnetNode;
  pm: Podman;
  net: string;
  dataDir: string;
  A: string;
  B: string;
}
type Container = ReturnType<Podman['inspect']>;

/** What differs between the modes; the lifecycle around it is the same (modeSuite). */
interface Mode {
  /** the network's name is <prefix>-<key>, its node namespace <prefix>-node-<key> */
  key: string;
  /** the describe's name: the rule it proves */
  rule: string;
  /** the vnet plugin's entry of the conflist (portmap follows it) */
  plugin(ctx: Ctx): object;
  /** what podman reports for each container */
  address: { pattern: RegExp; prefixLen: number; gateway: string };
  /** the node and the container's netns hold what this mode makes for one container */
  expectWired(ctx: Ctx, c: Container): void;
  /** nothing this mode makes for one container is left (the address is checked by the suite) */
  expectUnwired(ctx: Ctx, c: { id: string; ip: string }): void;
  /** what every container reaches besides the other container, by name; called before pinging */
  reaches(ctx: Ctx, c: Container): Record<string, string>;
  /** the same, in words, for the test's name */
  reachText: string;
  /** what stays on the node after the last container is removed (the bridge, the moved NIC) */
  expectAfterLast(ctx: Ctx): void;
  /** B's MAC, chosen by the runtime (`--mac-address`: podman 4.3 sends it as CNI_ARGS MAC) */
  macB?: string;
  /** what the node does that no plugin does, set before the first container (in the node namespace) */
  prepareNode?(ctx: Ctx): void;
}

// ---- node-side views, per context ----

/** IPAM's record of an address: `containerID\r\nifname`, or undefined if it is free. */
function allocation(ctx: Ctx, ip: string): string | undefined {
  expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  const f = join(ctx.dataDir, ctx.net, ip);
  return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
}
function allocations(ctx: Ctx): string[] {
  const dir = join(ctx.dataDir, ctx.net);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
}
const azvLinks = (ctx: Ctx) => lab.ipJson(ctx.n.node, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'));
const vethOf = (ctx: Ctx, id: string) => hostVethName(ctx.net, { containerId: id, ifname: 'eth0' });
const ping = (ctx: Ctx, from: string, to: string) => ctx.pm.exec(from, ['ping', '-c', '1', '-W', '2', to]);
const ports = (ctx: Ctx, br: string) => lab.ipJson(ctx.n.node, ['link', 'show', 'master', br]).map((l) => l.ifname).sort();
const permanentNeighs = (ctx: Ctx, br: string) => lab.ipJson(ctx.n.node, ['neigh', 'show', 'dev', br, 'nud', 'permanent']);

/**
 * The nat table as iptables-save prints it in a namespace (iptables is iptables-nft here; asking
 * for -t nat makes an empty nat table where there was none, so only for the node, after portmap).
 */
const natRules = (ns: string) => lab.in(ns, ['iptables-save', '-t', 'nat']).split('\n').filter((l) => l && !l.startsWith('#'));
/**
 * portmap's rules for one container: the jump from CNI-HOSTPORT-DNAT, commented with the network
 * and container ID, to a chain of its own, CNI-DN-<hash> (declared, holding the DNAT to the
 * container's address); every line naming the ID, that chain or the DNAT target.
 */
function portmapRules(ns: string, c: { id: string; ip: string }): string[] {
  const rules = natRules(ns);
  const chains = new Set(rules.filter((l) => l.includes(c.id)).flatMap((l) => l.match(/CNI-DN-[0-9a-f]+/g) ?? []));
  return rules.filter((l) => l.includes(c.id) || l.includes(`${c.ip}:${CTR_PORT}`) || [...chains].some((ch) => l.split(' ').includes(ch) || l.startsWith(`:${ch} `)));
}

/** What the listener at addr:port answers a client in namespace `from` (throws if nothing does). */
const fetchFrom = (from: string, addr: string, port = HOST_PORT) =>
  execFileSync('nsenter', [`--net=${from}`, 'busybox', 'nc', '-w', '2', addr, String(port)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 5_000,
  }).trim();
/**
 * What answers at addr:HOST_PORT, '' when nothing does: refused, or accepted by the socket podman's
 * conmon holds on the host port (it never sends anything, and closes with conmon).
 */
const answerAt = (from: string, addr: string) => {
  try {
    return fetchFrom(from, addr);
  } catch {
    return '';
  }
};

/**
 * One mode under podman: A (listening, published on the node's HOST_PORT) and B run on a
 * [vnet, portmap] network in a node of their own; then stop, start and rm, each checked on the
 * node, in the IPAM store, in libcni's cache and in the node's nat table.
 */
function modeSuite(mode: Mode) {
  describe(mode.rule, () => {
    const ctx = {} as Ctx;
    beforeAll(() => {
      ctx.n = vnetNode(lab, `node-${mode.key}`);
      ctx.net = `${lab.prefix}-${mode.key}`;
      ctx.A = `${ctx.net}-a`;
      ctx.B = `${ctx.net}-b`;
      ctx.dataDir = join(lab.dir, `ipam-${mode.key}`);
      mode.prepareNode?.(ctx);
      ctx.pm = new Podman(lab, ctx.n.node, ctx.net);
      // podman 4.3 vendors libcni 1.1, which speaks CNI up to 1.0.0.
      ctx.pm.writeConflist({ cniVersion: '1.0.0', name: ctx.net, plugins: [mode.plugin(ctx), PORTMAP] });
      ctx.pm.runContainer(ctx.A, { publish: [`${HOST_PORT}:${CTR_PORT}`], argv: listener(ctx.A) });
      ctx.pm.runContainer(ctx.B, { mac: mode.macB });
    });
    afterAll(() => ctx.pm?.cleanup());

    /** The container runs and is wired: its address is held for its ID, the mode's state is there. */
    function expectWired(name: string): Container {
      const c = ctx.pm.inspect(name);
      expect(c.status).toBe('running');
      expect(allocation(ctx, c.ip)).toBe(`${c.id}\r\neth0`);
      expect(lab.ipJson(ctx.n.node, ['link', 'show', 'dev', vethOf(ctx, c.id)])[0]).toMatchObject({ operstate: 'UP' });
      mode.expectWired(ctx, c);
      return c;
    }
    /** DEL ran for it: no veth, no address held, nothing of the mode's. */
    function expectUnwired(c: { id: string; ip: string }) {
      expect(azvLinks(ctx).map((l) => l.ifname)).not.toContain(vethOf(ctx, c.id));
      expect(allocation(ctx, c.ip)).toBeUndefined();
      mode.expectUnwired(ctx, c);
    }
    function expectReaches(from: string, others: string[]) {
      const c = ctx.pm.inspect(from);
      for (const o of others) expect(ping(ctx, from, ctx.pm.inspect(o).ip), `${from} -> ${o}`).toContain('1 packets received');
      for (const [what, ip] of Object.entries(mode.reaches(ctx, c))) expect(ping(ctx, from, ip), `${from} -> ${what} ${ip}`).toContain('1 packets received');
    }
    /**
     * The node's HOST_PORT answers with A: from another subnet behind the VNet (never masqueraded),
     * from the VNet's gateway, from the node, from the node's loopback.
     */
    function expectPublished() {
      const { node, vnet, remote, nodeIp } = ctx.n;
      expect(fetchFrom(remote, nodeIp)).toBe(hello(ctx.A));
      expect(fetchFrom(vnet, nodeIp)).toBe(hello(ctx.A));
      expect(fetchFrom(node, nodeIp)).toBe(hello(ctx.A));
      // snat: portmap masquerades what comes from 127.0.0.1 (and sets route_localnet on the pod's route's device)
      expect(fetchFrom(node, '127.0.0.1')).toBe(hello(ctx.A));
    }

    it('podman reports the address vnet-ipam holds for each container ID, with the mode’s gateway', () => {
      for (const name of [ctx.A, ctx.B]) {
        const c = ctx.pm.inspect(name);
        expect(c.ip).toMatch(mode.address.pattern);
        expect(c.prefixLen).toBe(mode.address.prefixLen);
        expect(c.gateway).toBe(mode.address.gateway);
        expect(allocation(ctx, c.ip)).toBe(`${c.id}\r\neth0`);
        // and the container itself (busybox ip, in its own mount and PID namespaces) sees it on eth0
        expect(ctx.pm.exec(name, ['ip', '-4', 'addr', 'show', 'dev', 'eth0'])).toContain(`inet ${c.ip}/${mode.address.prefixLen}`);
      }
      expect(allocations(ctx)).toHaveLength(2);
      expect(ctx.pm.inspect(ctx.A).ip).not.toBe(ctx.pm.inspect(ctx.B).ip);
    });

    if (mode.macB) {
      it('podman run --mac-address: B’s eth0 has the MAC the runtime chose, and its neighbour entry points at it', () => {
        const c = ctx.pm.inspect(ctx.B);
        expect(lab.ipJson(c.netns, ['link', 'show', 'dev', 'eth0'])[0].address).toBe(mode.macB);
        expect(ctx.pm.exec(ctx.B, ['ip', 'link', 'show', 'dev', 'eth0'])).toContain(`link/ether ${mode.macB}`);
      });
    }
    it('the node holds one azv veth per container, named from the container ID, wired as the mode wires it', () => {
      expectWired(ctx.A);
      expectWired(ctx.B);
      expect(azvLinks(ctx)).toHaveLength(2);
    });

    it(`the containers reach each other, ${mode.reachText}`, () => {
      expectReaches(ctx.A, [ctx.B]);
      expectReaches(ctx.B, [ctx.A]);
    });

    it(`portmap: the node's port ${HOST_PORT} answers with A from another subnet, the VNet, the node and its loopback; the rules are in the node namespace only`, () => {
      expectPublished();
      const a = ctx.pm.inspect(ctx.A);
      const rules = portmapRules(ctx.n.node, a);
      expect(rules).toContainEqual(expect.stringMatching(new RegExp(`-j DNAT --to-destination ${a.ip.replace(/\./g, '\\.')}:${CTR_PORT}$`)));
      expect(rules).toContainEqual(expect.stringMatching(/^:CNI-DN-[0-9a-f]+ /));
      expect(portmapRules(ctx.n.node, ctx.pm.inspect(ctx.B))).toEqual([]);
      // the other namespaces have no ruleset at all, and the machine's is what it was
      expect(lab.in(ctx.n.vnet, ['nft', 'list', 'ruleset'])).toBe('');
      expect(lab.in(ctx.n.remote, ['nft', 'list', 'ruleset'])).toBe('');
      expect(sh(['nft', 'list', 'ruleset'])).toBe(rootBefore.ruleset);
    });

    it('podman stop makes the runtime call DEL for vnet and portmap: veth, address and port rules go; B is untouched', () => {
      const a = ctx.pm.inspect(ctx.A);
      ctx.pm.podman(['stop', '--time', '0', ctx.A]);
      expect(ctx.pm.inspect(ctx.A).status).toBe('exited');
      expectUnwired(a);
      expect(existsSync(a.netns)).toBe(false);
      expect(portmapRules(ctx.n.node, a)).toEqual([]);
      expect(answerAt(ctx.n.remote, ctx.n.nodeIp)).toBe('');
      expectWired(ctx.B);
      expect(azvLinks(ctx)).toHaveLength(1);
      expect(allocations(ctx)).toHaveLength(1);
      expect(ping(ctx, ctx.B, ctx.n.nodeIp)).toContain('1 packets received');
    });

    it('podman start makes it call ADD again: wired under the same container ID, reaching B, published again', () => {
      const id = ctx.pm.inspect(ctx.A).id;
      ctx.pm.start(ctx.A);
      const a = expectWired(ctx.A);
      expect(a.id).toBe(id);
      expect(allocations(ctx)).toHaveLength(2);
      expectReaches(ctx.A, [ctx.B]);
      expectPublished();
      expect(portmapRules(ctx.n.node, a)).toContainEqual(expect.stringContaining(`--to-destination ${a.ip}:${CTR_PORT}`));
    });

    it('podman rm leaves nothing of the containers: no azv link, allocation, libcni cache file, netns file or port rule', () => {
      const a = ctx.pm.inspect(ctx.A);
      const b = ctx.pm.inspect(ctx.B);
      ctx.pm.podman(['rm', '--force', '--time', '0', ctx.A]);
      expectUnwired(a);
      expect(portmapRules(ctx.n.node, a)).toEqual([]);
      expectWired(ctx.B);
      ctx.pm.podman(['rm', '--force', '--time', '0', ctx.B]);
      expectUnwired(b);

      expect(azvLinks(ctx)).toEqual([]);
      expect(allocations(ctx)).toEqual([]);
      expect(ctx.pm.podman(['ps', '--all', '--quiet'])).toBe('');
      expect(ctx.pm.liveSandboxes()).toEqual([]);
      expect(ctx.pm.cniCacheFiles()).toEqual([]);
      // portmap keeps its shared chains (CNI-HOSTPORT-*), with nothing left for any container in them
      expect(natRules(ctx.n.node).filter((l) => /CNI-DN-|-j DNAT/.test(l))).toEqual([]);
      expect(answerAt(ctx.n.remote, ctx.n.nodeIp)).toBe('');
      mode.expectAfterLast(ctx);
      // every DEL the runtime made is in the plugin's log, once per attachment that went away
      const dels = readFileSync(ctx.pm.logFile, 'utf8').split('\n').filter((l) => /Processing DEL command/.test(l));
      expect(dels.filter((l) => l.includes(a.id)).length).toBeGreaterThanOrEqual(2);
      expect(dels.filter((l) => l.includes(b.id)).length).toBeGreaterThanOrEqual(1);
    });
  });
}

// ---- the three modes ----

const ipamOf = (ctx: Ctx, range: object) => ({ type: 'vnet-ipam', ranges: [[range]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ctx.dataDir });
/** The VNet's range the pods get in transparent and Azure's layout (the node is .4, the gateway .1). */
const VNET_RANGE = { subnet: '10.230.0.0/16', rangeStart: '10.230.0.10', rangeEnd: '10.230.0.50' };
const IN_VNET_RANGE = /^10\.230\.0\.(1\d|[2-4]\d|50)$/;

modeSuite({
  key: 't',
  rule: 'transparent mode under podman: a container is an address the node routes to its azv veth (/32), through the link-local gateway',
  plugin: (ctx) => ({ type: 'vnet', mode: 'transparent', mtu: 1500, logFile: ctx.pm.logFile, ipam: ipamOf(ctx, VNET_RANGE) }),
  address: { pattern: IN_VNET_RANGE, prefixLen: 16, gateway: '169.254.1.1' },
  expectWired(ctx, c) {
    const veth = vethOf(ctx, c.id);
    const link = lab.ipJson(ctx.n.node, ['link', 'show', 'dev', veth])[0];
    expect(link.address).toBe('aa:aa:aa:aa:aa:aa');
    expect(link.master).toBeUndefined();
    expect(lab.ipJson(ctx.n.node, ['route', 'show', `${c.ip}/32`])).toEqual([expect.objectContaining({ dst: c.ip, dev: veth, scope: 'link' })]);
    // inside: the address, no subnet route, default via 169.254.1.1 pinned to the host veth's MAC
    const addr = lab.ipJson(c.netns, ['addr', 'show', 'dev', 'eth0'])[0];
    expect(addr.mtu).toBe(1500);
    expect(addr.addr_info.find((x: any) => x.family === 'inet')).toMatchObject({ local: c.ip, prefixlen: 16 });
    expect(lab.ipJson(c.netns, ['route', 'show'])).toEqual([
      expect.objectContaining({ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' }),
      expect.objectContaining({ dst: '169.254.1.1', dev: 'eth0', scope: 'link' }),
    ]);
    const neigh = lab.ipJson(c.netns, ['neigh', 'show', 'dev', 'eth0']).find((x) => x.dst === '169.254.1.1');
    expect(neigh).toMatchObject({ lladdr: 'aa:aa:aa:aa:aa:aa', state: ['PERMANENT'] });
  },
  expectUnwired(ctx, c) {
    expect(lab.ipJson(ctx.n.node, ['route', 'show']).filter((r) => r.dst === c.ip)).toEqual([]);
  },
  reachText: 'the node, and the VNet gateway (which routes each pod’s /32 to the node)',
  reaches(ctx, c) {
    // the VNet knows which node holds the pod (Azure programs this in its fabric)
    lab.in(ctx.n.vnet, ['ip', 'route', 'replace', `${c.ip}/32`, 'via', ctx.n.nodeIp]);
    return { node: ctx.n.nodeIp, 'VNet gateway': ctx.n.gwIp };
  },
  expectAfterLast(ctx) {
    expect(lab.ipJson(ctx.n.node, ['route', 'show']).filter((r) => r.dev?.startsWith('azv'))).toEqual([]);
    expect(lab.ipJson(ctx.n.node, ['link', 'show', 'type', 'bridge'])).toEqual([]);
  },
});

const KUBENET_BR = `${lab.prefix}br`;
const KUBENET_GW = '10.231.0.1';
modeSuite({
  key: 'k',
  rule: 'bridge mode, kubenet’s layout, under podman: a container is a port of the bridge holding its gateway; DEL leaves the bridge',
  macB: '0a:58:0a:e7:00:42',
  plugin: (ctx) => ({
    type: 'vnet',
    mode: 'bridge',
    bridge: KUBENET_BR,
    isGateway: true,
    ipMasq: true,
    mtu: 1500,
    logFile: ctx.pm.logFile,
    ipam: ipamOf(ctx, { subnet: '10.231.0.0/24', gateway: KUBENET_GW }),
  }),
  address: { pattern: /^10\.231\.0\.([2-9]|[1-9]\d|1\d\d|2[0-4]\d|25[0-4])$/, prefixLen: 24, gateway: KUBENET_GW },
  expectWired(ctx, c) {
    const veth = vethOf(ctx, c.id);
    expect(lab.ipJson(ctx.n.node, ['link', 'show', 'dev', veth])[0]).toMatchObject({ master: KUBENET_BR });
    const br = lab.ipJson(ctx.n.node, ['addr', 'show', 'dev', KUBENET_BR])[0];
    expect(br.addr_info.filter((x: any) => x.family === 'inet')).toEqual([expect.objectContaining({ local: KUBENET_GW, prefixlen: 24 })]);
    const mac = lab.ipJson(c.netns, ['link', 'show', 'dev', 'eth0'])[0].address;
    expect(permanentNeighs(ctx, KUBENET_BR)).toContainEqual(expect.objectContaining({ dst: c.ip, lladdr: mac }));
    expect(lab.ipJson(c.netns, ['route', 'show'])).toEqual([
      expect.objectContaining({ dst: 'default', gateway: KUBENET_GW, dev: 'eth0' }),
      expect.objectContaining({ dst: '10.231.0.0/24', dev: 'eth0', scope: 'link' }),
    ]);
    // ipMasq: the pod's address is in the network's nftables set, tagged with its veth
    expect(lab.in(ctx.n.node, ['nft', 'list', 'table', 'inet', 'vnet'])).toMatch(new RegExp(`${c.ip.replace(/\./g, '\\.')} comment "${veth}"`));
  },
  expectUnwired(ctx, c) {
    expect(permanentNeighs(ctx, KUBENET_BR).map((x) => x.dst)).not.toContain(c.ip);
    expect(lab.in(ctx.n.node, ['nft', 'list', 'table', 'inet', 'vnet'])).not.toContain(`${c.ip} `);
  },
  reachText: 'the gateway on the bridge, the node’s eth0, and the VNet gateway through ipMasq',
  reaches: (ctx) => ({
    'gateway on the bridge': KUBENET_GW,
    'node’s eth0': ctx.n.nodeIp,
    // the VNet has no route to the pod range: only masqueraded traffic (ipMasq) gets an answer
    'VNet gateway, masqueraded': ctx.n.gwIp,
  }),
  expectAfterLast(ctx) {
    // the bridge stays, as documented, with its gateway address; no port, no neighbour entry
    const br = lab.ipJson(ctx.n.node, ['addr', 'show', 'dev', KUBENET_BR])[0];
    expect(br.addr_info.filter((x: any) => x.family === 'inet')).toEqual([expect.objectContaining({ local: KUBENET_GW })]);
    expect(ports(ctx, KUBENET_BR)).toEqual([]);
    expect(permanentNeighs(ctx, KUBENET_BR)).toEqual([]);
    expect(lab.in(ctx.n.node, ['nft', 'list', 'table', 'inet', 'vnet'])).not.toMatch(/elements = \{[^}]*comment "azv/);
  },
});

const AZURE_BR = `${lab.prefix}az`;
modeSuite({
  key: 'a',
  rule: 'bridge mode, Azure’s layout, under podman: eth0 moves onto the bridge and containers are on the VNet’s L2; DEL leaves the bridge and the moved NIC',
  plugin: (ctx) => ({
    type: 'vnet',
    mode: 'bridge',
    bridge: AZURE_BR,
    uplink: 'eth0',
    mtu: 1500,
    logFile: ctx.pm.logFile,
    ipam: ipamOf(ctx, { ...VNET_RANGE, gateway: '10.230.0.1' }),
  }),
  address: { pattern: IN_VNET_RANGE, prefixLen: 16, gateway: '10.230.0.1' },
  expectWired(ctx, c) {
    const veth = vethOf(ctx, c.id);
    expect(lab.ipJson(ctx.n.node, ['link', 'show', 'dev', veth])[0]).toMatchObject({ master: AZURE_BR });
    expectMoved(ctx);
    const mac = lab.ipJson(c.netns, ['link', 'show', 'dev', 'eth0'])[0].address;
    expect(permanentNeighs(ctx, AZURE_BR)).toContainEqual(expect.objectContaining({ dst: c.ip, lladdr: mac }));
    expect(lab.ipJson(c.netns, ['route', 'show'])).toEqual([
      expect.objectContaining({ dst: 'default', gateway: ctx.n.gwIp, dev: 'eth0' }),
      expect.objectContaining({ dst: '10.230.0.0/16', dev: 'eth0', scope: 'link' }),
    ]);
  },
  expectUnwired(ctx, c) {
    expect(permanentNeighs(ctx, AZURE_BR).map((x) => x.dst)).not.toContain(c.ip);
  },
  reachText: 'the node on the bridge, and the VNet gateway on the same L2',
  reaches: (ctx) => ({ 'node (on the bridge)': ctx.n.nodeIp, 'VNet gateway (same L2)': ctx.n.gwIp }),
  prepareNode(ctx) {
    // What the node does itself, as an AKS node does: pass bridged IPv4 through iptables
    // (br_netfilter): the container answers a client outside its subnet straight through the
    // VNet's gateway on the bridge, and only conntrack on the bridge turns the container's address
    // back into the node's (the default in a new namespace on this kernel; set here so the test
    // does not lean on a default). IPv4 forwarding, which portmap's DNAT needs, is the plugin's.
    lab.in(ctx.n.node, ['sh', '-c', 'echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables']);
  },
  expectAfterLast(ctx) {
    // DEL never moves the uplink back: the bridge stays, eth0 its only port, the node still on its VNet
    expectMoved(ctx);
    expect(ports(ctx, AZURE_BR)).toEqual(['eth0']);
    expect(permanentNeighs(ctx, AZURE_BR)).toEqual([]);
    expect(lab.ping(ctx.n.node, ctx.n.gwIp)).toContain('1 received');
  },
});

/** Azure's move is done: eth0 a port of the bridge, which has eth0's MAC, the node's address and default route. */
function expectMoved(ctx: Ctx) {
  const eth0 = lab.ipJson(ctx.n.node, ['addr', 'show', 'dev', 'eth0'])[0];
  const br = lab.ipJson(ctx.n.node, ['addr', 'show', 'dev', AZURE_BR])[0];
  expect(eth0.master).toBe(AZURE_BR);
  expect(eth0.addr_info.filter((x: any) => x.family === 'inet')).toEqual([]);
  expect(br.address).toBe(eth0.address);
  expect(br.addr_info.filter((x: any) => x.family === 'inet')).toEqual([expect.objectContaining({ local: ctx.n.nodeIp, prefixlen: ctx.n.prefixLen })]);
  expect(lab.ipJson(ctx.n.node, ['route', 'show', 'default'])).toEqual([expect.objectContaining({ gateway: ctx.n.gwIp, dev: AZURE_BR })]);
}

describe('podman runs in the node namespaces only: the machine keeps its links, routes and ruleset', () => {
  it('no new link (azv or other), no new route, and the same nftables ruleset in the root namespace', () => {
    const now = rootNamespace();
    expect(now.links.filter((l) => !rootBefore.links.includes(l))).toEqual([]);
    expect(now.links.filter((l) => l.startsWith('azv'))).toEqual([]);
    expect(now.routes.filter((r) => !rootBefore.routes.includes(r))).toEqual([]);
    expect(now.ruleset).toBe(rootBefore.ruleset);
  });
});
