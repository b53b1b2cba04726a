// Node facts a plan is built from, read in one `ip -json` process: does the bridge exist, and the
// uplink's MAC, bridge master, addresses and routes. What the kernel reports is outside text like
// anything else: names, addresses and routes are parsed into typed values or left out.
import { CniError, Code } from '../errors.js';
import { log } from '../log.js';
import { ROUTES, defaultRouteInterface, ipJson, linkMtu, linkRow, mainRoutes, nodeHasLink, type LinkRow, type RouteRow } from './ip.js';
import { ifNameProblem, macOf, toAddr, toCidr, type Addr, type Cidr, type IfName, type Mac } from './values.js';

export interface UplinkRoute {
  dst: Cidr;
  gw?: Addr;
  metric?: number;
  /** Who made it (the kernel's own follow the addresses and are not moved). */
  proto?: CarriedProto;
  /**
   * Its preferred source (systemd-networkd's DHCP default route has one): always one of the
   * uplink's own addresses, which move with it, so it is carried as it is.
   */
  src?: Addr;
}

/** The route origins the move carries as they are; a route of another origin is refused. */
const CARRIED_PROTOS = ['boot', 'static', 'dhcp', 'ra'] as const;
type CarriedProto = (typeof CARRIED_PROTOS)[number];

interface LinkFacts {
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

function linkFacts(row: LinkRow | undefined): LinkFacts | undefined {
  if (!row || ifNameProblem(row.ifname)) return undefined;
  const addrs = (row.addr_info ?? [])
    .filter((a) => a.family === 'inet' || (a.family === 'inet6' && a.scope === 'global'))
    .flatMap((a) => toCidr(`${a.local}/${a.prefixlen}`) ?? []);
  return { name: row.ifname as IfName, mac: macOf(`link ${row.ifname}`, row.address ?? '', Code.io), mtu: row.mtu ?? 1500, master: row.master, addrs };
}

/**
 * What bridge mode needs to know about this node. Another ADD may be moving the uplink onto the
 * bridge right now (first ADDs at once on a fresh node), in one `ip` process that takes the
 * addresses off the NIC and then puts them on the bridge: a read in between finds them on
 * neither, and a plan made from it would route ipsToRouteViaHost via the gateway instead of the
 * node. Such a read (the bridge already made, no address on either) is made again, a few
 * milliseconds later, for up to half a second; a first ADD, which finds no bridge, never waits.
 */
export async function readNodeFacts(bridge: IfName, uplink: IfName | undefined): Promise<NodeFacts> {
  for (let tries = 1; ; tries++) {
    const facts = await readNodeFactsOnce(bridge, uplink);
    if (!facts.uplink || facts.uplink.addrs.length || !facts.bridgeExists || tries >= 50) return facts;
    if (tries === 1) log.info(`Uplink ${uplink} and bridge ${bridge} hold no address (another ADD moving it?): reading again`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readNodeFactsOnce(bridge: IfName, uplink: IfName | undefined): Promise<NodeFacts> {
  // ROUTES (`route show table all`) lists both families' routes, every table.
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
  const rows = routes as RouteRow[];
  // Likewise its addresses: once moved, the node's addresses are the bridge's.
  const addrs = on === bridge ? (facts.bridge?.addrs ?? []) : up.addrs;
  if (on === uplink) refuseUncarried(uplink, rows, addrs);
  // Routes without a gateway first, wherever they are added: a gateway reached only by a host
  // route (a /32 node address, as some DHCP clouds give) is unreachable until that route is there.
  const moved = mainRoutes(rows)
    .filter((r) => r.dev === on && r.protocol !== 'kernel')
    .map((r): UplinkRoute => ({ dst: r.dst, gw: r.gw, metric: r.metric, proto: CARRIED_PROTOS.find((p) => p === r.protocol), src: ownSource(r.prefsrc, addrs) }))
    .sort((a, b) => Number(a.gw !== undefined) - Number(b.gw !== undefined));
  facts.uplink = { ...up, addrs, routes: moved };
  facts.mtu = up.mtu;
  return facts;
}

/**
 * A route's preferred source, parsed, when it is one of these IPv4 addresses; else nothing. Not
 * IPv6: the restore puts the NIC's IPv6 addresses back tentative (duplicate address detection,
 * as the NIC had them), and the kernel takes no tentative address as a route's source.
 */
function ownSource(prefsrc: string | undefined, addrs: readonly Cidr[]): Addr | undefined {
  const src = prefsrc === undefined ? undefined : toAddr(prefsrc);
  return src?.family === 4 && addrs.some((a) => a.ip === src.ip) ? src : undefined;
}

function sourceProblem(prefsrc: string, uplink: IfName): string {
  return toAddr(prefsrc)?.family === 6
    ? `has an IPv6 preferred source (${prefsrc}), which a restore could not give back (the NIC's IPv6 addresses return tentative)`
    : `has a preferred source (${prefsrc}) that is not one of ${uplink}'s addresses`;
}

/**
 * The move carries a route on the uplink exactly when it is a main-table unicast route with a
 * destination, maybe a gateway, a metric and a preferred source that is one of the uplink's own
 * IPv4 addresses (they move too), made by the kernel (it follows the addresses) or by boot, static,
 * DHCP or router advertisements. Anything else (another table, and the rules that use it;
 * multipath; onlink; another address as its source; per-route MTU or other metrics; another
 * origin) it would change or lose: refused before the NIC is touched, naming the route.
 */
function refuseUncarried(uplink: IfName, rows: readonly RouteRow[], addrs: readonly Cidr[]): void {
  for (const r of rows) {
    const viaUplink = r.dev === uplink || (r.nexthops ?? []).some((h) => (h as { dev?: string }).dev === uplink);
    if (!viaUplink || r.type === 'local' || r.type === 'broadcast' || r.type === 'multicast' || r.table === 'local') continue;
    if (r.dst?.startsWith('fe80::') || r.dst === 'ff00::/8') continue; // link-local: every link has its own
    if (r.protocol === 'kernel' && (r.table === undefined || r.table === 'main')) continue; // they follow the addresses
    const why = r.table !== undefined && r.table !== 'main' ? `is in table ${r.table}`
      : r.nexthops?.length ? 'is multipath'
      : r.flags?.includes('onlink') ? 'is onlink'
      : r.prefsrc !== undefined && !ownSource(r.prefsrc, addrs) ? sourceProblem(r.prefsrc, uplink)
      : r.metrics?.length ? 'carries metrics (mtu, window, …)'
      : r.type !== undefined && r.type !== 'unicast' ? `is of type ${r.type}`
      : r.protocol !== undefined && r.protocol !== 'kernel' && !CARRIED_PROTOS.some((p) => p === r.protocol) ? `was made by ${r.protocol}`
      : undefined;
    if (why) {
      const text = `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${uplink}`;
      throw new CniError(Code.invalidConfig, `uplink ${uplink}: the route ${JSON.stringify(text)} ${why}, which moving the uplink onto its bridge would not carry exactly: refusing (nothing changed)`);
    }
  }
}

/** A shared object is checked by kind before any step: a link named like the bridge must be one. */
function notABridge(name: IfName, kind: string | undefined): never {
  const what = kind ? `a ${kind} link` : 'a NIC, lo or another kind of link';
  throw new CniError(Code.invalidConfig, `bridge ${name} already exists but is not a bridge (it is ${what}): refusing to use it (nothing changed)`);
}

/** Whether the node has a link of this name, and if so that it is a bridge (one process, only then). */
export async function bridgeOnNode(name: IfName): Promise<boolean> {
  if (!nodeHasLink(name)) return false;
  const row = await linkRow(name);
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
