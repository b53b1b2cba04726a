// Addresses, subnets and ranges as BigInts, with host-local's semantics (plugins/ipam/host-local/
// backend/allocator/range.go): a range is [rangeStart, rangeEnd] inside a subnet, by default from
// network+1 to the broadcast-1 (IPv4) or the last address (IPv6); a range set is an ordered list
// of ranges of one family from which one address is allocated, round-robin.
import { CniError, Code } from '../errors.js';
import { formatCidr, formatValue, hostMask, networkOf, parseCidr, parseIp, type Family, type IP } from '../net/address.js';

/** One resolved range. All addresses are values of `family`. */
export interface Range {
  family: Family;
  /** The network address and prefix of the subnet. */
  network: bigint;
  prefix: number;
  /** Last address of the subnet (the broadcast address for IPv4). */
  last: bigint;
  start: bigint;
  end: bigint;
  gateway: bigint;
  /** Where the range came from in the config, for messages: "ipam.ranges[0][1]". */
  field: string;
}

export type RangeSet = Range[];

/** Parses a bare address or a CIDR (whose prefix is then ignored), as runtimes send requested IPs. */
export function parseIpOrCidr(s: string): IP | undefined {
  return s.includes('/') ? parseCidr(s)?.ip : parseIp(s);
}

// ---- ranges ----

export interface RawRange {
  subnet: string;
  rangeStart?: string | undefined;
  rangeEnd?: string | undefined;
  gateway?: string | undefined;
}

const invalid = (field: string, msg: string) => new CniError(Code.invalidConfig, `${field}: ${msg}`);

/**
 * Resolves one range from the config: checks the subnet and fills in host-local's defaults.
 * Throws CniError(invalidConfig) naming the field (`${field}.subnet`, `${field}.rangeStart`, …).
 */
export function resolveRange(raw: RawRange, field: string): Range {
  const cidr = parseCidr(raw.subnet);
  if (!cidr) throw invalid(`${field}.subnet`, `invalid CIDR ${JSON.stringify(raw.subnet)}`);
  const { family } = cidr.ip;
  const bits = family === 4 ? 32 : 128;
  const network = networkOf(cidr);
  if (network !== cidr.ip.value) {
    throw invalid(
      `${field}.subnet`,
      `${raw.subnet} has host bits set (the network address for /${cidr.prefix} is ${formatValue(family, network)})`,
    );
  }
  if (cidr.prefix > bits - 2) {
    throw invalid(`${field}.subnet`, `${raw.subnet} is too small to allocate from (/${bits - 2} is the smallest usable subnet)`);
  }
  const last = network | hostMask(family, cidr.prefix);
  const subnetText = formatCidr(family, network, cidr.prefix);
  const inSubnet = (name: 'rangeStart' | 'rangeEnd' | 'gateway'): bigint | undefined => {
    const s = raw[name];
    if (s === undefined) return undefined;
    const ip = parseIp(s);
    if (!ip) throw invalid(`${field}.${name}`, `invalid IP address ${JSON.stringify(s)}`);
    if (ip.family !== family || ip.value < network || ip.value > last) {
      throw invalid(`${field}.${name}`, `${s} is not in subnet ${subnetText}`);
    }
    return ip.value;
  };
  const gateway = inSubnet('gateway') ?? network + 1n;
  const start = inSubnet('rangeStart') ?? network + 1n;
  const end = inSubnet('rangeEnd') ?? (family === 4 ? last - 1n : last);
  if (start > end) {
    throw invalid(
      field,
      `rangeStart ${formatValue(family, start)} is after rangeEnd ${formatValue(family, end)}`,
    );
  }
  return { family, network, prefix: cidr.prefix, last, start, end, gateway, field };
}

/**
 * Resolves a range set and checks it: one family, no two ranges overlapping (host-local compares
 * the [rangeStart, rangeEnd] intervals, not the subnets, and so do we).
 */
export function resolveRangeSet(raws: RawRange[], field: string): RangeSet {
  if (raws.length === 0) throw invalid(field, 'a range set needs at least one range');
  const set = raws.map((r, i) => resolveRange(r, `${field}[${i}]`));
  const first = set[0]!;
  for (const r of set.slice(1)) {
    if (r.family !== first.family) {
      throw invalid(
        `${r.field}.subnet`,
        `IPv${r.family} subnet in a range set of IPv${first.family} (${first.field}); a range set holds one address family`,
      );
    }
  }
  checkNoOverlap(set);
  return set;
}

/** Throws if any two ranges (of the same family) share an address. */
export function checkNoOverlap(ranges: Range[]): void {
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.family === b.family && a.start <= b.end && b.start <= a.end) {
        throw invalid(b.field, `range ${rangeString(b)} overlaps ${a.field} (${rangeString(a)})`);
      }
    }
  }
}

export const rangeString = (r: Range) => `${formatValue(r.family, r.start)}-${formatValue(r.family, r.end)}`;

/** As host-local prints a range set in its messages: "10.0.0.1-10.0.0.254,10.0.1.1-10.0.1.254". */
export const rangeSetString = (set: RangeSet) => set.map(rangeString).join(',');

export const subnetString = (r: Range) => formatCidr(r.family, r.network, r.prefix);

/** The range of the set whose [rangeStart, rangeEnd] holds the address. */
export function rangeFor(set: RangeSet, ip: IP): Range | undefined {
  return set.find((r) => r.family === ip.family && ip.value >= r.start && ip.value <= r.end);
}

/** The range of the set whose subnet holds the address. */
export function subnetFor(set: RangeSet, ip: IP): Range | undefined {
  return set.find((r) => r.family === ip.family && ip.value >= r.network && ip.value <= r.last);
}

/**
 * Why an address inside a range cannot be handed out, or undefined if it can: the network
 * address, the IPv4 broadcast address and any gateway of the set are never allocated.
 */
export function reservedReason(set: RangeSet, r: Range, value: bigint): string | undefined {
  if (value === r.network) return `the network address of ${subnetString(r)}`;
  if (r.family === 4 && value === r.last) return `the broadcast address of ${subnetString(r)}`;
  const gw = set.find((o) => o.gateway === value && value >= o.network && value <= o.last);
  if (gw) return `the gateway of ${gw.field}`;
  return undefined;
}

/**
 * Candidate addresses of a range set, round-robin as host-local does: starting right after
 * `last` (the last address reserved from this set) when it lies in one of the set's ranges,
 * else at the first range's rangeStart; walking each range up to its rangeEnd, then on to the
 * next range (wrapping around) until every address was offered once. `last` itself comes last.
 * Reserved addresses (network, broadcast, gateways) are skipped.
 */
export function* candidates(set: RangeSet, last: IP | undefined): Generator<{ range: Range; value: bigint }> {
  let ri = 0;
  let v = set[0]!.start;
  const advance = () => {
    const r = set[ri]!;
    if (v >= r.end) {
      ri = (ri + 1) % set.length;
      v = set[ri]!.start;
    } else {
      v += 1n;
      // ::ffff:0:0/96 is skipped whole: the kernel and Go read each IPv4-mapped address as two
      // different ones, and the plugin's parser refuses them.
      if (r.family === 6 && v >> 32n === 0xffffn) {
        v = 0x10000n << 32n;
        if (v > r.end) {
          ri = (ri + 1) % set.length;
          v = set[ri]!.start;
        }
      }
    }
  };
  const lastRange = last ? set.findIndex((r) => r.family === last.family && last.value >= r.start && last.value <= r.end) : -1;
  if (last && lastRange >= 0) {
    ri = lastRange;
    v = last.value;
    advance();
  }
  const startRi = ri;
  const startV = v;
  do {
    const r = set[ri]!;
    if (reservedReason(set, r, v) === undefined) yield { range: r, value: v };
    advance();
  } while (ri !== startRi || v !== startV);
}
