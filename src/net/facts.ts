// Node facts a plan is built from, read in one `ip -json` process: does the bridge exist, and the
// uplink's MAC, bridge master, addresses and routes. What the kernel reports is outside text like
// anything else: names, addresses and routes are parsed into typed values or left out.
import { CniError, Code } from '../cni/errors.js';
import { log } from '../log.js';
import { ROUTES, defaultRouteInterface, ipJson, linkMtu, linkRow, mainRoutes, nodeHasLink, type RouteRow } from './ip.js';
import { ifNameProblem, macOf, toCidr, type Addr, type Cidr, type IfName, type Mac } from './values.js';

export interface UplinkRoute {
  dst: Cidr;
  gw?: Addr;
  metric?: number;
}

export interface LinkFacts {
  name: IfName;
  mac: Mac;
  mtu: number;
  master?: string;
  /** Its addresses with their prefix: IPv4, and IPv6 of global scope (a link-local address stays with its link). */
  addrs: Cidr[];
}

export interface NodeFacts {
  /** The MTU for the pod's veth when the config names none: the uplink's, or the default route's interface's. */
  mtu?: number;
  /** Whether the bridge is there already (so its creation is not planned, and not retried). */
  bridgeExists: boolean;
  bridge?: LinkFacts;
  uplink?: LinkFacts & { routes: UplinkRoute[] };
}

interface LinkRow {
  ifname: string;
  address?: string;
  mtu?: number;
  master?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[];
}

function linkFacts(row: LinkRow | undefined): LinkFacts | undefined {
  if (!row || ifNameProblem(row.ifname)) return undefined;
  const addrs = (row.addr_info ?? [])
    .filter((a) => a.family === 'inet' || (a.family === 'inet6' && a.scope === 'global'))
    .flatMap((a) => toCidr(`${a.local}/${a.prefixlen}`) ?? []);
  return { name: row.ifname as IfName, mac: macOf(`link ${row.ifname}`, row.address ?? '', Code.io), mtu: row.mtu ?? 1500, master: row.master, addrs };
}

/** What bridge mode needs to know about this node. */
export async function readNodeFacts(bridge: IfName, uplink: IfName | undefined): Promise<NodeFacts> {
  const [links = [], routes = [], bridges = []] = await ipJson(['addr show', ROUTES, 'link show type bridge']);
  const find = (name: string) => (links as LinkRow[]).find((l) => l.ifname === name);
  if (find(bridge) && !(bridges as LinkRow[]).some((l) => l.ifname === bridge)) notABridge(bridge, undefined);
  const facts: NodeFacts = { bridgeExists: find(bridge) !== undefined, bridge: linkFacts(find(bridge)) };
  if (uplink === undefined) return facts;
  const up = linkFacts(find(uplink));
  if (!up) throw new CniError(Code.invalidConfig, `uplink ${uplink}: no such interface on the node`);
  // Taking a port of another bridge (a VM host's br0) would cut off whatever that bridge serves.
  if (up.master !== undefined && up.master !== bridge) {
    throw new CniError(Code.invalidConfig, `uplink ${uplink} is a port of ${JSON.stringify(up.master)}; moving it onto ${bridge} would take it from there: refusing (nothing changed)`);
  }
  // The kernel's own subnet routes follow the addresses; the rest (the default route above all)
  // must be moved by hand. Where the uplink is already on the bridge, they are on the bridge.
  const on = up.master === bridge ? bridge : uplink;
  const moved = mainRoutes(routes as RouteRow[])
    .filter((r) => r.dev === on && r.protocol !== 'kernel')
    .map((r): UplinkRoute => ({ dst: r.dst, gw: r.gw, metric: r.metric }));
  // Likewise its addresses: once moved, the node's addresses are the bridge's.
  facts.uplink = { ...up, addrs: on === bridge ? (facts.bridge?.addrs ?? []) : up.addrs, routes: moved };
  facts.mtu = up.mtu;
  return facts;
}

/** A shared object is checked by kind before any step: a link named like the bridge must be one. */
function notABridge(name: IfName, kind: string | undefined): never {
  const what = kind ? `a ${kind} link` : 'a NIC, lo or another kind of link';
  throw new CniError(Code.invalidConfig, `bridge ${name} already exists but is not a bridge (it is ${what}): refusing to use it (nothing changed)`);
}

/** Whether the node has a link of this name, and if so that it is a bridge (one process, only then). */
export async function bridgeOnNode(name: IfName): Promise<boolean> {
  if (!nodeHasLink(name)) return false;
  const row = (await linkRow(name)) as LinkRow | undefined;
  if (row && row.linkinfo?.info_kind !== 'bridge') notABridge(name, row.linkinfo?.info_kind);
  return row !== undefined;
}

/** The MTU of the node's default-route interface (one `ip` process), 1500 if it has none. */
export async function defaultMtu(): Promise<number> {
  const dev = defaultRouteInterface();
  const mtu = dev ? await linkMtu(dev) : undefined;
  log.info(`MTU ${mtu ?? 1500}${dev ? ` (from ${dev}, the default route's interface)` : ' (no default route)'}`);
  return mtu ?? 1500;
}
