// `vnet state`: one network as this node holds it, and what leaked. From the store: every address
// vnet-ipam holds (address, container ID, ifname). From the node, in one `ip -json -force -batch -`
// (links, addresses, both families' routes, neighbours): each allocation's host veth (present,
// up, bridge master), the routes through it and the neighbour entries for its address (on the veth
// in transparent mode, on the bridge in bridge mode); from one `nft -j list table inet vnet`, read
// only when masquerade may be in use, its masquerade element. Leaks are named in both directions:
//   address     an allocation whose veth does not exist
//   link        an `azv` veth whose alias names this network but whose attachment holds no address
//   masquerade  an element of the network's pod sets whose address or tag matches no allocation
//   neighbour   a permanent entry on the bridge whose MAC is no live attachment's pod MAC
//   mac-dnat    bridge mode: a MAC DNAT rule (`nft -j list table bridge vnet`) whose address no
//               allocation holds, or whose MAC is not its holder's pod MAC
// In three parts: `read` (every process it runs), `match` (pure: allocations against what the node
// holds, leaks by the mode's `stateRules` from plan/modes.ts), then the output (text or JSON).
// Exit status (cli/index.ts): 0 no leak, 1 leaks (or a failure), 2 a usage error.
// Everything shown was read from files and the kernel: the human output escapes control
// characters, the JSON output escapes them as JSON does (and DEL and C1 controls too).
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { networkNameProblem, parseNetConf, type NetConf } from '../config/netconf.js';
import { DEFAULT_DATA_DIR, parseIpamConfig } from '../ipam/config.js';
import { freeLeaked, listAllocations } from '../ipam/plugin.js';
import { subnetFor, type RangeSet } from '../ipam/range.js';
import { Store } from '../ipam/store.js';
import { escapeControls } from '../log.js';
import { parseIp } from '../net/address.js';
import { ROUTES, ipJson, mainRoutes, nodeHasLink, type LinkRow, type NeighRow, type RouteRow } from '../net/ip.js';
import { L2_TABLE, NFT_TABLE, mappedPods, masqNames, readMasqTable } from '../net/nft.js';
import { toAddr } from '../net/values.js';
import { modeOf } from '../plan/modes.js';
import { aliasAttachment, containerMac, hostVethName, networkAliasPrefix } from '../plan/names.js';
import { readNetConf, UsageError } from './conf.js';


type StateRoute = Pick<RouteRow, 'dst' | 'dev' | 'gateway' | 'protocol' | 'scope' | 'metric'>;
interface StateNeighbour {
  dst: string;
  dev: string;
  lladdr: string | null;
  state: string[];
}
interface StateAllocation {
  ip: string;
  containerId: string;
  ifname: string;
  veth: { name: string; present: boolean; up: boolean | null; master: string | null; mac: string | null };
  routes: StateRoute[];
  neighbours: StateNeighbour[];
  /** An element of the network's pod set for this address, tagged with its veth; null when not looked at. */
  masquerade: boolean | null;
}
type Leak =
  | { kind: 'address'; message: string; ip: string; containerId: string; ifname: string; veth: string }
  | { kind: 'link'; message: string; veth: string; containerId: string; ifname: string; alias: string }
  | { kind: 'masquerade'; message: string; ip: string; tag: string; set: string }
  | { kind: 'neighbour'; message: string; ip: string; lladdr: string; dev: string }
  | { kind: 'mac-dnat'; message: string; ip: string; mac: string; tag: string };
interface StateReport {
  network: string;
  dataDir: string;
  /** From the config, else from the veths (a port of a bridge: bridge mode); null when nothing says. */
  mode: 'transparent' | 'bridge' | null;
  config: string | null;
  dataDirExists: boolean;
  networkDirExists: boolean;
  allocations: StateAllocation[];
  bridges: { name: string; present: boolean; up: boolean | null; mac: string | null; addresses: string[]; ports: string[] }[];
  masquerade: { checked: boolean; table: boolean | null; sets: string[]; elements: { ip: string; tag: string; set: string }[] };
  /** Bridge mode: the MAC DNAT rules of Azure's layout (table bridge vnet), address to pod MAC. */
  macDnat: { ip: string; mac: string; tag: string }[];
  leaks: Leak[];
  /** Sentences on what was not found or not looked at. */
  notes: string[];
}

const USAGE = 'vnet state [--conf FILE | --data-dir DIR --network NAME] [--json] [--free-leaked]';

interface Options {
  network: string;
  dataDir: string;
  conf?: NetConf;
  /** The config's ranges, when it is in host-local's format. */
  rangeSets: RangeSet[];
  confFile?: string;
  json: boolean;
  freeLeaked: boolean;
}

export async function state(args: string[]): Promise<{ out: string; code: number }> {
  const o = options(args);
  const report = await survey(o);
  if (o.freeLeaked) return freeLeakedAddresses(o, report);
  const out = o.json ? jsonText(report) : render(report);
  return { out, code: report.leaks.length ? 1 : 0 };
}

/**
 * --free-leaked: releases the addresses the survey found leaked (their pod's veth is gone), each
 * checked again under the store's lock (see ipam/plugin.ts freeLeaked), and says what it freed.
 * Exit 0 when nothing it found is left leaked, 1 otherwise.
 */
async function freeLeakedAddresses(o: Options, report: StateReport): Promise<{ out: string; code: number }> {
  const leaked = report.leaks.flatMap((l) => (l.kind === 'address' ? [{ ip: l.ip, containerId: l.containerId, ifname: l.ifname }] : []));
  const { freed, kept } = await freeLeaked(o.dataDir, o.network, leaked, (a) => !nodeHasLink(hostVethName(o.network, a)));
  const lines = [
    `Network "${safe(o.network)}": ${leaked.length} leaked address${leaked.length === 1 ? '' : 'es'} found (no veth on this node).`,
    ...freed.map((f) => `freed ${safe(f)}`),
    ...kept.map((k) => `kept ${safe(k)}`),
  ];
  const others = report.leaks.filter((l) => l.kind !== 'address');
  if (others.length) lines.push(`Not freed by this command (a runtime's DEL or GC removes them): ${others.length} other leak${others.length === 1 ? '' : 's'}; see vnet state.`);
  return { out: lines.join('\n') + '\n', code: kept.length || others.length ? 1 : 0 };
}

function options(args: string[]): Options {
  let values: { conf?: string; 'data-dir'?: string; network?: string; json?: boolean; 'free-leaked'?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: { conf: { type: 'string' }, 'data-dir': { type: 'string' }, network: { type: 'string' }, json: { type: 'boolean' }, 'free-leaked': { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${USAGE}`);
  }
  let network = values.network;
  let dataDir = values['data-dir'];
  let conf: NetConf | undefined;
  let rangeSets: RangeSet[] = [];
  if (values.conf) {
    try {
      // Leniently, as DEL reads it: a config edited since its pods were added still names them.
      const stdin = readNetConf(values.conf);
      conf = parseNetConf(stdin, 'DEL');
      rangeSets = rangeSetsOf(stdin.json);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`${values.conf}: ${(err as Error).message}`);
    }
    network ??= conf.name;
    const fromConf = (conf.ipam as { dataDir?: unknown } | undefined)?.dataDir;
    dataDir ??= typeof fromConf === 'string' && fromConf ? fromConf : undefined;
  }
  dataDir = resolve(dataDir || DEFAULT_DATA_DIR);
  if (!network) {
    const known = networksIn(dataDir);
    const hint = known.length ? ` (networks in ${dataDir}: ${known.join(', ')})` : '';
    throw new UsageError(`name the network: --conf FILE, or --network NAME [--data-dir DIR]${hint}\nusage: ${USAGE}`);
  }
  const why = networkNameProblem(network);
  if (why) throw new UsageError(`invalid network name ${JSON.stringify(network)}: ${why}`);
  return { network, dataDir, conf, rangeSets, confFile: values.conf, json: values.json ?? false, freeLeaked: values['free-leaked'] ?? false };
}

/** The subdirectories of a data directory: the networks vnet-ipam (or host-local) has held addresses of. */
function networksIn(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

function isDir(path: string): boolean | 'not a directory' {
  try {
    return statSync(path).isDirectory() || 'not a directory';
  } catch {
    return false;
  }
}

/** What `vnet state` reads, in as few processes as it can: the store, the node (one `ip`), the mode's nft tables. */
type Seen = Awaited<ReturnType<typeof read>>;

async function survey(o: Options): Promise<StateReport> {
  return match(o, await read(o));
}

async function read(o: Options) {
  const { network, dataDir, conf } = o;
  const notes: string[] = [];

  // The store.
  const dd = isDir(dataDir);
  const networkDirExists = dd === true && Store.forNetwork(dataDir, network).exists();
  if (dd === false) notes.push(`The data directory ${dataDir} does not exist: vnet-ipam holds no address there (is --data-dir, or the config's ipam.dataDir, right?).`);
  else if (dd !== true) notes.push(`${dataDir} is not a directory: vnet-ipam holds no address there.`);
  else if (!networkDirExists) {
    const others = networksIn(dataDir);
    notes.push(
      `No network "${network}" in ${dataDir} (no directory ${join(dataDir, network)}): vnet-ipam holds no address of it there` +
        (others.length ? `; the networks there: ${others.join(', ')}.` : '; the data directory holds no network.'),
    );
  }
  const allocs = networkDirExists ? listAllocations(dataDir, network) : [];

  // The node: one process for links, addresses, routes of both families and neighbours.
  const [linkRows = [], addrRows = [], routeRows = [], neighRows = []] = await ipJson(['link show', 'addr show', ROUTES, 'neigh show']);
  const links = linkRows as LinkRow[];
  const byName = new Map(links.map((l) => [l.ifname, l]));
  const addrsOf = new Map((addrRows as LinkRow[]).map((l) => [l.ifname, l.addr_info ?? []]));
  const routes = mainRoutes(routeRows as RouteRow[]);
  const neighs = (neighRows as NeighRow[]).filter((n) => typeof n.dst === 'string' && typeof n.dev === 'string');

  // This network's veths, by their alias `vnet:<network>:<containerID>:<ifname>`.
  const prefix = networkAliasPrefix(network);
  const ours = links.filter((l) => l.ifname.startsWith('azv') && l.ifalias?.startsWith(prefix));
  const allocVeths = new Set<string>(allocs.map((a) => hostVethName(network, a)));

  // The mode: the config's, else what the veths say (a port of a bridge is bridge mode).
  const seen = [...ours, ...[...allocVeths].flatMap((n) => byName.get(n) ?? [])];
  let mode: StateReport['mode'] = conf?.mode ?? null;
  if (!mode && seen.length) mode = seen.some((l) => l.master) ? 'bridge' : 'transparent';
  if (!conf && !seen.length) {
    notes.push(`No config and no veth of network "${network}" on this node: the mode is unknown and no bridge's neighbour entries are checked (give --conf).`);
  }
  const bridgeNames = new Set<string>();
  if (mode === 'bridge') {
    if (conf) bridgeNames.add(conf.bridge.name);
    for (const l of seen) if (l.master) bridgeNames.add(l.master);
  }

  // Masquerade: read when the config asks for it, or when there is no config to ask.
  const masq = await readMasquerade(network, conf ? !!conf.masq : true);
  if (masq.note) notes.push(masq.note);
  const sets = masqNames(network).pods;
  const masqSets = masq.sets.filter((s) => s === sets[4] || s === sets[6]);
  // Azure's layout: the MAC DNAT rules, when the mode has them.
  const rules = mode ? modeOf(mode).stateRules : undefined;
  const macDnat = rules?.macDnat ? await readMacDnat(network, notes) : [];
  return { dd, networkDirExists, allocs, links, byName, addrsOf, routes, neighs, ours, allocVeths, mode, bridgeNames, masq, masqSets, macDnat, notes };
}


/** The allocations matched with what the node holds, and the leaks both ways, by the mode's rules: no I/O. */
function match(o: Options, seen: Seen): StateReport {
  const { network, dataDir } = o;
  const { dd, networkDirExists, allocs, links, byName, addrsOf, routes, neighs, ours, allocVeths, mode, bridgeNames, masq, masqSets, macDnat, notes } = seen;
  const conf = o.conf;
  const rules = mode ? modeOf(mode).stateRules : undefined;
  const allocations: StateAllocation[] = allocs.map((a) => {
    const veth = hostVethName(network, a);
    const link = byName.get(veth);
    const family = parseIp(a.ip)!.family;
    const neighDev = rules?.neighbours === 'bridge' ? (link?.master ?? [...bridgeNames][0]) : veth;
    let masquerade: boolean | null = null;
    // Looked at when the config asks for masquerade, or when the network's sets exist.
    if (masq.checked && (conf?.masq || masqSets.length)) masquerade = masq.elements.some((e) => e.ip === a.ip && (!e.tag || e.tag === veth));
    return {
      ip: a.ip,
      containerId: a.containerId,
      ifname: a.ifname,
      veth: { name: veth, present: !!link, up: link ? !!link.flags?.includes('UP') : null, master: link?.master ?? null, mac: link?.address ?? null },
      // Its family's routes through the veth, but the link-local prefix every IPv6 link has.
      routes: routes
        .filter((r) => r.dev === veth && r.dst.family === family && !(r.dst.family === 6 && r.dst.network === 'fe80::/64'))
        .map((r) => ({ dst: r.dst.text, dev: r.dev, gateway: r.gw?.ip, protocol: r.protocol, scope: r.scope, metric: r.metric })),
      neighbours: neighs
        .filter((n) => neighDev !== undefined && n.dev === neighDev && toAddr(n.dst!)?.ip === a.ip)
        .map((n) => ({ dst: n.dst!, dev: n.dev!, lladdr: n.lladdr ?? null, state: n.state ?? [] })),
      masquerade,
    };
  });

  const bridges = [...bridgeNames].map((name) => {
    const l = byName.get(name);
    const addresses = (addrsOf.get(name) ?? []).filter((x) => x.scope !== 'link' && x.scope !== 'host' && x.local).map((x) => `${x.local}/${x.prefixlen}`);
    return {
      name,
      present: !!l,
      up: l ? !!l.flags?.includes('UP') : null,
      mac: l?.address ?? null,
      addresses,
      ports: links.filter((p) => p.master === name).map((p) => p.ifname),
    };
  });

  // Leaks, both directions.
  const leaks: Leak[] = [];
  for (const a of allocations) {
    if (a.veth.present) continue;
    leaks.push({
      kind: 'address',
      message: `allocation ${a.ip} (container ${a.containerId} ${a.ifname}) has no veth ${a.veth.name}: leaked address`,
      ip: a.ip,
      containerId: a.containerId,
      ifname: a.ifname,
      veth: a.veth.name,
    });
  }
  for (const l of ours) {
    if (allocVeths.has(l.ifname)) continue;
    const who = aliasAttachment(network, l.ifalias)!;
    leaks.push({
      kind: 'link',
      message: `veth ${l.ifname} (container ${who.containerId} ${who.ifname}) holds no address: leaked link`,
      veth: l.ifname,
      containerId: who.containerId,
      ifname: who.ifname,
      alias: l.ifalias!,
    });
  }
  // An element is the allocation's when it has the address and the allocation's veth as its tag
  // (an untagged one, by the address alone): what marks the allocation `masquerade: true`.
  const holder = new Map(allocations.map((a) => [a.ip, a]));
  for (const e of masq.elements) {
    const a = holder.get(e.ip);
    if (a && (!e.tag || e.tag === a.veth.name)) continue;
    const tagged = e.tag ? `tagged ${e.tag}` : 'untagged';
    const why = a ? `is ${tagged}, but ${e.ip} is held by container ${a.containerId} ${a.ifname}, whose veth is ${a.veth.name}` : 'matches no allocation';
    leaks.push({
      kind: 'masquerade',
      message: `masquerade element ${e.ip} (${tagged}) in ${e.set} ${why}: leaked masquerade element`,
      ip: e.ip,
      tag: e.tag,
      set: e.set,
    });
  }
  if (rules?.bridgeNeighbourLeaks) {
    // The pod MAC of every attachment still here: one holding an address, or one whose veth is left.
    const live = new Set<string>([...allocs.map((a) => containerMac(network, a)), ...ours.map((l) => aliasAttachment(network, l.ifalias)!.podMac)]);
    const ranges = o.rangeSets;
    for (const n of neighs) {
      if (!bridgeNames.has(n.dev!) || !n.state?.includes('PERMANENT') || !n.lladdr || live.has(n.lladdr)) continue;
      // With the config's ranges known, only entries for this network's subnets are its own.
      const ip = parseIp(n.dst!);
      if (ranges.length && (!ip || !ranges.some((set) => subnetFor(set, ip)))) continue;
      leaks.push({
        kind: 'neighbour',
        message: `neighbour ${n.dst} lladdr ${n.lladdr} on ${n.dev} (permanent) is the pod MAC of no live attachment: leaked neighbour entry`,
        ip: n.dst!,
        lladdr: n.lladdr,
        dev: n.dev!,
      });
    }
  }
  // Azure's layout: a MAC DNAT rule is an attachment's when an allocation holds its address and the
  // attachment's pod MAC (the one its veth's alias records, else the derived one) is its value.
  const podMacOf = (a: StateAllocation) => aliasAttachment(network, byName.get(a.veth.name)?.ifalias)?.podMac ?? containerMac(network, a);
  for (const e of macDnat) {
    const a = holder.get(e.ip);
    if (a && podMacOf(a) === e.mac) continue;
    leaks.push({
      kind: 'mac-dnat',
      message: `MAC DNAT rule ${e.ip} -> ${e.mac} (${e.tag ? `tagged ${e.tag}` : 'untagged'}) in ${L2_TABLE} ${a ? `points to another MAC than the pod of container ${a.containerId} ${a.ifname}` : 'matches no allocation'}: leaked MAC DNAT rule`,
      ...e,
    });
  }
  // Said first, plainly, when the network has left nothing anywhere (a typo, or a fresh node).
  if (!networkDirExists && !ours.length && !masqSets.length) {
    notes.unshift(`Network "${network}" does not exist on this node: no address directory, no veth${masq.checked ? ', no masquerade set' : ''}.`);
  }

  return {
    network,
    dataDir,
    mode,
    config: o.confFile ?? null,
    dataDirExists: dd === true,
    networkDirExists,
    allocations,
    bridges,
    masquerade: { checked: masq.checked, table: masq.table, sets: masqSets, elements: masq.elements },
    macDnat,
    leaks,
    notes,
  };
}

/** The network's MAC DNAT rules (nft.ts's read); fails soft, with a note: `state` shows the rest. */
async function readMacDnat(network: string, notes: string[]): Promise<{ ip: string; mac: string; tag: string }[]> {
  try {
    return (await mappedPods(network)).map((m) => ({ ip: m.ip.ip, mac: m.mac, tag: m.tag }));
  } catch (err) {
    notes.push(`The MAC DNAT rules were not read: ${(err as Error).message}`);
    return [];
  }
}

function rangeSetsOf(json: Record<string, unknown>): RangeSet[] {
  try {
    return parseIpamConfig(json).rangeSets;
  } catch {
    return []; // not host-local's format: no ranges to go by
  }
}

interface Masquerade {
  checked: boolean;
  /** Whether table inet vnet exists; null when not looked at. */
  table: boolean | null;
  /** The network's pod sets that exist. */
  sets: string[];
  elements: { ip: string; tag: string; set: string }[];
  note?: string;
}

/** The network's masquerade elements, both families (nft.ts's read); fails soft: `state` shows the rest. */
async function readMasquerade(network: string, wanted: boolean): Promise<Masquerade> {
  const none = { sets: [], elements: [] };
  if (!wanted) return { checked: false, table: null, ...none, note: 'Masquerade not read: ipMasq is off in the config.' };
  let t;
  try {
    t = await readMasqTable(network);
  } catch (err) {
    return { checked: false, table: null, ...none, note: `Masquerade not read: ${(err as Error).message}.` };
  }
  if (!t.table) return { checked: true, table: false, ...none, note: `The nftables table ${NFT_TABLE} does not exist: no pod is masqueraded.` };
  const { pods } = masqNames(network);
  const elements = t.sets.flatMap((set) => set.elements.map((e) => ({ ip: e.ip.ip as string, tag: e.tag, set: set.name })));
  const note = t.sets.length ? undefined : `The nftables table ${NFT_TABLE} holds no set of network "${network}" (${pods[4]}, ${pods[6]}): none of its pods is masqueraded.`;
  return { checked: true, table: true, sets: t.sets.map((s) => s.name), elements, note };
}

// ---- output ----

/** Outside text made harmless for a terminal (controls, line separators, bidi overrides). */
const safe = escapeControls;

function jsonText(r: StateReport): string {
  // JSON.stringify escapes C0 controls; DEL and C1 controls it leaves as they are.
  return JSON.stringify(r, null, 2).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}

function routeText(r: StateRoute): string {
  return [r.dst, r.gateway && `via ${r.gateway}`, r.dev && `dev ${r.dev}`, r.protocol && `proto ${r.protocol}`, r.scope && `scope ${r.scope}`, r.metric !== undefined && `metric ${r.metric}`]
    .filter(Boolean)
    .join(' ');
}

function render(r: StateReport): string {
  const out: string[] = [];
  const mode = r.mode ? `mode ${r.mode}${r.config ? ` (${r.config})` : ' (from its veths)'}` : 'mode unknown';
  const store = join(r.dataDir, r.network);
  out.push(`Network "${r.network}", ${mode}; ${r.networkDirExists ? `addresses held in ${store}/` : `no address directory ${store}/`}`);
  for (const n of r.notes) out.push(`  ${n}`);

  out.push('', `Allocations (${r.allocations.length}):`);
  if (!r.allocations.length) out.push('  none');
  for (const a of r.allocations) {
    out.push(`  ${a.ip}  container ${a.containerId} ${a.ifname}`);
    const v = a.veth;
    const vethState = v.present ? `${v.up ? 'up' : 'down'}${v.mac ? `, ${v.mac}` : ''}${v.master ? `, port of ${v.master}` : ''}` : 'absent';
    out.push(`    veth        ${v.name} ${vethState}`);
    if (!a.routes.length) out.push(`    route       none through ${v.name}`);
    for (const rt of a.routes) out.push(`    route       ${routeText(rt)}`);
    if (!a.neighbours.length) out.push(`    neighbour   none for ${a.ip}${r.mode === 'bridge' ? '' : ` on ${v.name}`}`);
    for (const n of a.neighbours) out.push(`    neighbour   ${n.dst} dev ${n.dev}${n.lladdr ? ` lladdr ${n.lladdr}` : ''} ${n.state.join(',')}`);
    if (a.masquerade !== null) {
      const set = masqNames(r.network).pods[parseIp(a.ip)!.family];
      out.push(`    masquerade  ${a.masquerade ? `element of ${set}, tagged ${v.name}` : `no element in ${set}`}`);
    }
  }

  for (const b of r.bridges) {
    const what = b.present ? `${b.up ? 'up' : 'down'}${b.mac ? `, ${b.mac}` : ''}, ${b.addresses.join(' ') || 'no address'}; ports: ${b.ports.join(' ') || 'none'}` : 'absent';
    out.push('', `Bridge ${b.name}: ${what}`);
  }
  if (r.masquerade.checked && r.masquerade.table && r.masquerade.sets.length) {
    out.push('', `Masquerade (nftables table ${NFT_TABLE}): sets ${r.masquerade.sets.join(', ')}, ${r.masquerade.elements.length} element(s)`);
  }

  out.push('');
  if (!r.leaks.length) out.push('Leaks: none');
  else {
    out.push(`Leaks (${r.leaks.length}):`);
    for (const l of r.leaks) out.push(`  ${l.message}`);
    out.push(`A runtime's DEL of the attachment named removes what it left; GC removes what no valid attachment owns.`);
  }
  return out.map(safe).join('\n') + '\n';
}
