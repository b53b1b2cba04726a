import { describe, expect, it } from 'vitest';
import { CniError, Code } from '../src/errors.js';
import { parseIpamConfig, parseIpamLocation } from '../src/ipam/config.js';
import { formatIp, parseCidr, parseIp, type IP } from '../src/net/address.js';
import {
  candidates,
  rangeFor,
  rangeSetString,
  resolveRange,
  resolveRangeSet,
  type RangeSet,
} from '../src/ipam/range.js';

const ip = (s: string): IP => {
  const p = parseIp(s);
  if (!p) throw new Error(`bad test IP ${s}`);
  return p;
};

/** The first `n` candidates, as text. */
function walk(set: RangeSet, last: string | undefined, n = 1000): string[] {
  const out: string[] = [];
  for (const c of candidates(set, last === undefined ? undefined : ip(last))) {
    out.push(formatIp({ family: c.range.family, value: c.value }));
    if (out.length >= n) break;
  }
  return out;
}

/** The CniError a function throws. */
function errorOf(f: () => unknown): CniError {
  try {
    f();
  } catch (err) {
    if (err instanceof CniError) return err;
    throw err;
  }
  throw new Error('expected a CniError');
}

const conf = (ipam: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: 'net1',
  type: 'vnet',
  ipam: { type: 'vnet-ipam', ...ipam },
  ...extra,
});

describe('addresses are parsed strictly and printed as Go (and so host-local) prints them', () => {
  it('parses IPv4 and IPv6, and rejects prefixes, zones, junk and IPv4-mapped IPv6', () => {
    expect(parseIp('10.0.0.1')).toEqual({ family: 4, value: 0x0a000001n });
    expect(parseIp('fd00::1')).toEqual({ family: 6, value: (0xfd00n << 112n) | 1n });
    const bad = ['10.0.0.1/24', '10.0.0', '010.0.0.1', '256.0.0.1', ' 10.0.0.1', '10.0.0.1 ', '10.0.0.1\n', '1.2.3.4.5', '1..2.3', '+1.2.3.4', '0x1.2.3.4', '１.2.3.4'];
    bad.push('fd00::1%eth0', 'fe80::1%1', 'fd00::1::2', ':::', ':1', '1:', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2:3:4:5:6:7:8', 'fd000::1', 'fd00:g::1');
    bad.push('::ffff:1.2.3.4', '::ffff:a01:203', '::1.2.3', '1.2.3.4::', '::01.2.3.4', '', '::/0', '[::1]');
    for (const b of bad) expect(parseIp(b), b).toBeUndefined();
    const good: [string, string][] = [
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
      ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
      ['::1.2.3.4', '::102:304'],
      ['FE80::1234:5678:9ABC', 'fe80::1234:5678:9abc'],
      ['0.0.0.0', '0.0.0.0'],
      ['255.255.255.255', '255.255.255.255'],
    ];
    for (const [input, want] of good) expect(formatIp(ip(input)), input).toBe(want);
  });

  it('prints IPv6 in RFC 5952 form: lowercase, the first longest zero run as ::, never a single group', () => {
    const cases: [string, string][] = [
      ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
      ['fd00:0:0:1:0:0:0:1', 'fd00:0:0:1::1'],
      ['fd00:0:0:1:1:0:0:1', 'fd00::1:1:0:0:1'],
      ['fd00:1:0:1:0:1:0:1', 'fd00:1:0:1:0:1:0:1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['fd00:0:0:0:0:0:0:0', 'fd00::'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    ];
    for (const [input, want] of cases) expect(formatIp(ip(input)), input).toBe(want);
    expect(formatIp(ip('10.1.2.3'))).toBe('10.1.2.3');
  });

  it('parses CIDRs, keeping the address as given', () => {
    expect(parseCidr('10.0.0.5/24')).toEqual({ ip: ip('10.0.0.5'), prefix: 24 });
    expect(parseCidr('fd00::/64')).toEqual({ ip: ip('fd00::'), prefix: 64 });
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/ 8', 'fd00::/129', 'x/8']) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });
});

describe('a range defaults like host-local: gateway .1, from network+1 to broadcast-1 (IPv4) or the last address (IPv6)', () => {
  it('IPv4 /24', () => {
    const r = resolveRange({ subnet: '10.0.0.0/24' }, 'r');
    expect(rangeSetString([r])).toBe('10.0.0.1-10.0.0.254');
    expect(formatIp({ family: 4, value: r.gateway })).toBe('10.0.0.1');
  });

  it('IPv6 /120', () => {
    const r = resolveRange({ subnet: 'fd00::/120' }, 'r');
    expect(rangeSetString([r])).toBe('fd00::1-fd00::ff');
    expect(formatIp({ family: 6, value: r.gateway })).toBe('fd00::1');
  });

  it('explicit rangeStart, rangeEnd and gateway are kept', () => {
    const r = resolveRange({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20', gateway: '10.0.0.254' }, 'r');
    expect(rangeSetString([r])).toBe('10.0.0.10-10.0.0.20');
    expect(formatIp({ family: 4, value: r.gateway })).toBe('10.0.0.254');
  });

  it('a /30 and a /126 are the smallest allowed', () => {
    expect(rangeSetString([resolveRange({ subnet: '10.0.0.0/30' }, 'r')])).toBe('10.0.0.1-10.0.0.2');
    expect(rangeSetString([resolveRange({ subnet: 'fd00::/126' }, 'r')])).toBe('fd00::1-fd00::3');
  });
});

describe('invalid ranges are rejected with code 7, naming the field', () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['an invalid CIDR', { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.1.0/40' }]] }, 'ipam.ranges[0][1].subnet', /invalid CIDR/],
    ['host bits set', { ranges: [[{ subnet: '10.0.0.1/24' }]] }, 'ipam.ranges[0][0].subnet', /host bits set.*10\.0\.0\.0/],
    ['a /31', { ranges: [[{ subnet: '10.0.0.0/31' }]] }, 'ipam.ranges[0][0].subnet', /too small/],
    ['a /32', { ranges: [[{ subnet: '10.0.0.0/32' }]] }, 'ipam.ranges[0][0].subnet', /too small/],
    ['a /127', { ranges: [[{ subnet: 'fd00::/127' }]] }, 'ipam.ranges[0][0].subnet', /too small/],
    ['a /128', { ranges: [[{ subnet: 'fd00::1/128' }]] }, 'ipam.ranges[0][0].subnet', /too small|host bits/],
    ['rangeStart outside the subnet', { ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.1.5' }]] }, 'ipam.ranges[0][0].rangeStart', /not in subnet 10\.0\.0\.0\/24/],
    ['rangeEnd outside the subnet', { ranges: [[{ subnet: '10.0.0.0/24', rangeEnd: '10.0.1.5' }]] }, 'ipam.ranges[0][0].rangeEnd', /not in subnet/],
    ['gateway outside the subnet', { ranges: [[{ subnet: '10.0.0.0/24', gateway: '10.0.1.1' }]] }, 'ipam.ranges[0][0].gateway', /not in subnet/],
    ['gateway of the other family', { ranges: [[{ subnet: '10.0.0.0/24', gateway: 'fd00::1' }]] }, 'ipam.ranges[0][0].gateway', /not in subnet/],
    ['an invalid rangeStart', { ranges: [[{ subnet: '10.0.0.0/24', rangeStart: 'ten' }]] }, 'ipam.ranges[0][0].rangeStart', /invalid IP/],
    ['rangeStart after rangeEnd', { ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.50', rangeEnd: '10.0.0.10' }]] }, 'ipam.ranges[0][0]', /rangeStart 10\.0\.0\.50 is after rangeEnd 10\.0\.0\.10/],
    ['mixed families in one set', { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] }, 'ipam.ranges[0][1].subnet', /one address family/],
    ['overlapping ranges in one set', { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/25' }]] }, 'ipam.ranges[0][1]', /overlaps ipam\.ranges\[0\]\[0\]/],
    ['overlapping ranges across sets', { ranges: [[{ subnet: '10.0.0.0/16' }], [{ subnet: '10.0.5.0/24' }]] }, 'ipam.ranges[1][0]', /overlaps ipam\.ranges\[0\]\[0\]/],
    ['an empty range set', { ranges: [[]] }, 'ipam.ranges[0]', /at least one range/],
    ['no ranges at all', { ranges: [] }, 'ipam.ranges', /at least one range set/],
    ['a subnet that is not a string', { ranges: [[{ subnet: 10 }]] }, 'ipam.ranges[0][0].subnet', /must be a string \(got 10\)/],
    ['a missing subnet', { ranges: [[{ gateway: '10.0.0.1' }]] }, 'ipam.ranges[0][0].subnet', /missing/],
    ['a legacy subnet with host bits', { subnet: '10.0.0.1/24' }, 'ipam.subnet', /host bits/],
    ['a legacy rangeStart without subnet', { rangeStart: '10.0.0.5', ranges: [[{ subnet: '10.0.0.0/24' }]] }, 'ipam.rangeStart', /only allowed with ipam.subnet/],
    ['a legacy subnet overlapping ranges', { subnet: '10.0.0.0/24', ranges: [[{ subnet: '10.0.0.0/24' }]] }, 'ipam.ranges[0][0]', /overlaps ipam\.subnet|overlaps ipam/],
    ['a route with an invalid dst', { ranges: [[{ subnet: '10.0.0.0/24' }]], routes: [{ dst: '0.0.0.0' }] }, 'ipam.routes[0].dst', /invalid CIDR/],
    ['a route with an invalid gw', { ranges: [[{ subnet: '10.0.0.0/24' }]], routes: [{ dst: '0.0.0.0/0', gw: 'x' }] }, 'ipam.routes[0].gw', /invalid IP/],
  ];
  for (const [what, ipam, field, msg] of cases) {
    it(what, () => {
      const err = errorOf(() => parseIpamConfig(conf(ipam)));
      expect(err.code).toBe(Code.invalidConfig);
      expect(err.message.startsWith(`${field}: `), err.message).toBe(true);
      expect(err.message).toMatch(msg);
    });
  }

  it('a missing ipam section and a bad network name', () => {
    expect(errorOf(() => parseIpamConfig({ name: 'n' })).message).toBe('ipam: missing');
    const err = errorOf(() => parseIpamConfig(conf({ subnet: '10.0.0.0/24' }, { name: '../etc' })));
    expect(err.code).toBe(Code.invalidConfig);
    expect(err.message).toMatch(/^name: invalid network name/);
    expect(errorOf(() => parseIpamLocation({ name: 'a/b', ipam: {} })).message).toMatch(/^name: /);
  });

  it('requested addresses that are not addresses', () => {
    const base = { ranges: [[{ subnet: '10.0.0.0/24' }]] };
    expect(errorOf(() => parseIpamConfig(conf(base, { runtimeConfig: { ips: ['10.0.0.x'] } }))).message).toMatch(
      /^runtimeConfig\.ips\[0\]: invalid IP/,
    );
    expect(errorOf(() => parseIpamConfig(conf(base, { args: { cni: { ips: ['nope'] } } }))).message).toMatch(/^args\.cni\.ips\[0\]/);
    const env = errorOf(() => parseIpamConfig(conf(base), new Map([['IP', '10.0.0.5,bad']])));
    expect(env.code).toBe(Code.invalidEnv);
    expect(env.message).toMatch(/^CNI_ARGS IP: invalid IP address "bad"/);
  });
});

describe('the config resolves range sets, routes, dataDir and requested addresses', () => {
  it('a dual-stack config gives two range sets, defaults dataDir', () => {
    const cfg = parseIpamConfig(
      conf({
        ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.1.0/24' }], [{ subnet: 'fd00::/64' }]],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
      }),
    );
    expect(cfg.name).toBe('net1');
    expect(cfg.dataDir).toBe('/var/lib/cni/networks');
    expect(cfg.rangeSets.map(rangeSetString)).toEqual(['10.0.0.1-10.0.0.254,10.0.1.1-10.0.1.254', 'fd00::1-fd00::ffff:ffff:ffff:ffff']);
    expect(cfg.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }]);
  });

  it("host-local's legacy single range comes first, as range set 0", () => {
    const cfg = parseIpamConfig(conf({ subnet: '10.1.0.0/24', rangeStart: '10.1.0.100', ranges: [[{ subnet: 'fd00::/64' }]], dataDir: '/d' }));
    expect(cfg.rangeSets.map(rangeSetString)).toEqual(['10.1.0.100-10.1.0.254', 'fd00::1-fd00::ffff:ffff:ffff:ffff']);
    expect(cfg.rangeSets[0]![0]!.field).toBe('ipam');
    expect(cfg.dataDir).toBe('/d');
  });

  it('requested addresses come from CNI_ARGS IP (comma-separated), args.cni.ips and runtimeConfig.ips, CIDR or bare, without duplicates', () => {
    const cfg = parseIpamConfig(
      conf({ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/64' }]] }, {
        args: { cni: { ips: ['fd00::5'] } },
        runtimeConfig: { ips: ['10.0.0.7/24', 'fd00::5/64'] },
      }),
      new Map([['IP', '10.0.0.7,10.0.0.8']]),
    );
    expect(cfg.requested.map((r) => `${formatIp(r.ip)} ${r.source}`)).toEqual([
      '10.0.0.7 CNI_ARGS IP',
      '10.0.0.8 CNI_ARGS IP',
      'fd00::5 args.cni.ips[0]',
    ]);
  });

  it('nulls count as absent, as in Go', () => {
    const cfg = parseIpamConfig(conf({ ranges: [[{ subnet: '10.0.0.0/24', gateway: null }]], routes: null, dataDir: null }));
    expect(cfg.dataDir).toBe('/var/lib/cni/networks');
    expect(cfg.routes).toEqual([]);
  });
});

describe('containment: an address belongs to the range whose [rangeStart, rangeEnd] holds it', () => {
  const set = resolveRangeSet(
    [
      { subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20' },
      { subnet: '10.0.1.0/24' },
    ],
    's',
  );
  it('inside, at both ends, outside, other family', () => {
    expect(rangeFor(set, ip('10.0.0.10'))?.field).toBe('s[0]');
    expect(rangeFor(set, ip('10.0.0.20'))?.field).toBe('s[0]');
    expect(rangeFor(set, ip('10.0.1.254'))?.field).toBe('s[1]');
    expect(rangeFor(set, ip('10.0.0.9'))).toBeUndefined();
    expect(rangeFor(set, ip('10.0.0.21'))).toBeUndefined();
    expect(rangeFor(set, ip('10.0.1.255'))).toBeUndefined();
    expect(rangeFor(set, ip('fd00::1'))).toBeUndefined();
  });
});

describe('iteration is round-robin after the last reserved address, skipping network, broadcast and gateway, wrapping around the set', () => {
  it('IPv4: without a cursor it starts at rangeStart and skips the gateway', () => {
    const set = resolveRangeSet([{ subnet: '10.0.0.0/29' }], 's');
    expect(walk(set, undefined)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });

  it('IPv4: after the cursor, wrapping, the cursor itself last', () => {
    const set = resolveRangeSet([{ subnet: '10.0.0.0/29' }], 's');
    expect(walk(set, '10.0.0.4')).toEqual(['10.0.0.5', '10.0.0.6', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(walk(set, '10.0.0.6')).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });

  it('a cursor outside the set (say, the config changed) restarts at the first rangeStart', () => {
    const set = resolveRangeSet([{ subnet: '10.0.0.0/29' }], 's');
    expect(walk(set, '192.168.0.1')).toEqual(walk(set, undefined));
    expect(walk(set, 'fd00::1')).toEqual(walk(set, undefined));
  });

  it('network and broadcast are skipped even when rangeStart/rangeEnd include them; a custom gateway is skipped', () => {
    const set = resolveRangeSet([{ subnet: '10.0.0.0/29', rangeStart: '10.0.0.0', rangeEnd: '10.0.0.7', gateway: '10.0.0.6' }], 's');
    expect(walk(set, undefined)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']);
  });

  it('multiple ranges: on to the next range at rangeEnd, back to the first after the last', () => {
    const set = resolveRangeSet(
      [
        { subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.11' },
        { subnet: '10.0.1.0/24', rangeStart: '10.0.1.10', rangeEnd: '10.0.1.11' },
      ],
      's',
    );
    expect(walk(set, '10.0.0.11')).toEqual(['10.0.1.10', '10.0.1.11', '10.0.0.10', '10.0.0.11']);
    expect(walk(set, '10.0.1.11')).toEqual(['10.0.0.10', '10.0.0.11', '10.0.1.10', '10.0.1.11']);
  });

  it('IPv6: the last address is usable (no broadcast), the network address and gateway are not', () => {
    const set = resolveRangeSet([{ subnet: 'fd00::/125' }], 's');
    expect(walk(set, undefined)).toEqual(['fd00::2', 'fd00::3', 'fd00::4', 'fd00::5', 'fd00::6', 'fd00::7']);
    expect(walk(set, 'fd00::7')).toEqual(['fd00::2', 'fd00::3', 'fd00::4', 'fd00::5', 'fd00::6', 'fd00::7']);
  });

  it('IPv6: a huge range is walked lazily, across a group boundary', () => {
    const set = resolveRangeSet([{ subnet: 'fd00::/64' }], 's');
    expect(walk(set, 'fd00::fffe', 3)).toEqual(['fd00::ffff', 'fd00::1:0', 'fd00::1:1']);
    expect(walk(set, 'fd00::ffff:ffff:ffff:ffff', 2)).toEqual(['fd00::2', 'fd00::3']);
  });
});

describe('requested addresses cost linear time, however many the runtime sends', () => {
  it('200,000 distinct runtimeConfig.ips are read in one pass (the old pairwise check took minutes), duplicates dropped', () => {
    const ips = Array.from({ length: 200_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const conf = { cniVersion: '1.0.0', name: 'many', ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.0.0.0/8' }]] }, runtimeConfig: { ips: [...ips, ...ips] } };
    const cfg = parseIpamConfig(conf, new Map());
    expect(cfg.requested).toHaveLength(200_000);
    expect(cfg.requested[199_999]!.source).toBe('runtimeConfig.ips[199999]');
  });
});

describe('the walk never offers an IPv4-mapped IPv6 address (::ffff:0:0/96): the kernel and Go read each as two', () => {
  it('a range across the block goes from just below it to just above it, and wraps as before', () => {
    const set = resolveRangeSet([{ subnet: '::/64', rangeStart: '::fffe:ffff:fffe', rangeEnd: '::1:0:0:1' }], 's');
    expect(walk(set, undefined)).toEqual(['::fffe:ffff:fffe', '::fffe:ffff:ffff', '::1:0:0:0', '::1:0:0:1']);
    expect(walk(set, '::fffe:ffff:ffff')).toEqual(['::1:0:0:0', '::1:0:0:1', '::fffe:ffff:fffe', '::fffe:ffff:ffff']);
  });
  it('a range that ends inside the block moves on to the next range', () => {
    // ::fffe:0:0/95 ends at ::ffff:ffff:ffff, inside the block
    const set = resolveRangeSet([{ subnet: '::fffe:0:0/95', rangeStart: '::fffe:ffff:ffff' }, { subnet: 'fd00::/126' }], 's');
    expect(walk(set, undefined)).toEqual(['::fffe:ffff:ffff', 'fd00::2', 'fd00::3']); // fd00::1 is the gateway
  });
});
