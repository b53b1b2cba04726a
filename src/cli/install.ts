// `vnet install`: the node-side installer the lab, containerd nodes, kind nodes and Vagrant VMs
// share. It puts this very executable into the CNI bin dir under both names, writes this node's
// conflist from parameters (the layout, the node's pod CIDR or its slice of the VNet subnet), and
// installs the routes to the other nodes' pod ranges that a network without Azure's fabric needs
// (what Azure's route table does for kubenet). Ranges that would overlap are refused before
// anything is written.
import { closeSync, constants, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, symlinkSync, writeSync, copyFileSync, chmodSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatValue, hostMask, networkOf, parseCidr, parseIp, type Family } from '../net/address.js';
import { ipJson, ipRun, mainRoutes, ROUTES, type RouteRow } from '../net/ip.js';
import { toAddr, toDst, type Addr, type Cidr } from '../net/values.js';
import { parseNetConf } from '../config/netconf.js';
import { parseIpamConfig } from '../ipam/config.js';
import { UsageError } from './conf.js';
import { isExecutable, runProcess } from '../proc.js';
import { crashPoint } from '../crash.js';

export const LAYOUTS = ['transparent', 'bridge', 'kubenet', 'overlay'] as const;
export type Layout = (typeof LAYOUTS)[number];

interface NodeParams {
  layout: Layout;
  network?: string;
  /** kubenet, overlay: this node's pod CIDR, one per family; the gateway is its first address. */
  podCidrs: string[];
  /** transparent, bridge: this node's slice of the VNet subnet, one per family. */
  ranges: { subnet: string; rangeStart: string; rangeEnd: string; gateway: string }[];
  /** kubenet, overlay: what is not masqueraded (the cluster's pod CIDR, the VNet). */
  noMasq: string[];
  bridge?: string;
  uplink?: string;
  mtu?: number;
  dataDir?: string;
  logFile?: string;
  /** Chain the reference portmap, as the AKS conflists do. */
  portmap: boolean;
  /** Extra host routes the pods get via the node (node-local DNS). */
  ipsToRouteViaHost: string[];
}

const NAMES: Record<Layout, string> = { transparent: 'azure', bridge: 'azure', kubenet: 'kubenet', overlay: 'azure-overlay' };

/** This node's conflist: what conf/ shows, with this node's ranges. */
function nodeConflist(p: NodeParams): Record<string, unknown> {
  const ranges = p.layout === 'kubenet' || p.layout === 'overlay'
    ? p.podCidrs.map((c) => {
        const cidr = parseCidr(c)!;
        return [{ subnet: c, gateway: formatValue(cidr.ip.family, networkOf(cidr) + 1n) }];
      })
    : p.ranges.map((r) => [r]);
  const families = ranges.map((r) => (r[0]!.subnet.includes(':') ? '::/0' : '0.0.0.0/0'));
  const vnet: Record<string, unknown> = {
    type: 'vnet',
    mode: p.layout === 'bridge' || p.layout === 'kubenet' ? 'bridge' : 'transparent',
    ...(p.layout === 'kubenet' ? { bridge: p.bridge ?? 'cbr0', isGateway: true, hairpinMode: true } : {}),
    // Azure's bridge mode turns hairpin on for the pods' ports: a pod reaching itself through a
    // Service (kube-proxy's DNAT on the bridge) goes back out the port it came in.
    ...(p.layout === 'bridge' ? { bridge: p.bridge ?? 'azure0', uplink: p.uplink ?? 'eth0', hairpinMode: true } : {}),
    ...(p.layout === 'kubenet' || p.layout === 'overlay' ? { ipMasq: true, ipMasqExclude: p.noMasq } : {}),
    ...(p.mtu ? { mtu: p.mtu } : {}),
    ...(p.ipsToRouteViaHost.length ? { ipsToRouteViaHost: p.ipsToRouteViaHost } : {}),
    logFile: p.logFile ?? '/var/log/vnet.log',
    // The runtime's `ips` (a pod asking for its address: runtimeConfig.ips, honoured by vnet-ipam).
    capabilities: { ips: true, mac: true },
    ipam: { type: 'vnet-ipam', ranges, routes: families.map((dst) => ({ dst })), ...(p.dataDir ? { dataDir: p.dataDir } : {}) },
  };
  return {
    cniVersion: '1.0.0',
    name: p.network ?? NAMES[p.layout],
    plugins: [vnet, ...(p.portmap ? [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }] : [])],
  };
}

type Interval = { family: Family; lo: bigint; hi: bigint; text: string };
const intervalOf = (c: string): Interval => {
  const p = parseCidr(c)!;
  const lo = networkOf(p);
  return { family: p.ip.family, lo, hi: lo | hostMask(p.ip.family, p.prefix), text: c };
};
const overlaps = (a: Interval, b: Interval) => a.family === b.family && a.lo <= b.hi && b.lo <= a.hi;

/** The routes to other nodes' pod ranges, checked: none overlaps this node's or another's. */
function peerRoutes(peers: string[], mine: Interval[]): { dst: Cidr; via: Addr }[] {
  const parsed = peers.map((s) => {
    const [dst, via, ...rest] = s.split('=');
    const d = dst === undefined ? undefined : toDst(dst);
    const v = via === undefined ? undefined : toAddr(via);
    if (!d || !v || rest.length || d.family !== v.family) throw new UsageError(`--peer ${JSON.stringify(s)}: expected CIDR=NODE_IP of one family, e.g. 10.244.1.0/24=10.220.2.5`);
    return { dst: d, via: v };
  });
  const seen: Interval[] = [...mine];
  for (const p of parsed) {
    const iv = intervalOf(p.dst.text);
    const clash = seen.find((o) => overlaps(o, iv));
    if (clash) throw new UsageError(`--peer ${p.dst.text} overlaps ${clash.text}: per-node ranges must never overlap`);
    seen.push(iv);
  }
  return parsed;
}

/** This node's own addresses, the networks it is connected to (routes with no gateway), and every route's destination. */
async function nodeNetworks(): Promise<{ addrs: string[]; connected: (Interval & { dev?: string })[]; routes: string[] }> {
  const [links = [], rows = []] = await ipJson(['addr show', ROUTES]);
  const addrs = (links as { addr_info?: { local?: string }[] }[]).flatMap((l) => (l.addr_info ?? []).flatMap((a) => (a.local ? [a.local] : [])));
  const main = mainRoutes(rows as RouteRow[]);
  const connected = main.filter((r) => !r.gw && r.dst.prefix > 0 && r.dev !== 'lo').map((r) => ({ ...intervalOf(r.dst.text), dev: r.dev }));
  return { addrs, connected, routes: main.map((r) => r.dst.text) };
}

/**
 * A peer route must not replace or cover a network this node is on (the same prefix, or a wider
 * one holding it), and must go via a neighbour on one. A narrower one inside it is what the
 * transparent layout needs without Azure's fabric: another node's slice of the VNet subnet.
 */
function checkPeersAgainstNode(routes: { dst: Cidr; via: Addr }[], node: Awaited<ReturnType<typeof nodeNetworks>>): void {
  for (const r of routes) {
    const iv = intervalOf(r.dst.text);
    const clash = node.connected.find((c) => c.family === iv.family && iv.lo <= c.lo && c.hi <= iv.hi);
    if (clash) throw new UsageError(`--peer ${r.dst.text}: holds ${clash.text}, a network this node is connected to${clash.dev ? ` (dev ${clash.dev})` : ''}: the route would replace or cover it`);
    if (node.addrs.includes(r.via.ip)) throw new UsageError(`--peer ${r.dst.text}=${r.via.ip}: ${r.via.ip} is this node's own address, not another node's`);
    const via = intervalOf(`${r.via.ip}/${r.via.family === 4 ? 32 : 128}`);
    if (!node.connected.some((c) => overlaps(c, via))) throw new UsageError(`--peer ${r.dst.text}=${r.via.ip}: ${r.via.ip} is on no network this node is connected to`);
  }
}

/** Writes a file by temp + rename, so a runtime never reads half of it. */
function writeAtomic(path: string, text: string, mode: number) {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/**
 * This executable into dir as vnet and vnet-ipam: a copy (a hard link with `link`, which a
 * source overwritten in place later, as scp does, would change under the runtime), run once on
 * this node as a runtime would (VERSION), then renamed into place. A copy that does not answer
 * (a noexec mount, a full disk) is removed and refused before anything else is written.
 */
async function installBinary(dir: string, link: boolean): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.vnet.${process.pid}.new`);
  rmSync(tmp, { force: true });
  try {
    if (!link) throw new Error('copy');
    linkSync(process.execPath, tmp);
  } catch {
    copyFileSync(process.execPath, tmp);
    chmodSync(tmp, 0o755);
  }
  const problem = await runsHere(tmp);
  if (problem) {
    rmSync(tmp, { force: true });
    throw new UsageError(`the copy in ${dir} does not run on this node (${problem}); nothing installed`);
  }
  renameSync(tmp, join(dir, 'vnet'));
  const tmp2 = join(dir, `.vnet-ipam.${process.pid}.new`);
  rmSync(tmp2, { force: true });
  linkSync(join(dir, 'vnet'), tmp2);
  renameSync(tmp2, join(dir, 'vnet-ipam'));
}

/**
 * The plugins the conflist chains besides vnet (portmap), which a runtime looks for in the bin dir
 * only: those missing there, each with where it will be linked from. Debian's
 * containernetworking-plugins keeps them in /usr/lib/cni (Fedora's in /usr/libexec/cni), where no
 * runtime looks by default. One found in neither directory is refused before anything is written.
 */
function chainedToLink(list: Record<string, unknown>, binDir: string, pluginsDir: string): { name: string; from: string }[] {
  const types = (list.plugins as { type: string }[]).map((p) => p.type).filter((t) => t !== 'vnet');
  return types.flatMap((name) => {
    if (lstatSync(join(binDir, name), { throwIfNoEntry: false })) return [];
    const from = join(pluginsDir, name);
    if (!isExecutable(from)) {
      throw new UsageError(`the conflist chains ${name}, which is neither in ${binDir} nor in ${pluginsDir}: apt-get install containernetworking-plugins (or --plugins-dir where ${name} is), or --no-portmap; nothing installed`);
    }
    return [{ name, from }];
  });
}

/** Why the executable at path gives no VERSION answer here, or nothing if it does. */
async function runsHere(path: string): Promise<string | undefined> {
  let r;
  try {
    r = await runProcess([path], '{"cniVersion":"1.0.0"}', { env: { CNI_COMMAND: 'VERSION' } });
  } catch (err) {
    return (err as Error).message;
  }
  if (r.code === 0 && r.stdout.includes('"supportedVersions"')) return undefined;
  return `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0] ?? ''}`.slice(0, 300);
}

export async function install(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      layout: { type: 'string' },
      network: { type: 'string' },
      'pod-cidr': { type: 'string', multiple: true },
      range: { type: 'string', multiple: true },
      'no-masq': { type: 'string', multiple: true },
      peer: { type: 'string', multiple: true },
      bridge: { type: 'string' },
      uplink: { type: 'string' },
      mtu: { type: 'string' },
      'data-dir': { type: 'string' },
      'log-file': { type: 'string' },
      'bin-dir': { type: 'string', default: '/opt/cni/bin' },
      'plugins-dir': { type: 'string', default: '/usr/lib/cni' },
      'conf-dir': { type: 'string', default: '/etc/cni/net.d' },
      'route-via-host': { type: 'string', multiple: true },
      'no-portmap': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'hard-link': { type: 'boolean', default: false },
    },
  });
  const layout = values.layout as Layout;
  if (!LAYOUTS.includes(layout)) throw new UsageError(`--layout must be one of ${LAYOUTS.join(', ')} (got ${JSON.stringify(values.layout ?? null)})`);
  const perNodeCidr = layout === 'kubenet' || layout === 'overlay';
  const podCidrs = values['pod-cidr'] ?? [];
  const rangeArgs = values.range ?? [];
  if (perNodeCidr && (!podCidrs.length || rangeArgs.length)) throw new UsageError(`--layout ${layout} takes this node's --pod-cidr (one per family), not --range`);
  if (!perNodeCidr && (!rangeArgs.length || podCidrs.length)) throw new UsageError(`--layout ${layout} takes this node's --range SUBNET,START,END,GATEWAY (one per family), not --pod-cidr`);
  for (const c of podCidrs) if (!toDst(c)) throw new UsageError(`--pod-cidr ${JSON.stringify(c)}: expected a network CIDR such as 10.244.0.0/24`);
  const ranges = rangeArgs.map((r) => {
    const [subnet, rangeStart, rangeEnd, gateway, ...rest] = r.split(',');
    if (!subnet || !rangeStart || !rangeEnd || !gateway || rest.length) throw new UsageError(`--range ${JSON.stringify(r)}: expected SUBNET,START,END,GATEWAY`);
    return { subnet, rangeStart, rangeEnd, gateway };
  });
  if (values.mtu !== undefined && !(/^\d{2,5}$/.test(values.mtu) && Number(values.mtu) >= 68 && Number(values.mtu) <= 65535)) {
    throw new UsageError(`--mtu ${JSON.stringify(values.mtu)}: expected a whole number from 68 to 65535`);
  }
  const mtu = values.mtu === undefined ? undefined : Number(values.mtu);
  const params: NodeParams = {
    layout,
    network: values.network,
    podCidrs,
    ranges,
    noMasq: values['no-masq'] ?? [],
    bridge: values.bridge,
    uplink: values.uplink,
    mtu,
    dataDir: values['data-dir'],
    logFile: values['log-file'],
    portmap: !values['no-portmap'],
    ipsToRouteViaHost: values['route-via-host'] ?? [],
  };
  if (perNodeCidr && !params.noMasq.length) throw new UsageError(`--layout ${layout} masquerades what leaves the cluster: give --no-masq for the cluster's pod CIDR and the nodes' network`);
  const list = nodeConflist(params);
  // The plugin's own parsers, as ADD and vnet-ipam will run them: a bad parameter is refused here.
  const plugin = { ...(list.plugins as Record<string, unknown>[])[0], name: list.name, cniVersion: list.cniVersion };
  try {
    parseNetConf(JSON.stringify(plugin), 'ADD');
    parseIpamConfig(plugin);
  } catch (err) {
    throw new UsageError(`the conflist these parameters make is not valid: ${(err as Error).message}`);
  }
  const families = new Set<Family>();
  for (const r of [...podCidrs, ...ranges.map((x) => x.subnet)]) {
    const f = parseCidr(r)!.ip.family;
    if (families.has(f)) throw new UsageError(`one pod range per family: two IPv${f} ones given`);
    families.add(f);
  }
  // This node's own pod addresses, for the overlap check: its CIDR, or its slice of the subnet.
  const mine: Interval[] = perNodeCidr
    ? podCidrs.map(intervalOf)
    : ranges.map((r) => ({ family: parseIp(r.rangeStart)!.family, lo: parseIp(r.rangeStart)!.value, hi: parseIp(r.rangeEnd)!.value, text: `${r.rangeStart}-${r.rangeEnd}` }));
  const routes = peerRoutes(values.peer ?? [], mine);
  // Read once: the peer checks and, after a failure, which routes this run added.
  const node = routes.length ? await nodeNetworks() : undefined;
  if (node) checkPeersAgainstNode(routes, node);
  if (!isAbsolute(values['plugins-dir'])) throw new UsageError(`--plugins-dir ${JSON.stringify(values['plugins-dir'])}: expected an absolute path`);
  const links = chainedToLink(list, values['bin-dir'], values['plugins-dir']);
  const conflist = JSON.stringify(list, null, 2) + '\n';
  const confFile = join(values['conf-dir'], '10-vnet.conflist');
  const out: string[] = [];
  if (values['dry-run']) {
    out.push(`# ${confFile}`, conflist.trimEnd(), ...routes.map((r) => `ip route replace ${r.dst.text} via ${r.via.ip}`));
    out.push(...links.map((l) => `ln -s ${l.from} ${join(values['bin-dir'], l.name)}`));
    return out.join('\n') + '\n';
  }
  // Everything checked, then written in the order that leaves nothing half done: the routes
  // (undone if one fails), the executable (run here first), and the conflist last, since a
  // runtime starts using the plugin the moment it sees that.
  const existed = node?.routes ?? [];
  // The routes this run added (not replaced), removed again if anything after them fails.
  const undo = async (upTo: number) => {
    const added = routes.slice(0, upTo).filter((r) => !existed.includes(r.dst.text));
    if (added.length) await ipRun(added.map((r) => ['route', 'del', r.dst.text, 'via', r.via.ip]));
  };
  if (routes.length) {
    const failure = await ipRun(routes.map((r) => ['route', 'replace', r.dst.text, 'via', r.via.ip]));
    if (failure) {
      await undo(failure.index);
      throw new UsageError(`route to ${routes[failure.index]!.dst.text} via ${routes[failure.index]!.via.ip}: ${failure.message}; nothing installed`);
    }
  }
  try {
    crashPoint('vnet install: the routes added, no executable yet');
    await installBinary(values['bin-dir'], values['hard-link']);
    for (const l of links) symlinkSync(l.from, join(values['bin-dir'], l.name));
    mkdirSync(values['conf-dir'], { recursive: true, mode: 0o755 });
    writeAtomic(confFile, conflist, 0o644);
  } catch (err) {
    await undo(routes.length);
    throw err;
  }
  out.push(`installed ${join(values['bin-dir'], 'vnet')} and ${join(values['bin-dir'], 'vnet-ipam')}`);
  for (const l of links) out.push(`linked ${join(values['bin-dir'], l.name)} -> ${l.from} (the conflist chains it; the runtime looks only in ${values['bin-dir']})`);
  out.push(`wrote ${confFile} (layout ${layout}, network ${list.name as string})`);
  for (const r of routes) out.push(`route ${r.dst.text} via ${r.via.ip}`);
  return out.join('\n') + '\n';
}
