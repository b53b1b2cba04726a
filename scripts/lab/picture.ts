// A lab as it is, for a picture (scripts/lab/svg.ts): each namespace read with `ip -json` (links
// with their addresses, IPv4 routes of the main table, neighbours), `bridge -json fdb` and the
// plugin's `bridge vnet` table, then the path of one packet traced through those tables: in each
// namespace the kernel's own route lookup (`ip route get`, with the interface the packet came in
// by), the neighbour entry of the next hop, a bridge's forwarding database, and the MAC rewrite
// the plugin's nftables rules make on the uplink in Azure's bridge layout. Nothing in a picture
// is typed by hand: every name, address and MAC is the kernel's.
import type { Cluster } from './cluster.js';
import { ipJson, trySh } from './sys.js';
import type { Chip, Hop, NsBox, Picture } from './svg.js';

interface AddrJ {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
}
export interface LinkJ {
  ifindex: number;
  ifname: string;
  address?: string;
  master?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
  addr_info?: AddrJ[];
}
export interface RouteJ {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
}
export interface NeighJ {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}
export interface FdbJ {
  mac: string;
  ifname: string;
  master?: string;
  flags?: string[];
  state?: string;
}

/** What one namespace holds, as read. */
export interface NsState {
  ns: string;
  links: LinkJ[];
  routes: RouteJ[];
  neigh: NeighJ[];
  fdb: FdbJ[];
  /** nsid → namespace name, as this namespace numbers its peers (`ip netns list-id`). */
  nsids: Record<number, string>;
  /** MAC rewrites on ingress (the plugin's `bridge vnet` table): frames coming in by `iif` for an address in `map` go to its MAC. */
  dnat: { iif: string; map: Record<string, string> }[];
}

const json = (ns: string, argv: string[]): any[] => {
  const r = trySh(['nsenter', `--net=/var/run/netns/${ns}`, ...argv]);
  return r.ok && r.out.trim() ? JSON.parse(r.out) : [];
};

/** The Azure layout's MAC DNAT, from `nft -j list table bridge vnet`: rules `iifname X ether daddr set ip daddr map @M`. */
export function dnatRules(nft: any[]): NsState['dnat'] {
  const maps: Record<string, Record<string, string>> = {};
  for (const x of nft) {
    if (!x.map) continue;
    maps[x.map.name] = Object.fromEntries((x.map.elem ?? []).map((e: any) => [typeof e[0] === 'object' ? e[0].elem?.val : e[0], e[1]]));
  }
  const out: NsState['dnat'] = [];
  for (const x of nft) {
    const expr: any[] = x.rule?.expr ?? [];
    const iif = expr.find((e) => e.match?.left?.meta?.key === 'iifname')?.match.right;
    const set = expr.find((e) => e.mangle?.key?.payload?.protocol === 'ether' && e.mangle.key.payload.field === 'daddr')?.mangle.value;
    const map = set?.map?.key?.payload?.protocol === 'ip' && typeof set.map.data === 'string' ? maps[set.map.data.replace(/^@/, '')] : undefined;
    if (typeof iif === 'string' && map) out.push({ iif, map });
  }
  return out;
}

export function readNs(ns: string): NsState {
  const links = ipJson(ns, ['-d', 'addr', 'show']) as LinkJ[];
  const bridges = links.some((l) => l.linkinfo?.info_kind === 'bridge');
  const nft = trySh(['nsenter', `--net=/var/run/netns/${ns}`, 'nft', '-j', 'list', 'table', 'bridge', 'vnet']);
  return {
    ns,
    links,
    routes: ipJson(ns, ['-4', 'route', 'show']) as RouteJ[],
    neigh: ipJson(ns, ['-4', 'neigh', 'show']) as NeighJ[],
    fdb: bridges ? (json(ns, ['bridge', '-json', 'fdb', 'show']) as FdbJ[]) : [],
    nsids: Object.fromEntries(json(ns, ['ip', '-json', 'netns', 'list-id']).filter((x) => x.name).map((x) => [x.nsid, x.name])),
    dnat: nft.ok ? dnatRules(JSON.parse(nft.out).nftables ?? []) : [],
  };
}

/** The other end of a veth, by the peer's ifindex in the namespace the link's nsid names. */
export function peerOf(states: Record<string, NsState>, s: NsState, l: LinkJ): { ns: string; name: string } | undefined {
  if (l.linkinfo?.info_kind !== 'veth' || l.link_index === undefined) return undefined;
  const ns = l.link_netnsid === undefined ? s.ns : s.nsids[l.link_netnsid];
  const peer = ns ? states[ns]?.links.find((x) => x.ifindex === l.link_index) : undefined;
  return ns && peer ? { ns, name: peer.ifname } : undefined;
}

const v4 = (l: LinkJ) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.scope !== 'host').map((a) => `${a.local}/${a.prefixlen}`);
/** A route as `ip route` prints it, less what every line has (proto, scope, src), and a host route's /32 written out. */
export const routeText = (r: RouteJ) => `${r.type && r.type !== 'unicast' ? `${r.type} ` : ''}${r.dst === 'default' || r.dst.includes('/') ? r.dst : `${r.dst}/32`}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}`;
const neighText = (x: NeighJ, dev: boolean) => `${x.dst}${dev && x.dev ? ` dev ${x.dev}` : ''} lladdr ${x.lladdr} ${(x.state ?? []).join(',')}`;

/** A namespace as a box: the links drawn (less lo, and less those leading to a namespace not drawn), its routes and neighbours. */
export function nsBox(states: Record<string, NsState>, ns: string, title: string): NsBox {
  const s = states[ns]!;
  const shown = s.links.filter((l) => l.ifname !== 'lo' && (l.linkinfo?.info_kind !== 'veth' || peerOf(states, s, l)));
  const names = new Set(shown.map((l) => l.ifname));
  const chip = (l: LinkJ): Chip => ({
    name: l.ifname,
    lines: [...(l.address ? [l.address] : []), ...v4(l)],
    ...(l.master ? { master: l.master } : {}),
    ...(peerOf(states, s, l) ? { peer: peerOf(states, s, l) } : {}),
  });
  const neigh = s.neigh.filter((x) => x.lladdr && (!x.dev || names.has(x.dev))).sort((a, b) => `${a.dev}${a.dst}`.localeCompare(`${b.dev}${b.dst}`, 'en', { numeric: true }));
  // One link (a pod's eth0): `ip neigh show dev eth0`, as it were, without the device on each line.
  const one = shown.length === 1;
  return {
    ns,
    title,
    chips: shown.filter((l) => l.linkinfo?.info_kind !== 'bridge').map(chip),
    bridges: shown.filter((l) => l.linkinfo?.info_kind === 'bridge').map(chip),
    text: [
      { heading: 'ip route', lines: s.routes.filter((r) => !r.dev || names.has(r.dev)).map(routeText) },
      { heading: one ? `ip neigh show dev ${shown[0]!.ifname}` : 'ip neigh', lines: neigh.length ? neigh.map((x) => neighText(x, !one)) : ['(none)'] },
    ],
  };
}

/** `ip route get`: the kernel's own choice, for a packet from `src` that came in by `iif` (none: sent from here). */
export type RouteGet = (ns: string, dst: string, src: string, iif?: string) => RouteJ | undefined;
export const liveRouteGet: RouteGet = (ns, dst, src, iif) => {
  const r = trySh(['nsenter', `--net=/var/run/netns/${ns}`, 'ip', '-json', 'route', 'get', dst, ...(iif ? ['from', src, 'iif', iif] : [])]);
  return r.ok ? (JSON.parse(r.out)[0] as RouteJ) : undefined;
};

/**
 * The hops of a packet from `src` in namespace `from` to `dst`, each namespace's decision in
 * words. A hop that cannot be told from the tables (no route, an unknown MAC) ends the path there,
 * saying so.
 */
export function trace(states: Record<string, NsState>, routeGet: RouteGet, from: string, src: string, dst: string, label: (ns: string) => string): Hop[] {
  const hops: Hop[] = [];
  let ns = from;
  let iif: string | undefined;
  let mac: string | undefined; // the frame's destination MAC, as it arrives
  for (let n = 0; n < 16; n++) {
    const s = states[ns];
    if (!s) break;
    const link = (name?: string) => s.links.find((l) => l.ifname === name);
    const isBridge = (name?: string) => link(name)?.linkinfo?.info_kind === 'bridge';
    const name = label(ns);
    const said: string[] = [];
    const bridges: string[] = [];
    let routedIif = iif;
    // Came in by a bridge port: the bridge decides first, by the destination MAC.
    const port = link(iif);
    if (port?.master && mac) {
      const rewrite = s.dnat.find((d) => d.iif === iif)?.map[dst];
      if (rewrite && rewrite !== mac) {
        said.push(`in by ${iif}, the uplink: nftables sets the MAC to ${rewrite}, ${dst}'s`);
        mac = rewrite;
      }
      const e = fdbFind(s, port.master, mac);
      bridges.push(port.master);
      if (!e) {
        hops.push({ ns, in: iif, bridges, text: `${name}: ${[...said, `bridge ${port.master} has no entry for ${mac}: it would flood the frame`].join('; ')}` });
        break;
      }
      if (!e.local && e.port !== iif) {
        said.push(`${said.length ? '' : `in by ${iif}: `}bridge ${port.master} knows ${mac} on port ${e.port}`);
        hops.push({ ns, in: iif, out: e.port, bridges, text: `${name}: ${said.join('; ')}` });
        const peer = peerOf(states, s, link(e.port)!);
        if (!peer) break;
        ns = peer.ns;
        iif = peer.name;
        continue;
      }
      said.push(`${said.length ? '' : `in by ${iif}: `}${mac} is bridge ${port.master}'s own: routed`);
      routedIif = port.master;
    }
    const r = routeGet(ns, dst, src, routedIif);
    if (!r) {
      hops.push({ ns, in: iif, bridges, text: `${name}: ${[...said, `no route to ${dst}`].join('; ')}` });
      break;
    }
    if (r.type === 'local') {
      hops.push({ ns, in: iif, bridges, text: `${name}: ${[...said, `${said.length || !iif ? '' : `in by ${iif}: `}${dst} is its own address: delivered`].join('; ')}` });
      break;
    }
    const next = r.gateway ?? dst;
    const nb = s.neigh.find((x) => x.dst === next && x.dev === r.dev && x.lladdr);
    let out = r.dev!;
    let how = `${said.length || !iif ? '' : `in by ${iif}: `}${dst} ${r.gateway ? `via ${r.gateway} ` : ''}dev ${r.dev}${r.gateway ? '' : ' (on-link)'}`;
    how += nb ? `; ${next} is ${nb.lladdr} (${(nb.state ?? []).join(',')})` : '';
    if (isBridge(r.dev)) {
      const e = nb?.lladdr ? fdbFind(s, r.dev!, nb.lladdr) : undefined;
      bridges.push(r.dev!);
      if (!e || e.local) {
        hops.push({ ns, in: iif, bridges, text: `${name}: ${[...said, how, `bridge ${r.dev} has no port for ${nb?.lladdr ?? next}`].join('; ')}` });
        break;
      }
      how += ` on port ${e.port}`;
      out = e.port;
    }
    hops.push({ ns, in: iif, out, bridges, text: `${name}: ${[...said, how].join('; ')}` });
    const peer = link(out) && peerOf(states, s, link(out)!);
    if (!peer) break;
    ns = peer.ns;
    iif = peer.name;
    mac = nb?.lladdr;
  }
  return hops;
}

/** A bridge's forwarding entry for a MAC: the port it leads to, or the bridge's own (a port's own MAC, or the bridge's). */
function fdbFind(s: NsState, bridge: string, mac: string): { port: string; local: boolean } | undefined {
  const e = s.fdb.find((x) => x.mac === mac && x.master === bridge && !(x.flags ?? []).includes('self'));
  if (!e) return undefined;
  return { port: e.ifname, local: e.ifname === bridge || e.state === 'permanent' };
}

/**
 * A lab's picture: the VNet, its nodes and their pods as the kernel has them, and the path of
 * one packet from the first pod on node0 to the first pod on node1 (pinged once just before, so
 * that the neighbour and bridge tables along the way hold it).
 */
export function labPicture(c: Cluster, title: string, notes: string[]): Picture {
  const pods = [...c.pods].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const a = pods.find((p) => p.node === 0);
  const b = pods.find((p) => p.node === 1);
  // A few tries: the first packet waits on ARP, and on a bridge's learning.
  for (let i = 0; a && b && i < 3; i++) if (trySh(['nsenter', `--net=/var/run/netns/${a.netns}`, 'ping', '-c', '1', '-W', '2', c.podAddr(b, 4)]).ok) break;
  const nodes = Array.from({ length: c.spec.nodes }, (_, i) => c.node(i));
  const all = [c.vnet, ...nodes, ...pods.map((p) => p.netns)];
  const states = Object.fromEntries(all.map((ns) => [ns, readNs(ns)]));
  const label = (ns: string) => (ns === c.vnet ? 'VNet' : ns.slice(c.spec.prefix.length + 1));
  // A pod off the path is drawn small when its routes and permanent neighbours read as those of
  // the pod on the path on its node (the same lines, its own address aside): the picture stays narrow.
  const boxes = pods.map((p) => nsBox(states, p.netns, `pod ${p.name} (netns ${p.netns})`));
  const ref = (i: number) => boxes[pods.indexOf([a, b].find((x) => x && x.node === pods[i]!.node)!)];
  const same = (x: NsBox, y: NsBox) => {
    const keep = (b: NsBox) => [...b.text[0]!.lines, ...b.text[1]!.lines.filter((l) => l.endsWith(' PERMANENT'))].join('\n');
    return keep(x) === keep(y);
  };
  const podBoxes = boxes.map((box, i) => {
    const r = ref(i);
    return r && r !== box && same(box, r) ? { ...box, text: [{ heading: `ip route, permanent neighbours: as ${r.ns.slice(c.spec.prefix.length + 1)}'s`, lines: [] }] } : box;
  });
  return {
    title,
    notes,
    vnet: { ...nsBox(states, c.vnet, `VNet (netns ${c.vnet})`), columns: true },
    nodes: nodes.map((ns) => nsBox(states, ns, `${label(ns)} (netns ${ns})`)),
    pods: podBoxes,
    path: a && b ? trace(states, liveRouteGet, a.netns, c.podAddr(a, 4), c.podAddr(b, 4), label) : [],
  };
}
