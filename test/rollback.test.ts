// A failed ADD leaves nothing behind. VNET_TEST_FAIL_AT=N makes the plugin fail (a CniError, not
// a kill) at its N-th crash point (src/crash.ts): every boundary where IPAM's store or the
// datapath changes, on the node and in the pod. Each walk fails ADD at point 1, 2, … until ADD
// succeeds. After each failure: the error is the spec's JSON on stdout, and the node's and the
// pod's namespaces (links, addresses, routes of every table, permanent neighbours, the nftables
// ruleset) and IPAM's store are compared with what they were just before the call; then the
// runtime's DEL (the spec has it follow a failed ADD) exits 0 and leaves them so.
//
// Nothing of the attachment may remain: no veth, route, neighbour entry, set or map element, no
// address file or index entry of its container. Shared objects (steps of lifecycle "shared") are
// ensured, never undone, so the first ADD on a node may leave them, each either absent or whole,
// exactly as a successful ADD and DEL leave it:
//   transparent mode   none
//   kubenet bridge     the bridge with the pods' gateway addresses; the masquerade table
//                      (inet vnet: chain, rules, sets), its pod sets empty
//   Azure's bridge     the bridge; the uplink moved onto it (its addresses and routes with it);
//                      the L2 rules' table (bridge vnet), its MAC DNAT maps empty
// The first walk runs where those already exist (one pod added and deleted first): there a failed
// ADD must leave the node exactly as it was. The second runs each point on a fresh node.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostVethName } from '../src/plan/names.js';
import { Lab, cniEnv, type Ran } from './helpers/lab.js';

const lab = new Lab();
afterAll(() => lab.cleanup());

// ---------------------------------------------------------------------------------------------
// What a namespace holds, as sorted lines per kind. Left out: what the kernel changes on its own
// schedule (operstate, carrier flags, address lifetimes, DAD's tentative flag, rule handles and
// counters), its own IPv6 link-local and multicast addressing, which comes with a link's
// carrier, and its subnet-router anycast routes, which come with the forwarding sysctl (a shared
// setting ADD turns on last, and never off); the plugin makes none of these.

type State = Record<'links' | 'addrs' | 'routes' | 'neighbours' | 'nft', string[]>;

const without = (flags: string[] | undefined, gone: string[]) => (flags ?? []).filter((f) => !gone.includes(f));
const linkLocal = (a: unknown) => typeof a === 'string' && /^fe[89ab][0-9a-f]:/i.test(a);

function stripNft(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNft);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'handle') out[k] = k === 'counter' ? {} : stripNft(x);
    return out;
  }
  return v;
}

/** The node's uplink MAC differs per lab node; the bridge and the L2 rules carry it. */
function stateOf(ns: string, uplinkMac?: string): State {
  const links = lab.ipJson(ns, ['link', 'show']).map((l) =>
    JSON.stringify({ ifname: l.ifname, flags: without(l.flags, ['LOWER_UP', 'NO-CARRIER', 'M-DOWN']), mtu: l.mtu, master: l.master, kind: l.link_type, mac: l.address, alias: l.ifalias }),
  );
  const addrs = lab.ipJson(ns, ['addr', 'show']).flatMap((l) =>
    (l.addr_info ?? [])
      .filter((a: any) => !linkLocal(a.local))
      .map(({ valid_life_time: _v, preferred_life_time: _p, tentative: _t, optimistic: _o, ...a }: any) => JSON.stringify({ dev: l.ifname, ...a })),
  );
  // `route show table all` lists both families
  const routes = lab
    .ipJson(ns, ['route', 'show', 'table', 'all'])
    .filter((r) => !(r.protocol === 'kernel' && (linkLocal(r.dst) || r.type === 'multicast' || r.type === 'anycast')))
    .map(({ flags, expires: _e, ...r }) => JSON.stringify({ ...r, flags: without(flags, ['linkdown']) }));
  const neighbours = [...lab.ipJson(ns, ['neigh', 'show', 'nud', 'permanent']), ...lab.ipJson(ns, ['-6', 'neigh', 'show', 'nud', 'permanent'])].map((n) => JSON.stringify(n));
  const ruleset = JSON.parse(lab.in(ns, ['nft', '-j', 'list', 'ruleset']) || '{"nftables":[]}').nftables as object[];
  const nft = ruleset.filter((x: any) => !x.metainfo).map((x) => JSON.stringify(stripNft(x)));
  const norm = (xs: string[]) => xs.map((x) => (uplinkMac ? x.replaceAll(uplinkMac, '<uplink MAC>') : x)).sort();
  return { links: norm(links), addrs: norm(addrs), routes: norm(routes), neighbours: norm(neighbours), nft: norm(nft) };
}

/** Every file of the network's store but the lock, the cursors and the boot stamp: name and content. */
function storeOf(dataDir: string, net: string): string[] {
  const dir = join(dataDir, net);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !statSync(join(dir, f)).isDirectory())
    .filter((f) => f !== 'lock' && f !== '.boot' && !f.startsWith('last_reserved_ip.') && !f.startsWith('.lock'))
    .map((f) => `${f}: ${readFileSync(join(dir, f), 'utf8')}`)
    .sort();
}

/** What differs, per kind: lines gone and lines added. Empty when the states are the same. */
function diff(before: State, after: State): Record<string, { gone: string[]; added: string[] }> {
  const out: Record<string, { gone: string[]; added: string[] }> = {};
  for (const k of Object.keys(before) as (keyof State)[]) {
    const gone = before[k].filter((x) => !after[k].includes(x));
    const added = after[k].filter((x) => !before[k].includes(x));
    if (gone.length || added.length) out[k] = { gone, added };
  }
  return out;
}

/**
 * The nftables set and map elements an attachment tagged with its veth's name, taken out of the
 * state: [the state without them, the elements].
 */
function untag(s: State, veth: string): [State, string[]] {
  const found: string[] = [];
  const nft = s.nft
    .map((line) => {
      const x = JSON.parse(line);
      const set = x.set ?? x.map;
      if (!set?.elem) return line;
      const tagged = (e: any) => (Array.isArray(e) ? e[0] : e)?.elem?.comment === veth;
      for (const e of set.elem.filter(tagged)) found.push(JSON.stringify(e));
      set.elem = set.elem.filter((e: any) => !tagged(e));
      if (!set.elem.length) delete set.elem;
      return JSON.stringify(x);
    })
    .sort();
  return [{ ...s, nft }, found];
}

// ---------------------------------------------------------------------------------------------
// Modes, and their shared objects: which lines of a node's state belong to each.

const V4 = { subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60', gateway: '10.224.0.1' };
const V6 = { subnet: 'fd00:224::/64', rangeStart: 'fd00:224::10', rangeEnd: 'fd00:224::60', gateway: 'fd00:224::1' };
const ipam = (dataDir: string, ranges: object[][]) => ({ type: 'vnet-ipam', ranges, routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }], dataDir });

type Shared = Record<string, (kind: keyof State, line: string) => boolean>;
const on = (dev: string) => (kind: keyof State, line: string) => {
  const x = JSON.parse(line);
  return (kind === 'addrs' || kind === 'routes') && x.dev === dev;
};
const nftTable = (family: string) => (kind: keyof State, line: string) => kind === 'nft' && (Object.values(JSON.parse(line))[0] as any).family === family;
const link = (name: string) => (kind: keyof State, line: string) => kind === 'links' && JSON.parse(line).ifname === name;

interface Mode {
  name: string;
  net: string;
  conf: (dataDir: string) => object;
  shared: Shared;
}
const MODES: Mode[] = [
  {
    name: 'transparent mode, both families',
    net: 'rbtr',
    conf: (d) => ({ cniVersion: '1.1.0', name: 'rbtr', type: 'vnet', mode: 'transparent', mtu: 1500, ipsToRouteViaHost: ['169.254.20.10'], ipam: ipam(d, [[V4], [V6]]) }),
    shared: {},
  },
  {
    name: 'bridge mode, kubenet’s layout with ipMasq, both families',
    net: 'rbkn',
    conf: (d) => ({
      cniVersion: '1.1.0', name: 'rbkn', type: 'vnet', mode: 'bridge', bridge: 'rbkn0', isGateway: true, ipMasq: true, mtu: 1500,
      ipam: ipam(d, [[{ subnet: '10.230.0.0/24', gateway: '10.230.0.1' }], [{ subnet: 'fd00:230::/64', gateway: 'fd00:230::1' }]]),
    }),
    shared: {
      'the bridge rbkn0 with the pods’ gateways': (k, l) => link('rbkn0')(k, l) || on('rbkn0')(k, l),
      'the masquerade table inet vnet': nftTable('inet'),
    },
  },
  {
    name: 'bridge mode, Azure’s layout (uplink eth0), both families',
    net: 'rbaz',
    conf: (d) => ({ cniVersion: '1.1.0', name: 'rbaz', type: 'vnet', mode: 'bridge', bridge: 'rbaz0', uplink: 'eth0', mtu: 1500, ipsToRouteViaHost: ['169.254.20.10'], ipam: ipam(d, [[V4], [V6]]) }),
    shared: {
      'the bridge rbaz0': link('rbaz0'),
      'the uplink eth0 moved onto rbaz0, its addresses and routes with it': (k, l) => link('eth0')(k, l) || on('eth0')(k, l) || on('rbaz0')(k, l),
      'the L2 rules’ table bridge vnet': nftTable('bridge'),
    },
  },
];

interface Pod {
  id: string;
  netns: string;
  veth: string;
}
let seq = 0;
function pod(net: string): Pod {
  const id = `${lab.prefix}-r${++seq}`;
  return { id, netns: lab.ns(`pod${seq}`), veth: hostVethName(net, { containerId: id, ifname: 'eth0' }) };
}

/** The failed ADD's answer: the spec's error JSON, alone on stdout, with the injected fault. Returns where it failed. */
function failedAt(r: Ran, point: number): string {
  const what = `fail point ${point}: exit ${r.code}, stdout ${r.stdout}, stderr ${r.stderr}`;
  expect(r.code, what).toBe(1);
  expect(r.json, what).toMatchObject({ cniVersion: '1.1.0', code: 102, msg: expect.stringMatching(/^test fault \(VNET_TEST_FAIL_AT\) at: /) });
  expect(r.stdout.trim(), what).toBe(JSON.stringify(r.json));
  return r.json.msg.replace(/^test fault \(VNET_TEST_FAIL_AT\) at: /, '');
}

/**
 * Nothing of the attachment a failed ADD left: no store file for it, no element tagged with its
 * veth. Returns the node's state without the tagged elements (there are none) for the comparisons.
 */
function noLeftovers(where: string, p: Pod, before: string[], store: string[], node: State): State {
  const [rest, elements] = untag(node, p.veth);
  const at = `failing at ${where}`;
  expect(store, `IPAM store ${at}`).toEqual(before);
  expect(elements, `elements tagged ${p.veth} ${at}`).toEqual([]);
  return rest;
}

for (const mode of MODES) {
  describe(`${mode.name}: a failed ADD leaves the node, the pod and IPAM as they were`, () => {
    it('where the shared objects exist, at every fail point: exactly as before, and so after the DEL that follows', async () => {
      const { node } = lab.aksNode(`${mode.net}-n`, { dualStack: true });
      const mac = lab.ipJson(node, ['link', 'show', 'dev', 'eth0'])[0].address;
      const dataDir = join(lab.dir, `ipam-${mode.net}`);
      const call = (command: string, p: Pod, failAt?: number) =>
        lab.run({ node, env: { ...cniEnv(command, p), VNET_TEST_FAIL_AT: failAt ? String(failAt) : undefined }, stdin: mode.conf(dataDir) });
      const first = pod(mode.net);
      expect((await call('ADD', first)).code).toBe(0);
      expect((await call('DEL', first)).code).toBe(0);

      const where: string[] = [];
      for (let point = 1; point < 100; point++) {
        const p = pod(mode.net);
        const before = { node: stateOf(node, mac), pod: stateOf(p.netns), store: storeOf(dataDir, mode.net) };
        const r = await call('ADD', p, point);
        if (r.code === 0) {
          expect((await call('DEL', p)).code).toBe(0);
          break;
        }
        where.push(failedAt(r, point));
        const at = `after failing at point ${point} (${where.at(-1)})`;
        const rest = noLeftovers(where.at(-1)!, p, before.store, storeOf(dataDir, mode.net), stateOf(node, mac));
        expect(diff(before.node, rest), `node ${at}`).toEqual({});
        expect(diff(before.pod, stateOf(p.netns)), `pod ${at}`).toEqual({});
        // the runtime's DEL
        const del = await call('DEL', p);
        expect(del.code, `DEL ${at}: ${del.stdout}`).toBe(0);
        expect(diff(before.node, stateOf(node, mac)), `node after DEL ${at}`).toEqual({});
        expect(diff(before.pod, stateOf(p.netns)), `pod after DEL ${at}`).toEqual({});
        expect(storeOf(dataDir, mode.net), `IPAM store after DEL ${at}`).toEqual(before.store);
      }
      process.stderr.write(`rollback test: ${mode.name}: ADD failed at ${where.length} points\n`);
      // IPAM's writes, the node's commands and the pod's: the walk went through them all
      expect(where.filter((w) => w.startsWith('vnet-ipam:')).length).toBeGreaterThanOrEqual(4);
      expect(where.some((w) => w.startsWith('after the node commands'))).toBe(true);
      expect(where.filter((w) => w.startsWith('before the pod commands') || w.startsWith('after the pod commands'))).toHaveLength(2);
    }, 300_000);

    it('the first ADD on a fresh node, at every fail point: as before but for whole shared objects, and so after the DEL that follows', async () => {
      // What a successful first ADD and its DEL leave on a fresh node: the shared objects, whole.
      const { node: refNode } = lab.aksNode(`${mode.net}-ref`, { dualStack: true });
      const refMac = lab.ipJson(refNode, ['link', 'show', 'dev', 'eth0'])[0].address;
      const refDir = join(lab.dir, `ipam-${mode.net}-ref`);
      const pristine = stateOf(refNode, refMac);
      const q = pod(mode.net);
      expect((await lab.run({ node: refNode, env: cniEnv('ADD', q), stdin: mode.conf(refDir) })).code).toBe(0);
      expect((await lab.run({ node: refNode, env: cniEnv('DEL', q), stdin: mode.conf(refDir) })).code).toBe(0);
      const whole = stateOf(refNode, refMac);

      /** Each shared object absent (as before) or whole (as a successful ADD and DEL leave it); every other line as before. */
      const expectShared = (before: State, after: State, at: string) => {
        const owner = (k: keyof State, l: string) => Object.keys(mode.shared).find((name) => mode.shared[name]!(k, l));
        const part = (s: State, name: string | undefined) =>
          Object.fromEntries(Object.entries(s).map(([k, ls]) => [k, ls.filter((l) => owner(k as keyof State, l) === name)]));
        expect(part(after, undefined), `${at}: what no shared object explains`).toEqual(part(before, undefined));
        for (const name of Object.keys(mode.shared)) {
          const now = part(after, name);
          const absent = part(before, name);
          if (JSON.stringify(now) === JSON.stringify(absent)) continue;
          expect(now, `${at}: ${name}, neither absent nor whole`).toEqual(part(whole, name));
        }
      };

      const where: string[] = [];
      for (let point = 1; point < 100; point++) {
        const { node } = lab.aksNode(`${mode.net}-f${point}`, { dualStack: true });
        const mac = lab.ipJson(node, ['link', 'show', 'dev', 'eth0'])[0].address;
        const dataDir = join(lab.dir, `ipam-${mode.net}-f${point}`);
        const call = (command: string, p: Pod, failAt?: number) =>
          lab.run({ node, env: { ...cniEnv(command, p), VNET_TEST_FAIL_AT: failAt ? String(failAt) : undefined }, stdin: mode.conf(dataDir) });
        const p = pod(mode.net);
        const before = { node: stateOf(node, mac), pod: stateOf(p.netns), store: storeOf(dataDir, mode.net) };
        expect(before.node, 'a fresh node is a fresh node').toEqual(pristine);
        const r = await call('ADD', p, point);
        if (r.code === 0) break;
        where.push(failedAt(r, point));
        const at = `after failing at point ${point} (${where.at(-1)})`;
        const rest = noLeftovers(where.at(-1)!, p, before.store, storeOf(dataDir, mode.net), stateOf(node, mac));
        expectShared(before.node, rest, `node ${at}`);
        expect(diff(before.pod, stateOf(p.netns)), `pod ${at}`).toEqual({});
        const del = await call('DEL', p);
        expect(del.code, `DEL ${at}: ${del.stdout}`).toBe(0);
        expect(diff(rest, stateOf(node, mac)), `node after DEL ${at}`).toEqual({});
        expect(diff(before.pod, stateOf(p.netns)), `pod after DEL ${at}`).toEqual({});
        expect(storeOf(dataDir, mode.net), `IPAM store after DEL ${at}`).toEqual(before.store);
      }
      process.stderr.write(`rollback test: ${mode.name}, first ADD: failed at ${where.length} points\n`);
      expect(where.filter((w) => w.startsWith('before the pod commands') || w.startsWith('after the pod commands'))).toHaveLength(2);
    }, 300_000);
  });
}
