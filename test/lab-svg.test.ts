// The lab's pictures (scripts/lab/svg.ts, scripts/lab/picture.ts), on made-up state: no root, no
// namespaces. Names come from the kernel, so the writer is given hostile ones; what it writes must
// be well-formed XML with every text escaped. Then the pictures in the repository, as
// `scripts/lab.sh readme` last wrote them, and where the bench writes its table.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dnatRules, nsBox, routeText, trace, type NsState, type RouteGet } from '../scripts/lab/picture.js';
import { esc, pictureSvg, xmlProblems, type Picture } from '../scripts/lab/svg.js';
import { withBenchTable } from '../scripts/bench-table.mjs';

const HOSTILE = `x<y>&"'\u001b]]>\u0000\ufffe`;

/** A transparent-mode lab, one node, one pod, the VNet: as read from the namespaces. */
function transparentState(hostVeth = 'azvfc487180941'): Record<string, NsState> {
  const none = { fdb: [], dnat: [] };
  return {
    vnet: {
      ns: 'vnet', ...none,
      nsids: { 0: 'node0' },
      links: [
        { ifindex: 1, ifname: 'lo' },
        { ifindex: 2, ifname: 'n0', link_index: 2, link_netnsid: 0, address: '12:34:56:78:9a:bc', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet', local: '10.220.2.1', prefixlen: 24, scope: 'global' }] },
        // The outside world is not drawn: neither is the link to it, nor its route.
        { ifindex: 3, ifname: 'out0', link_index: 2, link_netnsid: 9, linkinfo: { info_kind: 'veth' } },
      ],
      routes: [{ dst: '10.220.2.4', dev: 'n0' }, { dst: '10.220.2.32/27', gateway: '10.220.2.4', dev: 'n0' }, { dst: '203.0.113.0/24', dev: 'out0' }],
      neigh: [{ dst: '10.220.2.4', dev: 'n0', lladdr: '0a:00:00:00:00:04', state: ['REACHABLE'] }],
    },
    node0: {
      ns: 'node0', ...none,
      nsids: { 0: 'vnet', 1: 'pod' },
      links: [
        { ifindex: 1, ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
        { ifindex: 2, ifname: 'eth0', link_index: 2, link_netnsid: 0, address: '0a:00:00:00:00:04', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet', local: '10.220.2.4', prefixlen: 24, scope: 'global' }] },
        { ifindex: 3, ifname: hostVeth, link_index: 2, link_netnsid: 1, address: 'aa:aa:aa:aa:aa:aa', linkinfo: { info_kind: 'veth' } },
      ],
      routes: [{ dst: 'default', gateway: '10.220.2.1', dev: 'eth0' }, { dst: '10.220.2.32', dev: hostVeth }],
      neigh: [{ dst: '10.220.2.1', dev: 'eth0', lladdr: '12:34:56:78:9a:bc', state: ['REACHABLE'] }],
    },
    pod: {
      ns: 'pod', ...none,
      nsids: { 0: 'node0' },
      links: [
        { ifindex: 1, ifname: 'lo' },
        { ifindex: 2, ifname: 'eth0', link_index: 3, link_netnsid: 0, address: '02:8c:46:17:c7:8a', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet', local: '10.220.2.32', prefixlen: 24, scope: 'global' }] },
      ],
      routes: [{ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' }, { dst: '169.254.1.1', dev: 'eth0' }],
      neigh: [{ dst: '169.254.1.1', dev: 'eth0', lladdr: 'aa:aa:aa:aa:aa:aa', state: ['PERMANENT'] }],
    },
  };
}

function picture(states: Record<string, NsState>, title = 'transparent'): Picture {
  return {
    title,
    notes: ['made up'],
    vnet: { ...nsBox(states, 'vnet', 'VNet'), columns: true },
    nodes: [nsBox(states, 'node0', 'node0')],
    pods: [nsBox(states, 'pod', 'pod')],
    path: [
      { ns: 'pod', out: 'eth0', bridges: [], text: 'pod: out' },
      { ns: 'node0', in: states.node0!.links[2]!.ifname, out: 'eth0', bridges: [], text: 'node0: routed' },
    ],
  };
}

describe('esc: text for SVG', () => {
  it('escapes markup, and shows characters XML cannot hold instead of writing them', () => {
    expect(esc(`a<b>&"'`)).toBe('a&lt;b&gt;&amp;&quot;&apos;');
    expect(esc('tab\there\u001b[31m\u0085')).toBe('tab\\x09here\\x1b[31m\\x85');
    expect(esc('\ufffe\ud800x')).toBe('\\ufffe\\ud800x');
    expect(esc('é1 azv…')).toBe('é1 azv…');
  });
});

describe('pictureSvg: a lab drawn from what was read', () => {
  it('writes well-formed XML with the real names, the /32 routes, the gateway and its permanent entry', () => {
    const svg = pictureSvg(picture(transparentState()));
    expect(xmlProblems(svg)).toEqual([]);
    for (const s of ['azvfc487180941', 'aa:aa:aa:aa:aa:aa', '10.220.2.32/32 dev azvfc487180941', 'default via 169.254.1.1 dev eth0', '169.254.1.1 lladdr aa:aa:aa:aa:aa:aa PERMANENT', '10.220.2.32/27 via 10.220.2.4 dev n0']) {
      expect(svg).toContain(s);
    }
    // The link to a namespace not drawn, and its route, are left out.
    expect(svg).not.toContain('out0');
    // Two veth lines (the pod's eth0 to its host veth, the node's eth0 to n0); the path's two hops numbered.
    expect(svg.match(/<line /g)?.length).toBe(2);
    expect(svg.match(/<circle /g)?.length).toBe(2);
  });

  it('escapes every text: a hostile interface name comes out as text, never as markup', () => {
    const states = transparentState(HOSTILE);
    const p = picture(states, `title ${HOSTILE}`);
    p.notes.push(HOSTILE);
    p.path[1]!.text = `hop ${HOSTILE}`;
    const svg = pictureSvg(p);
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).not.toContain(HOSTILE);
    expect(svg).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe]/);
    expect(svg).toContain('x&lt;y&gt;&amp;&quot;&apos;\\x1b]]&gt;\\x00\\ufffe');
    // The hostile veth is still drawn, linked and on the path.
    expect(svg.match(/<line /g)?.length).toBe(2);
  });
});

describe('xmlProblems: the check the pictures pass', () => {
  it.each([
    ['<svg><g></svg>', '</svg> closes <g>'],
    ['<svg>a & b</svg>', "'&' is not an entity"],
    ['<svg>&bogus;</svg>', "'&bogus;'"],
    ['<svg>&#1;</svg>', "'&#1;'"],
    ['<svg a="1" a="2"/>', 'attribute a twice'],
    ['<svg a="<"/>', "a '<' in text"],
    ['<svg a=1/>', 'not an attribute'],
    ['<svg/><svg/>', '2 root elements'],
    ['<svg>\u0001</svg>', 'U+1 is not allowed'],
    ['<svg>', 'not closed: <svg>'],
    ['text<svg/>', 'text outside the root element'],
  ])('%j: %s', (xml, problem) => {
    expect(xmlProblems(xml).join('\n')).toContain(problem);
  });
  it('takes what XML allows', () => {
    expect(xmlProblems(`<?xml version="1.0"?>\n<!-- c --><svg a='>' b="&amp;&#x41;&#65;"><t>x &lt; y</t><u/></svg>\n`)).toEqual([]);
  });
});

describe('trace: a packet through the tables', () => {
  it('follows route lookups, neighbour entries and veth peers to the pod that holds the address', () => {
    const states = transparentState();
    const calls: string[] = [];
    const routeGet: RouteGet = (ns, dst, src, iif) => {
      calls.push(`${ns} ${dst}${iif ? ` from ${src} iif ${iif}` : ''}`);
      if (ns === 'vnet') return { dst, gateway: '10.220.2.4', dev: 'n0' };
      if (ns === 'node0') return { dst, dev: 'azvfc487180941' };
      return { type: 'local', dst, dev: 'lo' };
    };
    const hops = trace(states, routeGet, 'vnet', '203.0.113.10', '10.220.2.32', (ns) => ns);
    expect(hops.map((h) => [h.ns, h.in, h.out])).toEqual([
      ['vnet', undefined, 'n0'],
      ['node0', 'eth0', 'azvfc487180941'],
      ['pod', 'eth0', undefined],
    ]);
    expect(hops[0]!.text).toBe('vnet: 10.220.2.32 via 10.220.2.4 dev n0; 10.220.2.4 is 0a:00:00:00:00:04 (REACHABLE)');
    expect(hops[2]!.text).toBe('pod: in by eth0: 10.220.2.32 is its own address: delivered');
    expect(calls).toEqual(['vnet 10.220.2.32', 'node0 10.220.2.32 from 203.0.113.10 iif eth0', 'pod 10.220.2.32 from 203.0.113.10 iif eth0']);
  });

  it('crosses a bridge by its forwarding database, after the uplink rewrite, and stops where the tables say nothing', () => {
    const states: Record<string, NsState> = {
      node: {
        ns: 'node', nsids: { 0: 'pod' }, routes: [], neigh: [],
        links: [
          { ifindex: 2, ifname: 'eth0', master: 'azure0', linkinfo: { info_kind: 'veth' } },
          { ifindex: 3, ifname: 'azure0', linkinfo: { info_kind: 'bridge' } },
          { ifindex: 4, ifname: 'azv1', master: 'azure0', link_index: 2, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
        ],
        fdb: [{ mac: '02:00:00:00:00:01', ifname: 'azv1', master: 'azure0', flags: [], state: '' }],
        dnat: dnatRules([
          { map: { name: 'podmac_x', elem: [[{ elem: { val: '10.0.0.2', comment: 'azv1' } }, '02:00:00:00:00:01']] } },
          { rule: { expr: [{ match: { left: { meta: { key: 'iifname' } }, right: 'eth0' } }, { mangle: { key: { payload: { protocol: 'ether', field: 'daddr' } }, value: { map: { key: { payload: { protocol: 'ip', field: 'daddr' } }, data: '@podmac_x' } } } }] } },
        ]),
      },
      pod: { ns: 'pod', nsids: {}, routes: [], neigh: [], fdb: [], dnat: [], links: [{ ifindex: 2, ifname: 'eth0', link_index: 4, link_netnsid: 0, linkinfo: { info_kind: 'veth' } }] },
    };
    // Entered as the VNet would send it: by the uplink, to the node's MAC.
    const start: NsState = {
      ns: 'vnet', nsids: { 0: 'node' }, fdb: [], dnat: [], routes: [],
      links: [{ ifindex: 9, ifname: 'n0', link_index: 2, link_netnsid: 0, linkinfo: { info_kind: 'veth' } }],
      neigh: [{ dst: '10.0.0.2', dev: 'n0', lladdr: '00:0d:3a:00:00:04', state: ['REACHABLE'] }],
    };
    const routeGet: RouteGet = (ns, dst) => (ns === 'vnet' ? { dst, dev: 'n0' } : ns === 'pod' ? { type: 'local', dst } : undefined);
    const hops = trace({ ...states, vnet: start }, routeGet, 'vnet', '10.0.0.9', '10.0.0.2', (ns) => ns);
    expect(hops.map((h) => [h.ns, h.in, h.out, h.bridges])).toEqual([
      ['vnet', undefined, 'n0', []],
      ['node', 'eth0', 'azv1', ['azure0']],
      ['pod', 'eth0', undefined, []],
    ]);
    expect(hops[1]!.text).toContain('nftables sets the MAC to 02:00:00:00:00:01');
    // Without the forwarding entry, the bridge would flood: the path ends there, saying so.
    states.node!.fdb = [];
    const cut = trace({ ...states, vnet: start }, routeGet, 'vnet', '10.0.0.9', '10.0.0.2', (ns) => ns);
    expect(cut).toHaveLength(2);
    expect(cut[1]!.text).toContain('has no entry for 02:00:00:00:00:01');
  });

  it('writes routes as ip does, a host route with its /32', () => {
    expect(routeText({ dst: '10.220.2.32', dev: 'azv1' })).toBe('10.220.2.32/32 dev azv1');
    expect(routeText({ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' })).toBe('default via 169.254.1.1 dev eth0');
    expect(routeText({ type: 'blackhole', dst: '10.0.0.0/8' })).toBe('blackhole 10.0.0.0/8');
  });
});

describe('the pictures in the repository (scripts/lab.sh readme)', () => {
  const dir = join(import.meta.dirname, '..', 'scripts', 'lab', 'pictures');
  const want: Record<string, string[]> = {
    transparent: ['169.254.1.1 lladdr aa:aa:aa:aa:aa:aa PERMANENT', '/32 dev azv', 'default via 169.254.1.1 dev eth0'],
    bridge: ['azure0', '00:0d:3a:00:02:04', 'PERMANENT'],
    kubenet: ['cbr0', '10.244.0.1/24', 'PERMANENT'],
    overlay: ['10.244.', '169.254.1.1', '/32 dev azv'],
  };
  it('one per layout, each well-formed XML holding its layout\'s real names, and each in README.md', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    expect(readdirSync(dir).sort()).toEqual(Object.keys(want).map((l) => `${l}.svg`).sort());
    for (const [layout, names] of Object.entries(want)) {
      const svg = readFileSync(join(dir, `${layout}.svg`), 'utf8');
      expect(xmlProblems(svg), layout).toEqual([]);
      for (const n of names) expect(svg, `${layout}: ${n}`).toContain(n);
      expect(svg, layout).toContain('is its own address: delivered');
      expect(readme).toContain(`(scripts/lab/pictures/${layout}.svg)`);
    }
  });
});

describe('scripts/bench.mjs --readme: its table goes into scripts/README.md', () => {
  it('replaces the block, and refuses a file without one', () => {
    const text = 'a\n<!-- bench -->\nold\ntable\n<!-- /bench -->\nb\n';
    expect(withBenchTable(text, '| new |\n')).toBe('a\n<!-- bench -->\n| new |\n<!-- /bench -->\nb\n');
    expect(() => withBenchTable('no block `<!-- bench -->` here\n', 'x')).toThrow(/no <!-- bench -->/);
  });
  it('scripts/README.md has the block, and README.md none', () => {
    const root = join(import.meta.dirname, '..');
    expect(() => withBenchTable(readFileSync(join(root, 'scripts', 'README.md'), 'utf8'), 'x')).not.toThrow();
    expect(readFileSync(join(root, 'README.md'), 'utf8')).not.toContain('<!-- bench -->');
  });
});
