// Masquerade with nftables: one `nft -f -` process per call, in a table of the plugin's own,
// `inet vnet`, that nothing else touches. Per network: a set of pod addresses (one element per
// attachment, tagged with its host veth's name, so GC can tell strays), a set of destinations
// not to masquerade, and a base chain at postrouting with the one rule
//     ip saddr @pods_N ip daddr != @excl_N masquerade
// which ADD rebuilds (idempotent, atomic) and which no pod's DEL removes. Why nftables rather than
// iptables: one atomic transaction per call instead of a process per rule, sets instead of a rule
// per pod, and a table of our own instead of edits to shared chains.
// Every line is built here from typed values (canonical addresses and CIDRs, our own names).
import { createHash } from 'node:crypto';
import { CniError, Code, firstLine } from '../cni/errors.js';
import { runProcess } from '../proc.js';
import { toAddr, type Addr, type Cidr, type IfName } from './values.js';

declare const brand: unique symbol;
/** One line of an nft script, made only by this file. */
export type NftLine = string & { readonly [brand]: 'NftLine' };

export const NFT_TABLE = 'inet vnet';

/** The names of a network's objects: a hash of the network name keeps them within nft's rules. */
export function masqNames(network: string) {
  const h = createHash('sha1').update(network).digest('hex').slice(0, 10);
  return { chain: `masq_${h}`, pods: `pods_${h}`, exclude: `excl_${h}` };
}

const line = (s: string) => s as NftLine;

/** The table, the network's sets and its chain with its one rule: created or rebuilt, never duplicated. */
export function ensureMasquerade(network: string, exclude: readonly Cidr[]): NftLine[] {
  const n = masqNames(network);
  return [
    line(`add table ${NFT_TABLE}`),
    line(`add set ${NFT_TABLE} ${n.pods} { type ipv4_addr; }`),
    line(`add set ${NFT_TABLE} ${n.exclude} { type ipv4_addr; flags interval; }`),
    line(`flush set ${NFT_TABLE} ${n.exclude}`),
    ...(exclude.length ? [line(`add element ${NFT_TABLE} ${n.exclude} { ${exclude.map((c) => c.network).join(', ')} }`)] : []),
    line(`add chain ${NFT_TABLE} ${n.chain} { type nat hook postrouting priority srcnat; policy accept; }`),
    line(`flush chain ${NFT_TABLE} ${n.chain}`),
    line(`add rule ${NFT_TABLE} ${n.chain} ip saddr @${n.pods} ip daddr != @${n.exclude} masquerade`),
  ];
}

export const addPod = (network: string, ip: Addr, tag: IfName): NftLine[] => [
  line(`add element ${NFT_TABLE} ${masqNames(network).pods} { ${ip.ip} comment "${tag}" }`),
];
export const delPod = (network: string, ip: Addr): NftLine[] => [line(`delete element ${NFT_TABLE} ${masqNames(network).pods} { ${ip.ip} }`)];

/** Runs a script as one transaction; the failure's message, or undefined. */
export async function nftRun(lines: readonly NftLine[]): Promise<string | undefined> {
  const { code, stderr } = await runProcess(['nft', '-f', '-'], lines.join('\n') + '\n');
  return code === 0 ? undefined : stderr.split('\n').filter(Boolean).slice(0, 2).join('; ') || `nft exited ${code}`;
}

/** The network's masqueraded pods with their tags (none if the set does not exist). One process. */
export async function masqueradedPods(network: string): Promise<{ ip: Addr; tag: string }[]> {
  const { code, stdout, stderr } = await runProcess(['nft', '-j', 'list', 'set', ...NFT_TABLE.split(' '), masqNames(network).pods], '');
  if (code !== 0) {
    if (/No such file or directory/.test(stderr)) return [];
    throw new CniError(Code.io, `reading the nftables set of network ${network} failed: ${firstLine(stderr)}`);
  }
  const json = JSON.parse(stdout) as { nftables?: { set?: { elem?: unknown[] } }[] };
  const elems = json.nftables?.find((x) => x.set)?.set?.elem ?? [];
  return elems.flatMap((e) => {
    const v = (e as { elem?: { val?: unknown; comment?: unknown } }).elem ?? { val: e };
    const ip = typeof v.val === 'string' ? toAddr(v.val) : undefined;
    return ip ? [{ ip, tag: typeof v.comment === 'string' ? v.comment : '' }] : [];
  });
}
