// The one address library of the code base: IPv4 and IPv6 text to BigInt values and back,
// strictly. Parsing follows Go's net.ParseIP (what host-local and every reference plugin accept:
// no zone, no surrounding space, no leading zeros in IPv4) and refuses more: IPv4-mapped IPv6
// (IPv4 to Go, IPv6 to the kernel: one address, two meanings), and in a CIDR a prefix length
// with a leading zero. Printing is Go's String(), which is RFC 5952 for IPv6 and what host-local
// names its files with.

export type Family = 4 | 6;

export interface IP {
  family: Family;
  value: bigint;
}

export interface IpNet {
  ip: IP;
  prefix: number;
}

export const bitsOf = (family: Family) => (family === 4 ? 32 : 128);

const OCTET = /^(0|[1-9]\d{0,2})$/;
const GROUP = /^[0-9a-fA-F]{1,4}$/;

function parse4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!OCTET.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

/** The 16-bit groups of one side of "::", a trailing dotted quad counting as two. */
function groups(side: string, last: boolean): number[] | undefined {
  if (side === '') return [];
  const parts = side.split(':');
  const out: number[] = [];
  for (const [i, p] of parts.entries()) {
    if (last && i === parts.length - 1 && p.includes('.')) {
      const v4 = parse4(p);
      if (v4 === undefined) return undefined;
      out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else if (GROUP.test(p)) {
      out.push(parseInt(p, 16));
    } else {
      return undefined;
    }
  }
  return out;
}

function parse6(s: string): bigint | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = groups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  const n = head.length + tail.length;
  // "::" stands for at least one zero group; without it there are exactly eight.
  if (halves.length === 2 ? n > 7 : n !== 8) return undefined;
  const all = [...head, ...Array<number>(8 - n).fill(0), ...tail];
  return all.reduce((v, g) => (v << 16n) | BigInt(g), 0n);
}

/** A bare IPv4 or IPv6 address (no prefix, no zone), or undefined. */
export function parseIp(s: string): IP | undefined {
  if (typeof s !== 'string' || s.length > 45) return undefined;
  if (!s.includes(':')) {
    const v = parse4(s);
    return v === undefined ? undefined : { family: 4, value: v };
  }
  const value = parse6(s);
  if (value === undefined || value >> 32n === 0xffffn) return undefined;
  return { family: 6, value };
}

/** "address/prefix"; the address keeps its host bits (see `networkOf`). */
export function parseCidr(s: string): IpNet | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bitsOf(ip.family)) return undefined;
  return { ip, prefix };
}

export function hostMask(family: Family, prefix: number): bigint {
  return (1n << BigInt(bitsOf(family) - prefix)) - 1n;
}

export function networkOf(c: IpNet): bigint {
  return c.ip.value & ~hostMask(c.ip.family, c.prefix);
}

/**
 * Two of these CIDRs (given as text) that share an address, the earlier one first, or undefined:
 * sorted by family and start, each is compared with the widest end seen before it (n log n, for
 * lists of any length), so the pair named is the first found in that order, not in the input's.
 */
export function overlappingPair(texts: readonly string[]): [string, string] | undefined {
  const spans = texts.flatMap((text, i) => {
    const c = parseCidr(text);
    if (!c) return [];
    const lo = networkOf(c);
    return [{ text, i, family: c.ip.family, lo, hi: lo | hostMask(c.ip.family, c.prefix) }];
  });
  spans.sort((a, b) => a.family - b.family || (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : a.i - b.i));
  let widest: (typeof spans)[number] | undefined;
  for (const s of spans) {
    if (widest && widest.family === s.family && s.lo <= widest.hi) return widest.i < s.i ? [widest.text, s.text] : [s.text, widest.text];
    if (!widest || widest.family !== s.family || s.hi > widest.hi) widest = s;
  }
  return undefined;
}

/**
 * Canonical text: dotted quad for IPv4; RFC 5952 for IPv6 (lowercase, no leading zeros, the first
 * longest run of two or more zero groups shortened to "::").
 */
export function formatIp(ip: IP): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const gs: number[] = [];
  for (let i = 7; i >= 0; i--) gs.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (gs[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && gs[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(gs);
  return `${hex(gs.slice(0, bestStart))}::${hex(gs.slice(bestStart + bestLen))}`;
}

export const formatValue = (family: Family, value: bigint) => formatIp({ family, value });

export function formatCidr(family: Family, value: bigint, prefix: number): string {
  return `${formatValue(family, value)}/${prefix}`;
}

/** The canonical form of an address string, or undefined if it is not one. */
export function canonicalIp(s: string): string | undefined {
  const ip = parseIp(s);
  return ip && formatIp(ip);
}
