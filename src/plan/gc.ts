// GC as a plan: what a network owns on the node is read (its veths by their alias, and the
// entries the mode keys by pod: the bridge's neighbour entries, masquerade and MAC DNAT
// elements), and everything no valid attachment owns becomes a removal step. The mode says
// what it reads (modes.ts); execute.ts's executeAll runs the plan past every failure.
import type { Attachment } from '../config/attachments.js';
import type { NetConf } from '../config/netconf.js';
import type { IpCmd } from '../net/command.js';
import { ipJson, type LinkRow, type NeighRow } from '../net/ip.js';
import { L2_TABLE, NFT_TABLE, delPod, delPodMac, mappedPods, masqueradedPods } from '../net/nft.js';
import { ifNameProblem, toAddr, type Addr, type IfName, type Mac } from '../net/values.js';
import { aliasAttachment } from './names.js';
import type { Plan, Step } from './plan.js';

/** What a network owns on the node, each entry with the veth name that marks it as an attachment's. */
export interface Owned {
  /** With the attachment and pod MAC its alias names, unless the kernel cut the alias. */
  veths: { name: string; attachment?: Attachment; podMac?: Mac }[];
  /** The bridge's neighbour entries, with the MAC they point at (bridge mode). */
  neighbours: { ip: Addr; mac: string }[];
  masq: { ip: Addr; tag: string }[];
  macDnat: { ip: Addr; mac: Mac; tag: string }[];
  /** What could not be read, for GC to report after removing the rest. */
  unread: string[];
}

/** Which of the network's entries a mode keys by pod, and so reads. */
interface OwnedKinds {
  neighboursOn?: IfName;
  masq: boolean;
  macDnat: boolean;
}

export async function readOwned(conf: NetConf, kinds: OwnedKinds): Promise<Owned> {
  const unread: string[] = [];
  const read = <T>(p: Promise<T[]>): Promise<T[]> => p.catch((e: Error) => (unread.push(e.message), []));
  const [[links = [], neighs = []], masq, macDnat] = await Promise.all([
    ipJson(kinds.neighboursOn ? ['link show', 'neigh show'] : ['link show']).catch((e: Error) => (unread.push(e.message), [])),
    kinds.masq ? read(masqueradedPods(conf.name)) : [],
    kinds.macDnat ? read(mappedPods(conf.name)) : [],
  ]);
  const veths = (links as LinkRow[]).flatMap((l) => {
    const a = aliasAttachment(conf.name, l.ifalias);
    // A cut alias still marks the veth as this network's, but no longer names the attachment.
    return a ? [a.cut ? { name: l.ifname } : { name: l.ifname, attachment: { containerId: a.containerId, ifname: a.ifname }, podMac: a.podMac }] : [];
  });
  const neighbours = (neighs as NeighRow[]).flatMap((n) => {
    const ip = n.dev === kinds.neighboursOn && n.lladdr && n.dst ? toAddr(n.dst) : undefined;
    return ip ? [{ ip, mac: n.lladdr! }] : [];
  });
  return { veths, neighbours, masq, macDnat, unread };
}

/** The removals of what no valid attachment (by its veth's name) owns, and what cannot be removed, with why. */
export function gcPlan(conf: NetConf, owned: Owned, valid: ReadonlySet<string>): { plan: Plan; unremovable: string[] } {
  const unremovable: string[] = [];
  const stale = owned.veths.filter((v) => !valid.has(v.name));
  const names: IfName[] = [];
  for (const v of stale) {
    // A name read back from the kernel is outside text too.
    const why = ifNameProblem(v.name);
    if (why) unremovable.push(`cannot delete link ${JSON.stringify(v.name)}: ${why}`);
    else names.push(v.name as IfName);
  }
  const staleMacs = new Set<string>(stale.flatMap((v) => (v.podMac ? [v.podMac] : [])));
  const neighbours = owned.neighbours.filter((n) => staleMacs.has(n.mac));
  const masq = owned.masq.filter((e) => !valid.has(e.tag));
  const macDnat = owned.macDnat.filter((e) => !valid.has(e.tag));
  const br = conf.bridge.name;
  const steps: Step[] = [];
  const host = { side: 'node', lifecycle: 'attachment' } as const;
  if (names.length) steps.push({ ...host, say: `GC: deleting the veths of attachments no longer valid: ${names.join(', ')}`, ip: names.map((n): IpCmd => ['link', 'del', 'dev', n]) });
  if (neighbours.length) {
    steps.push({ ...host, say: `GC: deleting their neighbour entries on ${br}: ${neighbours.map((n) => n.ip.ip).join(', ')}`, ip: neighbours.map((n): IpCmd => ['neigh', 'del', n.ip.ip, 'dev', br]) });
  }
  // Each kind's strays in one transaction of its own: each removal works whether or not the
  // element is still there (a DEL racing this GC).
  if (masq.length) {
    steps.push({ ...host, alone: true, say: `GC: removing masquerade elements ${masq.map((e) => `${e.ip.ip} (${e.tag || 'untagged'})`).join(', ')} (nftables table ${NFT_TABLE})`, nft: masq.flatMap((e) => delPod(conf.name, e.ip)) });
  }
  if (macDnat.length) {
    steps.push({ ...host, alone: true, say: `GC: removing MAC DNAT rules ${macDnat.map((e) => `${e.ip.ip} -> ${e.mac} (${e.tag || 'untagged'})`).join(', ')} (nftables table ${L2_TABLE})`, nft: macDnat.flatMap((e) => delPodMac(conf.name, e.ip, e.mac)) });
  }
  return { plan: { netnsPath: '', steps }, unremovable };
}
