// The lab: a cluster in network namespaces on one machine. A namespace plays the VNet, one the
// outside world (203.0.113.10), one each node; pods are namespaces too. The plugin runs exactly as
// a runtime runs it: the installed binary, CNI_* variables, the node's conflist (written by
// `vnet install`, as on any node), executed inside the node's namespace, through the whole chain.
//
// Layouts (the VNet is 10.220.2.0/24 and fd00:220:2::/64, gateway .1 and ::1, node i at .4+i):
//   transparent  Azure CNI: pods from the VNet subnet, node i's pre-allocated slice 10.220.2.32(i+1)/27
//                (fd00:220:2::i+1:0/112). The VNet is a router like Azure's SDN: it answers every
//                ARP with 12:34:56:78:9a:bc (proxy ARP), routes each node's address and slice to it,
//                and takes a node's frames only with its NIC's MAC (00:0d:3a:…, Azure's OUI).
//   bridge       Azure CNI bridge mode: each node's eth0 is the uplink of its azure0; pods from the
//                node's slice, on-link in the VNet's subnet. The same routed VNet: it answers ARP for
//                every address it routes elsewhere, and neighbour solicitations for the nodes' and
//                pods' IPv6 addresses it knows (a proxy entry per address, as Azure programs each).
//   kubenet      10.244.i.0/24 (fd00:244:i::/64) per node on cbr0; the VNet's route table sends each
//                node's pod CIDR to that node; ipMasq for traffic leaving the cluster.
//   overlay      Azure CNI Overlay: transparent mode with kubenet's per-node pod CIDRs and masquerade.
// Each node gets its conflist and binary from `vnet install` (src/cli/install.ts), run in the node.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, type Attachment, type Conflist } from './chain.js';
import { canonicalIp } from '../../src/net/address.js';
import { inNs, ipJson, nsPath, sh, trySh } from './sys.js';

export const LAYOUTS = ['transparent', 'bridge', 'kubenet', 'overlay'] as const;
export type Layout = (typeof LAYOUTS)[number];

export interface Spec {
  layout: Layout;
  nodes: number;
  pods: number;
  dualStack: boolean;
  /** Every namespace is named `<prefix>-…`. */
  prefix: string;
  /** The lab's files: per node its conflist, IPAM data, log and result cache. */
  dir: string;
  /** The built vnet (each node gets its own by `vnet install`), and the reference plugins (portmap, bandwidth). */
  binDir: string;
  refDir: string;
  /** Plugins chained after vnet instead of the conflist's own (e.g. bandwidth). */
  chain?: ({ type: string } & Record<string, unknown>)[];
  /**
   * A conflist to run instead of the one `vnet install` writes (conf/seeds/): as written but for
   * what differs per node or must stay in the lab (vnet's IPAM ranges and dataDir, its logFile).
   */
  seed?: Conflist;
}

export interface Pod {
  name: string;
  node: number;
  netns: string;
  containerId: string;
  ips: string[];
  /** What the runtime offers plugins with capabilities (port mappings, bandwidth), on every verb. */
  runtimeConfig?: Record<string, unknown>;
}

export interface State {
  spec: Spec;
  pods: Pod[];
}

export const VNET_GW = { 4: '10.220.2.1', 6: 'fd00:220:2::1' } as const;
export const OUTSIDE = { 4: '203.0.113.10', 6: '2001:db8:113::10' } as const;
const OUTSIDE_GW = { 4: '203.0.113.1', 6: '2001:db8:113::1' } as const;
/** The MAC Azure's fabric answers every ARP with (seed 004's `arp -a`). */
export const SDN_MAC = '12:34:56:78:9a:bc';
export const MAX_NODES = 6;

export const nodeIp = (i: number, f: 4 | 6) => (f === 4 ? `10.220.2.${4 + i}` : `fd00:220:2::${(4 + i).toString(16)}`);
const hex = (n: number) => n.toString(16);

/** What node i's pods get, and what the VNet routes to node i besides its own address. */
export function nodeAddressing(layout: Layout, i: number, dualStack: boolean) {
  const azure = layout === 'transparent' || layout === 'bridge';
  const v4 = azure
    ? { subnet: '10.220.2.0/24', rangeStart: `10.220.2.${32 * (i + 1)}`, rangeEnd: `10.220.2.${32 * (i + 1) + 31}`, gateway: VNET_GW[4] }
    : { subnet: `10.244.${i}.0/24`, gateway: `10.244.${i}.1` };
  const v6 = azure
    ? { subnet: 'fd00:220:2::/64', rangeStart: `fd00:220:2::${hex(i + 1)}:0`, rangeEnd: `fd00:220:2::${hex(i + 1)}:ffff`, gateway: VNET_GW[6] }
    : { subnet: `fd00:244:${hex(i)}::/64`, gateway: `fd00:244:${hex(i)}::1` };
  // The VNet's routes to this node's pods: its slice of the VNet (Azure) or its pod CIDR.
  const routed = azure ? [`10.220.2.${32 * (i + 1)}/27`, `fd00:220:2::${hex(i + 1)}:0/112`] : [v4.subnet, v6.subnet];
  return {
    ranges: dualStack ? [[v4], [v6]] : [[v4]],
    vnetRoutes: routed.filter((r) => dualStack || !r.includes(':')),
  };
}

/**
 * The `vnet install` arguments for node i: its slice of the VNet (transparent, bridge) or its pod
 * CIDR (kubenet, overlay), what stays unmasqueraded, and the lab's paths for everything it writes.
 */
export function installArgs(spec: Spec, i: number): string[] {
  const a = nodeAddressing(spec.layout, i, spec.dualStack);
  const dir = join(spec.dir, `node${i}`);
  const perNode = spec.layout === 'kubenet' || spec.layout === 'overlay';
  return [
    'install', '--layout', spec.layout,
    ...a.ranges.flat().flatMap((r: any) => (perNode ? ['--pod-cidr', r.subnet] : ['--range', [r.subnet, r.rangeStart, r.rangeEnd, r.gateway].join(',')])),
    // Inside the cluster (pods, the VNet) addresses are kept; only what leaves it is masqueraded.
    ...(perNode ? ['10.244.0.0/16', '10.220.0.0/16', ...(spec.dualStack ? ['fd00:244::/32', 'fd00:220::/32'] : [])].flatMap((c) => ['--no-masq', c]) : []),
    // Node-local DNS through the node, as the AKS conflists in conf/ have it.
    ...(perNode ? [] : ['--route-via-host', '169.254.20.10']),
    '--bin-dir', join(dir, 'bin'), '--conf-dir', join(dir, 'net.d'), '--data-dir', join(dir, 'ipam'), '--log-file', join(dir, 'vnet.log'),
    // The build does not change in place (it renames a new file over), so a link spares 100 MiB per node.
    '--hard-link',
  ];
}

export class Cluster {
  readonly spec: Spec;
  pods: Pod[];

  constructor(state: State) {
    this.spec = state.spec;
    this.pods = state.pods;
  }

  get vnet() {
    return `${this.spec.prefix}-vnet`;
  }
  get outside() {
    return `${this.spec.prefix}-outside`;
  }
  node(i: number) {
    return `${this.spec.prefix}-node${i}`;
  }
  get families(): (4 | 6)[] {
    return this.spec.dualStack ? [4, 6] : [4];
  }
  runtime(i: number) {
    return new Runtime(this.node(i), [join(this.spec.dir, `node${i}`, 'bin'), this.spec.refDir], join(this.spec.dir, `node${i}`, 'results'));
  }
  /** Node i's conflist as `vnet install` wrote it (with the spec's chain, if it names one). */
  conflist(i: number): Conflist {
    const list = JSON.parse(readFileSync(this.conflistFile(i), 'utf8')) as Conflist;
    if (this.spec.chain) list.plugins = [list.plugins[0]!, ...this.spec.chain];
    return list;
  }
  /** Where `vnet install` wrote node i's conflist: its /etc/cni/net.d. */
  conflistFile(i: number) {
    return join(this.spec.dir, `node${i}`, 'net.d', '10-vnet.conflist');
  }
  private stateFile = () => join(this.spec.dir, 'state.json');
  save() {
    writeFileSync(this.stateFile(), JSON.stringify({ spec: this.spec, pods: this.pods }, null, 2));
  }
  static load(dir: string): Cluster | undefined {
    const f = join(dir, 'state.json');
    return existsSync(f) ? new Cluster(JSON.parse(readFileSync(f, 'utf8')) as State) : undefined;
  }
  /** Every namespace the lab made. */
  namespaces(): string[] {
    return [this.vnet, this.outside, ...Array.from({ length: this.spec.nodes }, (_, i) => this.node(i)), ...this.pods.map((p) => p.netns)];
  }

  /** The VNet, the outside world and the nodes, with no pods yet. */
  static create(spec: Spec): Cluster {
    if (spec.nodes < 1 || spec.nodes > MAX_NODES) throw new Error(`--nodes must be 1 to ${MAX_NODES}`);
    mkdirSync(spec.dir, { recursive: true });
    const c = new Cluster({ spec, pods: [] });
    c.save();
    try {
      c.build();
    } catch (err) {
      c.destroy();
      throw err;
    }
    return c;
  }

  private newNs(name: string) {
    sh(['ip', 'netns', 'add', name]);
    inNs(name, ['ip', 'link', 'set', 'lo', 'up']);
  }

  /** Turns DAD off on a new link before it comes up: a lab link plays one that has been up for long. */
  private noDad(ns: string, dev: string) {
    inNs(ns, ['sysctl', '-qw', `net.ipv6.conf.${dev}.accept_dad=0`]);
  }

  private build() {
    const { layout, dualStack } = this.spec;
    const v = this.vnet;
    this.newNs(v);
    this.newNs(this.outside);
    inNs(v, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    inNs(v, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
    // The outside world, beyond the VNet's edge.
    inNs(v, ['ip', 'link', 'add', 'out0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsPath(this.outside)]);
    this.noDad(v, 'out0');
    this.noDad(this.outside, 'eth0');
    inNs(v, ['ip', 'addr', 'add', `${OUTSIDE_GW[4]}/24`, 'dev', 'out0']);
    inNs(this.outside, ['ip', 'addr', 'add', `${OUTSIDE[4]}/24`, 'dev', 'eth0']);
    if (dualStack) {
      inNs(v, ['ip', 'addr', 'add', `${OUTSIDE_GW[6]}/64`, 'dev', 'out0', 'nodad']);
      inNs(this.outside, ['ip', 'addr', 'add', `${OUTSIDE[6]}/64`, 'dev', 'eth0', 'nodad']);
    }
    inNs(v, ['ip', 'link', 'set', 'out0', 'up']);
    inNs(this.outside, ['ip', 'link', 'set', 'eth0', 'up']);
    inNs(this.outside, ['ip', 'route', 'add', 'default', 'via', OUTSIDE_GW[4]]);
    if (dualStack) inNs(this.outside, ['ip', '-6', 'route', 'add', 'default', 'via', OUTSIDE_GW[6], 'dev', 'eth0']);

    // Azure's bridge layout keeps the subnet on-link (the move takes the prefix route to azure0);
    // the routed layouts reach the VNet through its gateway. IPv6 has no proxy neighbour discovery
    // for a prefix: the VNet answers for the on-link addresses it knows, one proxy entry each.
    const onLink = layout === 'bridge';
    if (onLink && dualStack) inNs(v, ['sysctl', '-qw', 'net.ipv6.conf.all.proxy_ndp=1']);
    for (let i = 0; i < this.spec.nodes; i++) {
      const n = this.node(i);
      const port = `n${i}`;
      this.newNs(n);
      mkdirSync(join(this.spec.dir, `node${i}`), { recursive: true });
      // The node-side installer, as on a real node: the binary into its bin dir, its conflist.
      inNs(n, [join(this.spec.binDir, 'vnet'), ...installArgs(this.spec, i)]);
      if (this.spec.seed) writeFileSync(this.conflistFile(i), JSON.stringify(seededConflist(this.spec, i), null, 2));
      inNs(v, ['ip', 'link', 'add', port, 'address', SDN_MAC, 'type', 'veth', 'peer', 'name', 'eth0', 'address', nicMac(i), 'netns', nsPath(n)]);
      this.noDad(v, port);
      this.noDad(n, 'eth0');
      inNs(n, ['ip', 'addr', 'add', `${nodeIp(i, 4)}/24`, 'dev', 'eth0']);
      if (dualStack) inNs(n, ['ip', 'addr', 'add', `${nodeIp(i, 6)}/64`, 'dev', 'eth0', 'nodad', ...(onLink ? [] : ['noprefixroute'])]);
      inNs(n, ['ip', 'link', 'set', 'eth0', 'up']);
      this.attachPort(port);
      // As Azure's fabric: from a VM it takes only frames with the NIC's MAC (vnet's bridge mode
      // rewrites its pods' to it: src/net/nft.ts), and it answers no ARP request for the VM's own
      // address (Azure CNI's bridge_networkclient_linux.go says so). Without the rewrite the
      // matrix fails here.
      inNs(v, ['nft', '-f', '-'], `table netdev fabric {\n  chain ${port} {\n    type filter hook ingress device "${port}" priority 0; policy accept;\n    ether saddr != ${nicMac(i)} counter drop\n    arp operation request arp daddr ip ${nodeIp(i, 4)} drop\n  }\n}\n`);
      inNs(v, ['ip', 'route', 'add', `${nodeIp(i, 4)}/32`, 'dev', port]);
      if (dualStack) {
        inNs(v, ['ip', '-6', 'route', 'add', `${nodeIp(i, 6)}/128`, 'dev', port]);
        if (!onLink) inNs(n, ['ip', '-6', 'route', 'add', VNET_GW[6], 'dev', 'eth0']);
      }
      for (const dst of nodeAddressing(layout, i, dualStack).vnetRoutes) {
        inNs(v, ['ip', ...(dst.includes(':') ? ['-6'] : []), 'route', 'add', dst, 'via', nodeIp(i, dst.includes(':') ? 6 : 4), 'dev', port]);
      }
      // An AKS node's IPv4 routes as `ip route` shows them there, made by its DHCP client:
      // the default, the gateway, Azure's wireserver and its metadata service, each with the
      // node's address as source and metric 100. Azure's layout moves them onto the bridge.
      const dhcp = ['dev', 'eth0', 'proto', 'dhcp', 'src', nodeIp(i, 4), 'metric', '100'];
      inNs(n, ['ip', 'route', 'add', VNET_GW[4], ...dhcp]);
      for (const dst of ['default', '168.63.129.16', '169.254.169.254']) inNs(n, ['ip', 'route', 'add', dst, 'via', VNET_GW[4], ...dhcp]);
      if (dualStack) inNs(n, ['ip', '-6', 'route', 'add', 'default', 'via', VNET_GW[6], 'dev', 'eth0']);
    }
    if (onLink && dualStack) for (let i = 0; i < this.spec.nodes; i++) this.fabricKnows(i, [nodeIp(i, 6)]);
  }

  /**
   * A port of the VNet's router, as Azure's SDN: the gateway's addresses on it, and an ARP reply
   * for every address it routes, back out this port too (`proxy_arp_pvlan`: a pod asking for
   * another pod of its node gets the fabric's answer as well), at once (a proxy reply is
   * otherwise delayed up to 0.8 s).
   */
  attachPort(port: string) {
    const v = this.vnet;
    inNs(v, ['ip', 'addr', 'add', `${VNET_GW[4]}/24`, 'dev', port, 'noprefixroute']);
    if (this.spec.dualStack) inNs(v, ['ip', 'addr', 'add', `${VNET_GW[6]}/64`, 'dev', port, 'nodad', 'noprefixroute']);
    inNs(v, ['sysctl', '-qw', `net.ipv4.conf.${port}.proxy_arp=1`, `net.ipv4.conf.${port}.proxy_arp_pvlan=1`, `net.ipv4.neigh.${port}.proxy_delay=0`]);
    if (this.spec.dualStack) inNs(v, ['sysctl', '-qw', `net.ipv6.neigh.${port}.proxy_delay=0`]);
    inNs(v, ['ip', 'link', 'set', port, 'up']);
  }

  /**
   * The bridge layout's IPv6: the VNet answers neighbour solicitations for these addresses of node
   * i on every other node's port (or no longer, `known` false). Whoever adds a pod other than by
   * addPod (a CRI runtime) tells the fabric so; an address known already is fine.
   */
  fabricKnows(i: number, addrs: string[], known = true) {
    if (this.spec.layout !== 'bridge') return;
    for (const addr of addrs.filter((a) => a.includes(':'))) {
      for (let j = 0; j < this.spec.nodes; j++) {
        if (j !== i) inNs(this.vnet, ['ip', '-6', 'neigh', known ? 'replace' : 'del', 'proxy', addr, 'dev', `n${j}`]);
      }
    }
  }

  /** ADD a pod on node i through the node's whole conflist, as a runtime does. */
  async addPod(i: number, name = `n${i}p${this.pods.filter((p) => p.node === i).length}`, runtimeConfig?: Record<string, unknown>): Promise<Pod> {
    const netns = `${this.spec.prefix}-${name}`;
    this.newNs(netns);
    const pod: Pod = { name, node: i, netns, containerId: `${this.spec.prefix}-${name}`, ips: [], runtimeConfig };
    this.pods.push(pod);
    this.save();
    const result = await this.runtime(i).add(this.conflist(i), this.attachment(pod));
    pod.ips = (result.ips as { address: string }[]).map((x) => x.address.split('/')[0]!);
    this.save();
    this.fabricKnows(i, pod.ips);
    return pod;
  }

  attachment(p: Pod): Attachment {
    return { containerId: p.containerId, netns: p.netns, ifname: 'eth0', runtimeConfig: p.runtimeConfig };
  }

  async delPod(p: Pod): Promise<void> {
    await this.runtime(p.node).del(this.conflist(p.node), this.attachment(p));
    this.fabricKnows(p.node, p.ips, false);
    trySh(['ip', 'netns', 'del', p.netns]);
    this.pods = this.pods.filter((x) => x !== p);
    this.save();
  }

  async checkPod(p: Pod): Promise<void> {
    await this.runtime(p.node).check(this.conflist(p.node), this.attachment(p));
  }

  /** `spec.pods` pods on every node, added node by node, pods of a node at once. */
  async populate(): Promise<void> {
    for (let i = 0; i < this.spec.nodes; i++) {
      const names = Array.from({ length: this.spec.pods }, (_, j) => `n${i}p${j}`);
      await Promise.all(names.map((n) => this.addPod(i, n)));
    }
  }

  /** Removes every namespace and file of the lab, by name; what was already gone is fine. */
  destroy(): void {
    for (const ns of this.namespaces()) if (existsSync(nsPath(ns))) trySh(['ip', 'netns', 'del', ns]);
    // Pods added while a call failed half-way are not in the state yet: sweep the prefix too.
    for (const ns of readdirSync('/var/run/netns').filter((n) => n.startsWith(`${this.spec.prefix}-`))) trySh(['ip', 'netns', 'del', ns]);
    rmSync(this.spec.dir, { recursive: true, force: true });
  }

  podAddr(p: Pod, f: 4 | 6): string {
    const ip = p.ips.find((x) => x.includes(':') === (f === 6));
    if (!ip) throw new Error(`pod ${p.name} has no IPv${f} address`);
    return ip;
  }

  /** The source address a packet from pod p to the outside world arrives with: its node's under masquerade. */
  expectedOutsideSource(p: Pod, f: 4 | 6): string {
    const masq = (this.conflist(p.node).plugins.find((x) => x.type === 'vnet') as { ipMasq?: boolean } | undefined)?.ipMasq === true;
    return masq ? nodeIp(p.node, f) : this.podAddr(p, f);
  }
}

/**
 * A seed conflist for node i: vnet's IPAM ranges (its IPAM type and routes kept) and the lab's
 * paths. The ranges are the lab's for node i, or those given (a Kubernetes node's spec.podCIDRs).
 */
export function seededConflist(spec: Spec, i: number, ranges: unknown[][] = nodeAddressing(spec.layout, i, spec.dualStack).ranges): Conflist {
  const list = structuredClone(spec.seed!);
  const vnet = list.plugins.find((p) => p.type === 'vnet') as Record<string, any> | undefined;
  if (!vnet) throw new Error('the seed conflist has no plugin of type vnet');
  const dir = join(spec.dir, `node${i}`);
  vnet.ipam = { ...vnet.ipam, ranges, dataDir: join(dir, 'ipam') };
  delete vnet.ipam.subnet;
  vnet.logFile = join(dir, 'vnet.log');
  return list;
}

/** Node i's NIC MAC: Azure's own OUI (00:0d:3a), as an Azure VM's NIC has. */
export const nicMac = (i: number) => `00:0d:3a:00:02:${(i + 4).toString(16).padStart(2, '0')}`;

/** Reads what the plugin left for pods on node i, per kind: all must be empty when no pod is left. */
export function podLeftovers(c: Cluster, i: number): Record<string, string[]> {
  const n = c.node(i);
  const links = ipJson(n, ['link', 'show']);
  const azv = links.filter((l) => l.ifname.startsWith('azv')).map((l) => l.ifname);
  const routes = [...ipJson(n, ['route', 'show', 'table', 'all']), ...ipJson(n, ['-6', 'route', 'show', 'table', 'all'])]
    .filter((r) => r.dev?.startsWith('azv') && r.dst !== 'fe80::/64' && r.type !== 'multicast')
    .map((r) => `${r.dst} dev ${r.dev}`);
  const neighs = ipJson(n, ['neigh', 'show', 'nud', 'permanent']).map((x) => `${x.dst} dev ${x.dev}`);
  let masq: string[] = [];
  const t = trySh(['nsenter', `--net=${nsPath(n)}`, 'nft', '-j', 'list', 'table', 'inet', 'vnet']);
  if (t.ok) {
    masq = JSON.parse(t.out).nftables.filter((x: any) => x.set?.name?.startsWith('pods')).flatMap((x: any) => (x.set.elem ?? []).map((e: any) => JSON.stringify(e)));
  }
  // Azure's layout: the MAC DNAT rules (src/net/nft.ts), one map element per pod address.
  let l2: string[] = [];
  const b = trySh(['nsenter', `--net=${nsPath(n)}`, 'nft', '-j', 'list', 'table', 'bridge', 'vnet']);
  if (b.ok) {
    l2 = JSON.parse(b.out).nftables.filter((x: any) => x.map?.name?.startsWith('podmac')).flatMap((x: any) => (x.map.elem ?? []).map((e: any) => JSON.stringify(e)));
  }
  const ipamDir = join(c.spec.dir, `node${i}`, 'ipam', c.conflist(i).name);
  const list = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  // Address files, index entries, temps and a lock left held: all go with the last pod (the boot stamp stays).
  const files = list(ipamDir).filter((f) => !['lock', '.tmp', '.by-container', '.boot'].includes(f) && !f.startsWith('last_reserved_ip'));
  const index = list(join(ipamDir, '.by-container'));
  const temps = list(join(ipamDir, '.tmp'));
  const results = join(c.spec.dir, `node${i}`, 'results');
  const cached = existsSync(results) ? readdirSync(results) : [];
  return { links: azv, routes, neighbours: neighs, masquerade: masq, macDnat: l2, allocations: files, index, temps, cached };
}

/**
 * Node i as it looks without pods, whichever device holds what: its links, global addresses and
 * main-table routes (by destination and gateway, not device: Azure's layout moves the uplink's onto
 * the bridge for good). What stays by design is left out: the bridge, and under kubenet its
 * gateway addresses and the subnet routes the kernel derives from them.
 */
export function nodeShape(c: Cluster, i: number): { links: string[]; addrs: string[]; routes: string[] } {
  const n = c.node(i);
  const vnet = c.conflist(i).plugins[0] as unknown as { mode?: string; bridge?: string; isGateway?: boolean; ipam: { ranges: { gateway?: string }[][] } };
  const bridge = vnet.mode === 'bridge' ? (vnet.bridge ?? 'azure0') : undefined;
  const gateways = vnet.isGateway ? vnet.ipam.ranges.flat().map((r) => canonicalIp(r.gateway ?? '')) : [];
  const rows = ipJson(n, ['addr', 'show']);
  const addrs = rows.flatMap((l) =>
    (l.addr_info ?? []).filter((a: any) => a.scope === 'global' && !gateways.includes(a.local)).map((a: any) => `${a.local}/${a.prefixlen}`),
  );
  const routes = [...ipJson(n, ['route', 'show']), ...ipJson(n, ['-6', 'route', 'show'])]
    .filter((r) => !String(r.dst).startsWith('fe80:') && !(r.dev === bridge && r.protocol === 'kernel' && gateways.length))
    .map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}`);
  return { links: rows.map((l) => l.ifname).filter((x) => x !== bridge).sort(), addrs: addrs.sort(), routes: routes.sort() };
}

/** The log lines of the first ADD in a node's log: that process's lines only (ADDs run at once). */
export function firstAddLog(c: Cluster, node: number): string[] {
  const lines = readFileSync((c.conflist(node).plugins[0] as unknown as { logFile: string }).logFile, 'utf8').split('\n');
  const first = lines.find((l) => l.includes('Processing ADD'));
  const pid = first && /\[(\d+)\]/.exec(first)?.[1];
  const mine = lines.filter((l) => pid && l.includes(`[${pid}]`));
  const done = mine.findIndex((l) => l.includes('ADD done'));
  return mine.slice(0, done + 1);
}
