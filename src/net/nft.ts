// Masquerade with nftables: one `nft -f -` process per call, in a table of the plugin's own,
// `inet vnet`, that nothing else touches. Per network and family: a set of pod addresses (one
// element per pod address, tagged with its host veth's name, so GC can tell strays) and a set of
// destinations not to masquerade; per network a base chain at postrouting with one rule a family
//     ip saddr @pods_N ip daddr != @excl_N masquerade
//     ip6 saddr @pods6_N ip6 daddr != @excl6_N masquerade
// which ADD rebuilds (idempotent, atomic) and which no pod's DEL removes. Why nftables rather than
// iptables: one atomic transaction per call instead of a process per rule, sets instead of a rule
// per pod, and a table of our own instead of edits to shared chains.
// Every line is built here from typed values (canonical addresses and CIDRs, our own names).
import { CniError, Code, firstLine } from '../errors.js';
import { sha1Hex } from '../hash.js';
import { runProcess, tool } from '../proc.js';
import type { Family } from './address.js';
import { toAddr, toMac, type Addr, type Cidr, type IfName, type Mac } from './values.js';

declare const brand: unique symbol;
/** One line of an nft script, made only by this file. */
export type NftLine = string & { readonly [brand]: 'NftLine' };

export const NFT_TABLE = 'inet vnet';

/** The names of a network's objects: a hash of the network name keeps them within nft's rules. */
export function masqNames(network: string) {
  const h = sha1Hex(network).slice(0, 10);
  return { chain: `masq_${h}`, pods: { 4: `pods_${h}`, 6: `pods6_${h}` }, exclude: { 4: `excl_${h}`, 6: `excl6_${h}` } } as const;
}

const line = (s: string) => s as NftLine;
const TYPE = { 4: 'ipv4_addr', 6: 'ipv6_addr' } as const;
const MATCH = { 4: 'ip', 6: 'ip6' } as const;

/**
 * The table, the network's sets of both families and its chain with one rule per family: created
 * or rebuilt, never duplicated. `refresh`: the families whose exclude set is refilled from
 * `exclude` (a pod's ADD refills only its own families, so a single-stack pod never empties the
 * other family's set).
 */
export function ensureMasquerade(network: string, exclude: readonly Cidr[], refresh: readonly Family[]): NftLine[] {
  const n = masqNames(network);
  const out = [line(`add table ${NFT_TABLE}`)];
  for (const f of [4, 6] as const) {
    out.push(line(`add set ${NFT_TABLE} ${n.pods[f]} { type ${TYPE[f]}; }`), line(`add set ${NFT_TABLE} ${n.exclude[f]} { type ${TYPE[f]}; flags interval; }`));
    if (!refresh.includes(f)) continue;
    const mine = exclude.filter((c) => c.family === f);
    out.push(line(`flush set ${NFT_TABLE} ${n.exclude[f]}`));
    if (mine.length) out.push(line(`add element ${NFT_TABLE} ${n.exclude[f]} { ${mine.map((c) => c.network).join(', ')} }`));
  }
  out.push(
    line(`add chain ${NFT_TABLE} ${n.chain} { type nat hook postrouting priority srcnat; policy accept; }`),
    line(`flush chain ${NFT_TABLE} ${n.chain}`),
    ...([4, 6] as const).map((f) => line(`add rule ${NFT_TABLE} ${n.chain} ${MATCH[f]} saddr @${n.pods[f]} ${MATCH[f]} daddr != @${n.exclude[f]} masquerade`)),
  );
  return out;
}

/**
 * A pod's element, tagged with its attachment's veth. `add element` of an address already in the
 * set keeps the old tag (a former holder's, after the address was handed out again): it is
 * ensured, deleted and added anew in one transaction, so the tag is always the current holder's.
 */
export function addPod(network: string, ip: Addr, tag: IfName): NftLine[] {
  const set = masqNames(network).pods[ip.family];
  return [
    line(`add element ${NFT_TABLE} ${set} { ${ip.ip} }`),
    line(`delete element ${NFT_TABLE} ${set} { ${ip.ip} }`),
    line(`add element ${NFT_TABLE} ${set} { ${ip.ip} comment "${tag}" }`),
  ];
}
/**
 * Removes a pod's element whether or not it (or its set) exists: a script is one transaction, and
 * one missing element would otherwise keep every other line of it from taking effect.
 */
export function delPod(network: string, ip: Addr): NftLine[] {
  const set = masqNames(network).pods[ip.family];
  return [
    line(`add table ${NFT_TABLE}`),
    line(`add set ${NFT_TABLE} ${set} { type ${TYPE[ip.family]}; }`),
    line(`add element ${NFT_TABLE} ${set} { ${ip.ip} }`),
    line(`delete element ${NFT_TABLE} ${set} { ${ip.ip} }`),
  ];
}

// ---- Azure's L2 rules (bridge mode with an uplink), in a table of their own: `bridge vnet` ----
//
// Azure's fabric takes frames from a VM only with its NIC's MAC, and sends it frames for a pod's
// address to that MAC. Azure's bridge mode therefore rewrites MACs with ebtables
// (network/bridge_networkclient_linux.go AddL2Rules, bridge_endpointclient_linux.go
// AddEndpointRules); vnet writes the same rules in nftables' bridge family, one transaction per
// call like the masquerade, with a map instead of a rule per pod. Per network:
//     prerouting: iifname UPLINK arp operation reply ether daddr set ff:ff:ff:ff:ff:ff
//                 iifname UPLINK ether daddr set ip daddr map @podmac_N     (and ip6, @podmac6_N)
//     postrouting: oifname UPLINK arp operation request arp daddr ip @podmac_N drop
//                 oifname UPLINK arp saddr ether set NIC_MAC; oifname UPLINK ether saddr set NIC_MAC
//     forward:    iifname UPLINK oifname UPLINK ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 drop
// Azure's fabric answers an ARP request for any address it knows, a pod on the asking node
// included, with its one MAC; Azure CNI therefore answers ARP for each of its pods itself
// (ebtables' arpreply, which nftables lacks). vnet keeps a request for one of the node's pods off
// the uplink instead (the map's keys are the node's pods), and the pod answers it on the bridge.
// The forward chain is vnet's own. The uplink has hairpin on (as Azure sets it) so that a frame
// kube-proxy DNATs on the bridge to another node goes back out, to a NIC's or the gateway's MAC.
// A broadcast or multicast that came in on the uplink and would go back out is a flood's copy:
// sent back, it would loop between nodes on any network that floods (Azure's fabric does not; a
// switch does). An unknown unicast cannot be told from a DNATed frame here (no FDB lookup in nft,
// no conntrack in the bridge family without nf_conntrack_bridge), nor by its MAC: a gateway's may
// be locally administered like a pod's. It goes back out, as on Azure.

export const L2_TABLE = 'bridge vnet';

export function l2Names(network: string) {
  const h = sha1Hex(network).slice(0, 10);
  return { pre: `l2pre_${h}`, post: `l2post_${h}`, fwd: `l2fwd_${h}`, map: { 4: `podmac_${h}`, 6: `podmac6_${h}` } } as const;
}

/**
 * An interface name in nft's double quotes. Its strings have no escape, and a name the kernel
 * takes may hold a `"` (and `;`, `{`, …): such a name is refused (code 7), before anything runs.
 */
function quotedIfName(name: IfName): string {
  if (name.includes('"')) throw new CniError(Code.invalidConfig, `interface ${JSON.stringify(name)}: a name with a double quote cannot be written in an nftables rule`);
  return `"${name}"`;
}

/** The table, the maps and the three chains of a network: created or rebuilt, never duplicated. */
export function ensureL2(network: string, uplink: IfName, nicMac: Mac): NftLine[] {
  const n = l2Names(network);
  const up = quotedIfName(uplink);
  const out = [line(`add table ${L2_TABLE}`)];
  for (const f of [4, 6] as const) out.push(line(`add map ${L2_TABLE} ${n.map[f]} { type ${TYPE[f]} : ether_addr; }`));
  const chain = (name: string, hook: string, priority: string, rules: string[]) => [
    line(`add chain ${L2_TABLE} ${name} { type filter hook ${hook} priority ${priority}; policy accept; }`),
    line(`flush chain ${L2_TABLE} ${name}`),
    ...rules.map((r) => line(`add rule ${L2_TABLE} ${name} ${r}`)),
  ];
  out.push(
    ...chain(n.pre, 'prerouting', 'dstnat', [
      `iifname ${up} arp operation reply ether daddr set ff:ff:ff:ff:ff:ff`,
      `iifname ${up} ether type ip ether daddr set ip daddr map @${n.map[4]}`,
      `iifname ${up} ether type ip6 ether daddr set ip6 daddr map @${n.map[6]}`,
    ]),
    ...chain(n.post, 'postrouting', 'srcnat', [
      `oifname ${up} arp operation request arp daddr ip @${n.map[4]} drop`,
      `oifname ${up} arp htype 1 arp hlen 6 arp saddr ether set ${nicMac}`,
      `oifname ${up} ether saddr set ${nicMac}`,
    ]),
    ...chain(n.fwd, 'forward', 'filter', [`iifname ${up} oifname ${up} ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 drop`]),
  );
  return out;
}

// A map refuses `add element` of a key it holds with another value, so, unlike a set element, a
// mapping is not replaced in one transaction: ADD first clears the address (clearPodMac, whose
// "No such file or directory" means there was nothing to clear), then adds; DEL and GC remove a
// mapping by its address and the MAC they know it has.

/** A pod's address mapped to its MAC, tagged with its veth. */
export function addPodMac(network: string, ip: Addr, mac: Mac, tag: IfName): NftLine[] {
  return [line(`add element ${L2_TABLE} ${l2Names(network).map[ip.family]} { ${ip.ip} comment "${tag}" : ${mac} }`)];
}

/** Deletes the address's mapping, whatever its MAC; fails with "No such file or directory" if there is none. */
export function clearPodMac(network: string, ip: Addr): NftLine[] {
  return [line(`delete element ${L2_TABLE} ${l2Names(network).map[ip.family]} { ${ip.ip} }`)];
}

/** Removes the mapping of `ip` to `mac` whether or not it (or its map) exists. */
export function delPodMac(network: string, ip: Addr, mac: Mac): NftLine[] {
  const map = l2Names(network).map[ip.family];
  return [
    line(`add table ${L2_TABLE}`),
    line(`add map ${L2_TABLE} ${map} { type ${TYPE[ip.family]} : ether_addr; }`),
    line(`add element ${L2_TABLE} ${map} { ${ip.ip} : ${mac} }`),
    line(`delete element ${L2_TABLE} ${map} { ${ip.ip} }`),
  ];
}

/** The network's address-to-MAC maps, both families, with their tags (none if the table does not exist). One process. */
export async function mappedPods(network: string): Promise<{ ip: Addr; mac: Mac; tag: string }[]> {
  const json = await listTable(L2_TABLE);
  if (!json) return [];
  const { map } = l2Names(network);
  const maps = (json.nftables ?? []).flatMap((x) => (x.map && (x.map.name === map[4] || x.map.name === map[6]) ? [x.map] : []));
  // An element is [key, value]; a tagged key is { elem: { val, comment } }.
  return maps.flatMap((m) =>
    (m.elem ?? []).flatMap((e) => {
      if (!Array.isArray(e) || e.length !== 2) return [];
      const k: { val?: unknown; comment?: unknown } = (e[0] as { elem?: { val?: unknown; comment?: unknown } }).elem ?? { val: e[0] };
      const ip = typeof k.val === 'string' ? toAddr(k.val) : undefined;
      const mac = typeof e[1] === 'string' ? toMac(e[1]) : undefined;
      return ip && mac ? [{ ip, mac, tag: typeof k.comment === 'string' ? k.comment : '' }] : [];
    }),
  );
}

/** What `nft -j list table` prints, as far as vnet reads it. */
interface Listing {
  nftables?: { set?: { name?: unknown; elem?: unknown[] }; map?: { name?: unknown; elem?: unknown[] } }[];
}

/** One of our tables as JSON, or undefined when it does not exist. One process. */
async function listTable(table: string): Promise<Listing | undefined> {
  const { code, stdout, stderr } = await runProcess([tool('nft'), '-j', 'list', 'table', ...table.split(' ')], '');
  if (code !== 0) {
    if (/No such file or directory/.test(stderr)) return undefined;
    throw new CniError(Code.io, `reading the nftables table ${table} failed: ${firstLine(stderr)}`);
  }
  try {
    return JSON.parse(stdout) as Listing;
  } catch {
    throw new CniError(Code.io, `reading the nftables table ${table} failed: nft printed no JSON`);
  }
}

/** Runs a script as one transaction; the failure's message, or undefined. */
export async function nftRun(lines: readonly NftLine[]): Promise<string | undefined> {
  const { code, stderr } = await runProcess([tool('nft'), '-f', '-'], lines.join('\n') + '\n');
  return code === 0 ? undefined : stderr.split('\n').filter(Boolean).slice(0, 2).join('; ') || `nft exited ${code}`;
}

/** A network's pod sets as nft lists them: each set's name and its elements with their tags. */
interface MasqTable {
  /** false: the table does not exist (no pod of any network is masqueraded). */
  table: boolean;
  sets: { name: string; elements: { ip: Addr; tag: string }[] }[];
}

/** The network's pod sets, both families, from one `nft -j list table inet vnet`. */
export async function readMasqTable(network: string): Promise<MasqTable> {
  const json = await listTable(NFT_TABLE);
  if (!json) return { table: false, sets: [] };
  const { pods } = masqNames(network);
  const sets = (json.nftables ?? []).flatMap((x) => (x.set && (x.set.name === pods[4] || x.set.name === pods[6]) ? [x.set] : []));
  return {
    table: true,
    sets: sets.map((set) => ({
      name: set.name as string,
      elements: (set.elem ?? []).flatMap((e) => {
        const v = (e as { elem?: { val?: unknown; comment?: unknown } }).elem ?? { val: e };
        const ip = typeof v.val === 'string' ? toAddr(v.val) : undefined;
        return ip ? [{ ip, tag: typeof v.comment === 'string' ? v.comment : '' }] : [];
      }),
    })),
  };
}

/** The network's masqueraded pods, both families, with their tags (none if the table does not exist). One process. */
export async function masqueradedPods(network: string): Promise<{ ip: Addr; tag: string }[]> {
  return (await readMasqTable(network)).sets.flatMap((s) => s.elements);
}
