// The address parser (src/net/address.ts) and the typed values made from it (src/net/values.ts),
// checked against two independent implementations on thousands of generated strings: node:net
// (isIP, BlockList) and the npm package ip-address. Valid IPv4 and IPv6 in many spellings
// (compressed anywhere, upper case, padded groups, an embedded dotted quad, prefix lengths) and
// near misses (leading zeros, zones, IPv4-mapped IPv6, octets out of range, groups too many or too
// few, stray characters, one character dropped, doubled or swapped).
//
// Where address.ts refuses what the oracles accept, it must be one of its documented refusals:
// a zone ("%eth0"), an IPv4-mapped IPv6 address (::ffff:0:0/96, in any spelling), or, in a
// CIDR, a prefix length with a leading zero (which Go's ParseCIDR takes). It never accepts what
// they refuse.
//
// The strings come from a seeded generator: a failing run prints its seed, and VNET_TEST_SEED=N
// replays it. No root, no build.
import net from 'node:net';
import { Address4, Address6 } from 'ip-address';
import { describe, expect, it, onTestFailed } from 'vitest';
import { Code } from '../src/errors.js';
import {
  bitsOf,
  canonicalIp,
  formatCidr,
  formatIp,
  formatValue,
  hostMask,
  networkOf,
  overlappingPair,
  parseCidr,
  parseIp,
  type Family,
} from '../src/net/address.js';
import { addrOf, cidrOf, dstOf, hostRoute, toAddr, toCidr, toDst } from '../src/net/values.js';

const SEED = process.env.VNET_TEST_SEED ? Number(process.env.VNET_TEST_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const N = 4000;

// ---------------------------------------------------------------------------------------------
// A seeded generator (mulberry32): each test draws from its own stream, so one replays alone.

class Rand {
  private a: number;
  constructor(seed: number, salt: string) {
    let h = seed ^ 0x9e3779b9;
    for (const ch of salt) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
    this.a = h >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** lo..hi, both included */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** Each test: its own stream, and the seed to replay it printed if it fails. */
function rand(salt: string): Rand {
  onTestFailed(() => {
    console.error(`address oracles: replay with VNET_TEST_SEED=${SEED} npx vitest run test/address-oracles.test.ts`);
  });
  return new Rand(SEED, salt);
}

// ---------------------------------------------------------------------------------------------
// Values and spellings

const octet = (r: Rand) => r.pick([0, 0, 1, 10, 127, 254, 255, r.int(256), r.int(256), r.int(256)]);
const group = (r: Rand) => (r.chance(0.45) ? 0 : r.pick([1, 0xffff, 0xfd00, 0xfe80, r.int(16), r.int(0x10000), r.int(0x10000)]));

function v4Value(r: Rand): bigint {
  let v = 0n;
  for (let i = 0; i < 4; i++) v = (v << 8n) | BigInt(octet(r));
  return v;
}
const dotted = (v: bigint) => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');

/** Eight groups: random, or with the shapes parsers get wrong (zero runs, mapped, compatible, SIIT). */
function v6Groups(r: Rand): number[] {
  const gs = Array.from({ length: 8 }, () => group(r));
  const v4 = () => {
    const v = v4Value(r);
    return [Number(v >> 16n), Number(v & 0xffffn)];
  };
  switch (r.int(8)) {
    case 0: // IPv4-mapped ::ffff:a.b.c.d
      return [0, 0, 0, 0, 0, 0xffff, ...v4()];
    case 1: // IPv4-compatible ::a.b.c.d
      return [0, 0, 0, 0, 0, 0, ...v4()];
    case 2: // SIIT ::ffff:0:a.b.c.d, which is not mapped
      return [0, 0, 0, 0, 0xffff, 0, ...v4()];
    case 3: {
      // a run of zeros somewhere
      const at = r.int(8);
      const len = r.between(1, 8 - at);
      gs.fill(0, at, at + len);
      return gs;
    }
    default:
      return gs;
  }
}
const valueOf6 = (gs: number[]) => gs.reduce((v, g) => (v << 16n) | BigInt(g), 0n);

function hex(r: Rand, g: number): string {
  let h = g.toString(16);
  if (r.chance(0.2)) h = '0'.repeat(r.int(5 - h.length)) + h; // padded: still at most four digits
  if (r.chance(0.25)) h = h.toUpperCase();
  else if (r.chance(0.1)) h = [...h].map((c) => (r.chance(0.5) ? c.toUpperCase() : c)).join('');
  return h;
}

/** One of the many ways to write these eight groups, all of them valid. */
function spell6(r: Rand, gs: number[]): string {
  const quad = r.chance(0.25);
  const tokens = (quad ? gs.slice(0, 6) : gs).map((g) => hex(r, g));
  if (quad) tokens.push(dotted((BigInt(gs[6]!) << 16n) | BigInt(gs[7]!)));
  // "::" may stand for any run of zero groups (one or more), before the dotted quad.
  const runs: [number, number][] = [];
  const slots = quad ? 6 : 8;
  for (let i = 0; i < slots; i++) for (let j = i + 1; j <= slots && gs[j - 1] === 0; j++) runs.push([i, j]);
  if (runs.length && r.chance(0.7)) {
    const [i, j] = r.pick(runs);
    return `${tokens.slice(0, i).join(':')}::${tokens.slice(j).join(':')}`;
  }
  return tokens.join(':');
}

/** A valid address of either family, and its value. */
function validAddress(r: Rand): { text: string; family: Family; value: bigint } {
  if (r.chance(0.35)) {
    const value = v4Value(r);
    return { text: dotted(value), family: 4, value };
  }
  const gs = v6Groups(r);
  return { text: spell6(r, gs), family: 6, value: valueOf6(gs) };
}

const STRAY = [' ', '\t', '\n', 'g', 'G', 'x', ':', '.', '/', '%', '[', ']', '+', '-', '_', '\u0000', '０', '١', 'é'];

/** A near miss: a valid address bent in one of the ways a parser may let through. */
function nearMiss(r: Rand): string {
  const a = validAddress(r);
  const s = a.text;
  const at = r.int(s.length + 1);
  switch (r.int(14)) {
    case 0: {
      // a leading zero on an octet (IPv4, or an embedded quad)
      const parts = s.split(/(?<=[.:])/);
      const idx = parts.findIndex((p) => /^\d{1,3}\.?$/.test(p) && s.includes('.'));
      if (idx < 0) return `0${s}`;
      parts[idx] = r.pick(['0', '00']) + parts[idx];
      return parts.join('');
    }
    case 1:
      return `${s}%${r.pick(['eth0', '1', 'lo', 'en0', '', '%', 'a b', 'eth0%1'])}`;
    case 2: // an octet out of range
      return s.includes('.') ? s.replace(/\d+$/, String(r.pick([256, 300, 999, 1000, 4294967295]))) : `${s.replace(/:?[0-9a-fA-F]*$/, '')}:10000`;
    case 3: // a group too many, or one too few without "::"
      return r.chance(0.5) ? `${s}:1` : s.includes('::') ? s.replace('::', ':') : s.replace(/^[^:.]*[:.]/, '');
    case 4: // a group or an octet of too many digits
      return s.includes(':') ? s.replace(/(^|:)([0-9a-fA-F]{1,4})(?=:|$)/, (_, sep: string, g: string) => sep + g.padStart(5, '0')) : s.replace(/\d+$/, (o) => o.padStart(4, '0'));
    case 5: // ":::" or a second "::"
      return r.chance(0.5) ? s.replace(/:/, ':::').replace('::::', ':::') : `${s.includes('::') ? s : `${s}::`}1::2`;
    case 6: // a stray character
      return s.slice(0, at) + r.pick(STRAY) + s.slice(at);
    case 7: // one character dropped
      return s.slice(0, Math.max(0, at - 1)) + s.slice(at);
    case 8: // one character doubled
      return s.slice(0, at) + (s[at] ?? s[0]) + s.slice(at);
    case 9: {
      // two neighbours swapped
      const i = Math.min(at, s.length - 2);
      return i < 0 ? s : s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2);
    }
    case 10: // a dotted quad where it may not be: not last, or with too few or too many parts
      return r.pick([`1.2.3.4:${s}`, `::1.2.3`, `::1.2.3.4.5`, `1::1.2.3.4:5`, `${dotted(v4Value(r))}.${octet(r)}`, `${octet(r)}.${octet(r)}.${octet(r)}`]);
    case 11: // hexadecimal, octal, or signed IPv4
      return r.pick([`0x${octet(r).toString(16)}.1.2.3`, `0${octet(r)}.1.2.3`, `+${dotted(v4Value(r))}`, `${dotted(v4Value(r))}.`, `.${dotted(v4Value(r))}`]);
    case 12: // brackets, as in a URL
      return `[${s}]`;
    default: // an IPv4-mapped address (refused, documented), in one of its spellings
      return spell6(r, [0, 0, 0, 0, 0, 0xffff, r.int(0x10000), r.int(0x10000)]);
  }
}

// ---------------------------------------------------------------------------------------------
// The oracles

interface Verdict {
  family: Family;
  value: bigint;
  /** ip-address's correctForm(): RFC 5952 */
  correct: string;
}

/** ip-address's reading of a bare address (no "/"), zone ignored. */
function ipAddress(s: string): (Verdict & { zone: string }) | undefined {
  if (s.includes('/')) return undefined;
  try {
    const a = new Address4(s);
    return { family: 4, value: a.bigInt(), correct: a.correctForm(), zone: '' };
  } catch {
    // not IPv4
  }
  try {
    const a = new Address6(s);
    return { family: 6, value: a.bigInt(), correct: a.correctForm(), zone: a.zone };
  } catch {
    return undefined;
  }
}

const isMapped = (v: Verdict) => v.family === 6 && v.value >> 32n === 0xffffn;

/**
 * What the oracles say of a bare address: node:net decides whether it is one (ip-address takes
 * any text after a "%" as a zone, node only sane ones); ip-address gives its value and form. The
 * two must agree on every string without a zone.
 */
function oracle(s: string): Verdict | undefined {
  const family = net.isIP(s);
  const ipa = ipAddress(s);
  if (!s.includes('%')) expect(ipa?.family ?? 0, `the oracles disagree on ${JSON.stringify(s)}`).toBe(family);
  if (family === 0) return undefined;
  expect(ipa, `ip-address refuses ${JSON.stringify(s)}, which node:net takes`).toBeDefined();
  return ipa;
}

type Refusal = 'zone' | 'IPv4-mapped';

/** Why address.ts may refuse an address the oracles accept: one of its documented refusals, or none. */
function documentedRefusal(s: string, v: Verdict): Refusal | undefined {
  if (s.includes('%') && oracle(s.slice(0, s.indexOf('%')))) return 'zone';
  if (isMapped(v)) return 'IPv4-mapped';
  return undefined;
}

/** Checks one string against the oracles; returns what address.ts made of it. */
function checkAddress(s: string, refused: Map<string, number>) {
  const ours = parseIp(s);
  const want = oracle(s);
  const what = JSON.stringify(s);
  if (!want) {
    expect(ours, `address.ts accepts ${what}, which node:net and ip-address refuse`).toBeUndefined();
    return undefined;
  }
  if (!ours) {
    const why = documentedRefusal(s, want);
    expect(why, `address.ts refuses ${what}, which the oracles read as ${want.correct}, for no documented reason`).toBeDefined();
    refused.set(why!, (refused.get(why!) ?? 0) + 1);
    return undefined;
  }
  expect(documentedRefusal(s, want), `address.ts accepts ${what}`).toBeUndefined();
  expect({ family: ours.family, value: ours.value }, what).toEqual({ family: want.family, value: want.value });
  return { ours, want };
}

// ---------------------------------------------------------------------------------------------

describe('an address is accepted exactly when node:net and ip-address accept it, but for a zone or an IPv4-mapped IPv6 address', () => {
  it(`agrees on ${N} valid spellings and ${N} near misses`, () => {
    const r = rand('accept');
    const refused = new Map<string, number>();
    let accepted = 0;
    let refusedByAll = 0;
    for (let i = 0; i < 2 * N; i++) {
      const s = i % 2 ? nearMiss(r) : validAddress(r).text;
      if (checkAddress(s, refused)) accepted++;
      else if (!oracle(s)) refusedByAll++;
    }
    // the generator reaches every case: accepted, refused by everyone, and each documented refusal
    expect(accepted).toBeGreaterThan(N / 2);
    expect(refusedByAll).toBeGreaterThan(N / 4);
    expect(refused.get('zone')).toBeGreaterThan(10);
    expect(refused.get('IPv4-mapped')).toBeGreaterThan(10);
  });

  it('each documented refusal, and leading zeros and spaces, which everyone refuses', () => {
    const cases: [string, Refusal | 'refused by all'][] = [
      ['fe80::1%eth0', 'zone'],
      ['::1.2.3.4%1', 'zone'],
      ['::ffff:1.2.3.4', 'IPv4-mapped'],
      ['::FFFF:102:304', 'IPv4-mapped'],
      ['0:0:0:0:0:ffff:0a00:0001', 'IPv4-mapped'],
      ['01.2.3.4', 'refused by all'],
      ['::ffff:01.2.3.4', 'refused by all'],
      [' 1.2.3.4', 'refused by all'],
    ];
    for (const [s, why] of cases) {
      expect(parseIp(s), s).toBeUndefined();
      const want = oracle(s);
      expect(want ? documentedRefusal(s, want) : 'refused by all', s).toBe(why);
    }
  });
});

describe('an accepted address prints in RFC 5952 form, as ip-address’s correctForm() and Go’s String()', () => {
  it(`prints ${N} generated addresses as the oracle does, and the printed form parses to the same value`, () => {
    const r = rand('print');
    const refused = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const s = validAddress(r).text;
      const got = checkAddress(s, refused);
      if (!got) continue;
      const text = formatIp(got.ours);
      expect(text, s).toBe(got.want.correct);
      expect(canonicalIp(s), s).toBe(text);
      expect(toAddr(s), s).toEqual({ family: got.want.family, ip: text });
      expect(addrOf('f', s, Code.invalidConfig).ip).toBe(text);
      expect(parseIp(text), text).toEqual(got.ours);
      expect(net.isIP(text), text).toBe(got.want.family);
    }
  });

  it('the first longest run of two or more zero groups is "::"; a lone zero group stays', () => {
    const cases: [string, string][] = [
      ['1:0:0:1:0:0:1:1', '1::1:0:0:1:1'],
      ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
      ['0:0:1:0:0:0:1:0', '0:0:1::1:0'],
      ['0:0:0:0:0:0:0:0', '::'],
    ];
    for (const [s, want] of cases) {
      expect(canonicalIp(s), s).toBe(want);
      expect(new Address6(s).correctForm(), s).toBe(want);
    }
  });
});

describe('an address’s value is a BigInt: printing any value and parsing it gives it back, but an IPv4-mapped one, which is refused', () => {
  it(`round-trips ${N} values of each family`, () => {
    const r = rand('values');
    let mapped = 0;
    for (let i = 0; i < N; i++) {
      const v4 = v4Value(r);
      const t4 = formatValue(4, v4);
      expect(t4).toBe(Address4.fromBigInt(v4).correctForm());
      expect(parseIp(t4)).toEqual({ family: 4, value: v4 });

      const v6 = r.chance(0.1) ? (0xffffn << 32n) | BigInt(r.int(2 ** 32)) : valueOf6(v6Groups(r));
      const t6 = formatValue(6, v6);
      expect(t6, v6.toString(16)).toBe(Address6.fromBigInt(v6).correctForm());
      expect(new Address6(t6).bigInt()).toBe(v6);
      if (v6 >> 32n === 0xffffn) {
        mapped++;
        expect(parseIp(t6), t6).toBeUndefined();
      } else {
        expect(parseIp(t6), t6).toEqual({ family: 6, value: v6 });
      }
    }
    expect(mapped).toBeGreaterThan(0);
  });

  it('the extremes of each family', () => {
    const max6 = (1n << 128n) - 1n;
    expect(formatValue(6, max6)).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    expect(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255')).toEqual({ family: 6, value: max6 });
    expect(formatValue(4, 0xffffffffn)).toBe('255.255.255.255');
    expect(formatValue(6, 0n)).toBe('::');
    expect(formatValue(4, 0n)).toBe('0.0.0.0');
  });
});

// ---------------------------------------------------------------------------------------------
// CIDRs

/** A prefix length as text: mostly in range, sometimes not, sometimes badly written. */
function prefixText(r: Rand, bits: number): string {
  const p = r.between(0, bits);
  switch (r.int(12)) {
    case 0:
      return String(r.between(bits + 1, 999));
    case 1:
      return `0${p}`; // Go's ParseCIDR takes leading zeros; address.ts does not
    case 2:
      return `00${p}`;
    case 3:
      return r.pick(['', '+24', ' 24', '24 ', '-1', '1e1', '0x10', '24/24', '٢٤', '4294967320']);
    default:
      return String(p);
  }
}

/** Go's ParseCIDR on the prefix (dtoi): decimal digits only, the value within the family's bits. */
const goPrefix = (p: string, bits: number) => (/^\d+$/.test(p) && Number(p) <= bits ? Number(p) : undefined);

describe('a CIDR is an address, "/", and a prefix length within the family’s bits, as Go’s ParseCIDR reads it', () => {
  it(`agrees with the oracles on ${N} generated CIDRs, and its network and last address are ip-address’s start and end`, () => {
    const r = rand('cidr');
    const refused = new Map<string, number>();
    let accepted = 0;
    let hostBits = 0;
    for (let i = 0; i < N; i++) {
      const a = r.chance(0.8) ? validAddress(r).text : nearMiss(r);
      const bits = a.includes(':') ? 128 : 32;
      const s = `${a}/${prefixText(r, bits)}`;
      const ours = parseCidr(s);
      const slash = s.indexOf('/');
      const addrPart = s.slice(0, slash);
      const p = s.slice(slash + 1);
      const want = oracle(addrPart);
      const prefix = want && goPrefix(p, bitsOf(want.family));
      const what = JSON.stringify(s);
      if (!want || prefix === undefined) {
        expect(ours, `address.ts accepts ${what}, which Go's ParseCIDR refuses`).toBeUndefined();
        continue;
      }
      const why = documentedRefusal(addrPart, want) ?? (/^0\d/.test(p) ? 'prefix with leading zeros' : undefined);
      if (!ours) {
        expect(why, `address.ts refuses ${what} for no documented reason`).toBeDefined();
        refused.set(why!, (refused.get(why!) ?? 0) + 1);
        continue;
      }
      expect(why, `address.ts accepts ${what}`).toBeUndefined();
      accepted++;
      expect({ family: ours.ip.family, value: ours.ip.value, prefix: ours.prefix }, what).toEqual({ family: want.family, value: want.value, prefix });

      // ip-address reads the same CIDR, once its prefix is written without leading zeros
      const ipa = want.family === 4 ? new Address4(`${addrPart}/${prefix}`) : new Address6(`${addrPart}/${prefix}`);
      const network = networkOf(ours);
      const last = network | hostMask(ours.ip.family, ours.prefix);
      expect(network, what).toBe(ipa.startAddress().bigInt());
      expect(last, what).toBe(ipa.endAddress().bigInt());
      expect(hostMask(ours.ip.family, ours.prefix)).toBe((1n << BigInt(bitsOf(ours.ip.family) - prefix)) - 1n);

      // values.ts: canonical text, the network, and a route destination only without host bits
      const c = toCidr(s)!;
      expect(c, what).toEqual({
        family: want.family,
        ip: want.correct,
        prefix,
        text: `${want.correct}/${prefix}`,
        network: `${ipa.startAddress().correctForm()}/${prefix}`,
      });
      expect(formatCidr(ours.ip.family, network, prefix)).toBe(c.network);
      expect(cidrOf('f', s, Code.invalidConfig)).toEqual(c);
      if (network === want.value) {
        expect(toDst(s), what).toEqual(c);
      } else {
        hostBits++;
        expect(toDst(s), what).toBeUndefined();
        expect(() => dstOf('routes', s, Code.invalidConfig), what).toThrow(`route destination ${what} has host bits set (the network is ${c.network})`);
      }
    }
    // most are valid (80% of addresses, 2 in 3 prefixes written plainly): a generator that stopped
    // making valid CIDRs would show here
    expect(accepted).toBeGreaterThan(N / 3);
    expect(hostBits).toBeGreaterThan(N / 4);
    for (const why of ['zone', 'IPv4-mapped', 'prefix with leading zeros']) expect(refused.get(why), why).toBeGreaterThan(5);
  });

  it('a refused CIDR, address or route destination is a CniError with the caller’s code, naming the field and the text', () => {
    for (const s of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '/24', 'fe80::/64%eth0', '::ffff:10.0.0.0/120']) {
      expect(toCidr(s), s).toBeUndefined();
      expect(() => cidrOf('subnet', s, Code.invalidConfig), s).toThrow(`subnet: invalid CIDR ${JSON.stringify(s)} (expected address/prefix)`);
      expect(() => dstOf('dst', s, Code.invalidConfig), s).toThrow(`dst: invalid CIDR ${JSON.stringify(s)} (expected address/prefix)`);
    }
    expect(() => addrOf('gateway', '10.0.0.1/24', Code.invalidConfig)).toThrow('gateway: invalid IP address "10.0.0.1/24"');
    let err: unknown;
    try {
      addrOf('gateway', 'fe80::1%eth0', Code.decode);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'CniError', code: Code.decode, message: 'gateway: invalid IP address "fe80::1%eth0"' });
  });

  it('the host route to an address is its /32 or /128', () => {
    const r = rand('host');
    for (let i = 0; i < N / 4; i++) {
      const a = validAddress(r);
      const t = toAddr(a.text);
      if (!t) continue; // IPv4-mapped
      const h = hostRoute(t);
      expect(h.text).toBe(`${t.ip}/${bitsOf(a.family)}`);
      expect(h.network).toBe(h.text);
    }
  });
});

describe('the addresses of a CIDR are its network up to network|hostMask: exactly those node’s BlockList and ip-address’s isInSubnet count in it', () => {
  it(`agrees on ${N} (CIDR, address) pairs, most near the CIDR’s edges`, () => {
    const r = rand('contains');
    let inside = 0;
    let outside = 0;
    for (let i = 0; i < N; i++) {
      const a = validAddress(r);
      const c = parseCidr(`${a.text}/${r.between(0, bitsOf(a.family))}`);
      if (!c) continue; // IPv4-mapped
      const bits = bitsOf(c.ip.family);
      const lo = networkOf(c);
      const hi = lo | hostMask(c.ip.family, c.prefix);
      const max = (1n << BigInt(bits)) - 1n;
      const near = r.pick([lo, hi, lo - 1n, hi + 1n, lo + BigInt(r.int(4)), hi - BigInt(r.int(4)), a.value]);
      const x = r.chance(0.8) && near >= 0n && near <= max ? near : a.family === 4 ? v4Value(r) : valueOf6(v6Groups(r));
      if (c.ip.family === 6 && x >> 32n === 0xffffn) continue; // node's BlockList reads those as IPv4
      const ours = lo <= x && x <= hi;
      const type = c.ip.family === 4 ? 'ipv4' : 'ipv6';
      const list = new net.BlockList();
      list.addSubnet(formatValue(c.ip.family, lo), c.prefix, type);
      const xText = formatValue(c.ip.family, x);
      const what = `${xText} in ${formatCidr(c.ip.family, c.ip.value, c.prefix)}`;
      expect(list.check(xText, type), what).toBe(ours);
      const A = c.ip.family === 4 ? Address4 : Address6;
      expect(new A(xText).isInSubnet(new A(`${formatIp(c.ip)}/${c.prefix}`)), what).toBe(ours);
      if (ours) inside++;
      else outside++;
    }
    expect(inside).toBeGreaterThan(N / 4);
    expect(outside).toBeGreaterThan(N / 10);
  });
});

describe('overlappingPair names two CIDRs that share an address, the earlier first, exactly when some two do', () => {
  /** Does any address lie in both? As ip-address sees it: one network holds the other. */
  function overlap(a: string, b: string): boolean {
    const A = a.includes(':') ? Address6 : Address4;
    const B = b.includes(':') ? Address6 : Address4;
    if (A !== B) return false;
    const x = new A(a);
    const y = new B(b);
    return x.isInSubnet(y) || y.isInSubnet(x);
  }

  it(`agrees with a pairwise check by ip-address on ${N / 2} lists`, () => {
    const r = rand('overlap');
    let found = 0;
    let none = 0;
    for (let i = 0; i < N / 2; i++) {
      // small spaces, so that lists overlap often; both families; now and then a text that is no CIDR
      const list = Array.from({ length: r.between(0, 8) }, () => {
        if (r.chance(0.05)) return r.pick(['10.0.0.0', 'junk', '10.0.0.0/33', '::ffff:10.0.0.0/120', 'fe80::/64%eth0']);
        // hosts at the edges of blocks too, and single addresses: /32 and /128
        const host = r.pick([0, 0xff, 0x7f, 0x80, r.int(0x100)]);
        if (r.chance(0.6)) return `10.0.${r.int(4)}.${host}/${r.pick([r.between(14, 32), 32])}`;
        return `fd00::${r.int(4).toString(16)}:${(host * 0x101).toString(16)}/${r.pick([r.between(100, 128), 128])}`;
      });
      const valid = list.map((t) => parseCidr(t) !== undefined);
      const pairs: [number, number][] = [];
      for (let x = 0; x < list.length; x++) for (let y = x + 1; y < list.length; y++) if (valid[x] && valid[y] && overlap(list[x]!, list[y]!)) pairs.push([x, y]);
      const got = overlappingPair(list);
      const what = JSON.stringify(list);
      if (!pairs.length) {
        none++;
        expect(got, what).toBeUndefined();
        continue;
      }
      found++;
      expect(got, what).toBeDefined();
      expect(pairs.some(([x, y]) => list[x] === got![0] && list[y] === got![1]), `${what} gave ${JSON.stringify(got)}`).toBe(true);
    }
    expect(found).toBeGreaterThan(N / 20);
    expect(none).toBeGreaterThan(N / 20);
  });
});
