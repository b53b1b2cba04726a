// A plugin killed at any moment (the runtime's timeout, the OOM killer, a node reboot in the
// middle) must leave nothing that the next DEL does not remove, and must not stop the next ADD.
// VNET_TEST_CRASH_AT=N makes the plugin SIGKILL itself at its N-th crash point (src/crash.ts):
// every boundary where the datapath or the IPAM store changes. Each test walks them all.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lab, cniEnv, type Ran } from './helpers/lab.js';

const lab = new Lab();
let node = '';
const NET = 'crashnet';
const dataDir = () => join(lab.dir, 'ipam');
const base = {
  cniVersion: '1.1.0',
  name: NET,
  type: 'vnet',
  mtu: 1500,
  ipsToRouteViaHost: ['169.254.20.10'],
  // Both families: every walk proves IPv6's routes, neighbours and masquerade elements too.
  ipam: {
    type: 'vnet-ipam',
    ranges: [[{ subnet: '10.230.0.0/24', gateway: '10.230.0.1' }], [{ subnet: 'fd00:230::/64', gateway: 'fd00:230::1' }]],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
    dataDir: dataDir(),
  },
};
// Every mode, kubenet's bridge with masquerade included: each walk runs with one of them.
const MODES: [string, object][] = [
  ['transparent mode', { ...base, mode: 'transparent' }],
  ['bridge mode (kubenet, ipMasq)', { ...base, mode: 'bridge', bridge: 'crashbr0', isGateway: true, ipMasq: true }],
];
let conf: object = MODES[0]![1];

beforeAll(() => {
  node = lab.ns('node');
});
afterAll(() => lab.cleanup());
afterEach(() => {
  for (const l of azvLinks()) lab.in(node, ['ip', 'link', 'del', l.ifname]);
  rmSync(dataDir(), { recursive: true, force: true });
});

const azvLinks = () => lab.ipJson(node, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'));
const hostRoutes = () => [...lab.ipJson(node, ['route', 'show']), ...lab.ipJson(node, ['-6', 'route', 'show'])].filter((r) => r.dev?.startsWith('azv'));
/** Every file in the network's store but host-local's lock and cursor: addresses, index entries, temp files. */
function leftovers(): string[] {
  const dir = join(dataDir(), NET);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !statSync(join(dir, f)).isDirectory())
    .filter((f) => f !== 'lock' && f !== '.boot' && !f.startsWith('last_reserved_ip.'));
}
const permanentNeighs = () => [...lab.ipJson(node, ['neigh', 'show', 'nud', 'permanent']), ...lab.ipJson(node, ['-6', 'neigh', 'show', 'nud', 'permanent'])];
function masqueraded(): string[] {
  try {
    const t = JSON.parse(lab.in(node, ['nft', '-j', 'list', 'table', 'inet', 'vnet']));
    return t.nftables.flatMap((x: any) => (/^pods6?_/.test(x.set?.name ?? '') ? (x.set.elem ?? []) : []));
  } catch {
    return []; // no table yet
  }
}
function expectClean() {
  expect(azvLinks()).toEqual([]);
  expect(hostRoutes()).toEqual([]);
  expect(permanentNeighs()).toEqual([]);
  expect(masqueraded()).toEqual([]);
  expect(leftovers()).toEqual([]);
}

const call = (command: string, p: { id: string; netns?: string }, crashAt?: number) =>
  lab.run({ node, env: { ...cniEnv(command, { id: p.id, netns: p.netns ?? '' }), VNET_TEST_CRASH_AT: crashAt ? String(crashAt) : undefined }, stdin: conf });
function ok(r: Ran) {
  expect(r.stdout + r.stderr, `exit ${r.code}`).not.toMatch(/"code":/);
  expect(r.code).toBe(0);
}

/** Runs `verb` with a crash at point 1, 2, … until it completes; returns how many points it had. */
async function everyCrashPoint(each: (point: number) => Promise<Ran>, after: (point: number) => Promise<void>): Promise<number> {
  for (let point = 1; point < 100; point++) {
    const r = await each(point);
    if (r.code === 0) return point - 1;
    // Killed, not failed: no error JSON, no exit code.
    expect(r.code, `crash point ${point}: ${r.stdout}`).toBe(-1);
    await after(point);
  }
  throw new Error('more than 99 crash points?');
}

/** After a crash: DEL cleans up, and the attachment can be added and deleted again. */
async function recover() {
  ok(await call('DEL', current));
  expectClean();
  ok(await call('ADD', current));
  ok(await call('DEL', current));
  expectClean();
}

let seq = 0;
let current = { id: '', netns: '' };
const pod = () => ({ id: `${lab.prefix}-c${++seq}`, netns: lab.ns(`pod${seq}`) });

for (const [mode, c] of MODES) {
  describe(mode, () => {
    describe('SIGKILL at each crash point of ADD, then DEL, ADD again and DEL: nothing is left', () => {
      beforeAll(() => void (conf = c));
      it('walks every point', async () => {
        const points = await everyCrashPoint(
          async (point) => call('ADD', (current = pod()), point),
          recover,
        );
        // the node batch, the pod batch, IPAM: each with a point before and after
        expect(points).toBeGreaterThanOrEqual(5);
        process.stderr.write(`crash test: ${mode}: ADD has ${points} crash points\n`);
        ok(await call('DEL', current));
        expectClean();
      });
    });

    describe('SIGKILL at each crash point of DEL, then DEL again: nothing is left, and the next ADD works', () => {
      beforeAll(() => void (conf = c));
      it('walks every point', async () => {
        const points = await everyCrashPoint(
          async (point) => {
            current = pod();
            ok(await call('ADD', current));
            return call('DEL', current, point);
          },
          recover,
        );
        expect(points).toBeGreaterThanOrEqual(2);
        process.stderr.write(`crash test: ${mode}: DEL has ${points} crash points\n`);
        expectClean();
      });
    });
  });
}

describe('Azure’s layout: SIGKILL at each crash point of the first ADD (the uplink move), both families', () => {
  const V4 = { subnet: '10.224.0.0/16', rangeStart: '10.224.0.10', rangeEnd: '10.224.0.60', gateway: '10.224.0.1' };
  const V6 = { subnet: 'fd00:224::/64', rangeStart: 'fd00:224::10', rangeEnd: 'fd00:224::60', gateway: 'fd00:224::1' };
  const az = (dir: string) => ({
    cniVersion: '1.1.0', name: 'crashaz', type: 'vnet', mode: 'bridge', bridge: 'crashaz0', uplink: 'eth0', mtu: 1500,
    ipam: { type: 'vnet-ipam', ranges: [[V4], [V6]], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }], dataDir: dir },
  });
  const globals = (n: string, dev: string) =>
    (lab.ipJson(n, ['addr', 'show', 'dev', dev])[0]?.addr_info ?? []).filter((a: any) => a.scope === 'global').map((a: any) => `${a.local}/${a.prefixlen}`).sort();
  const reachable = (n: string) => {
    expect(lab.ping(n, '10.224.0.1')).toContain('1 received');
    expect(lab.ping(n, 'fd00:224::1')).toContain('1 received');
  };
  it('walks every point: the node keeps its addresses, default routes and reachability, whole on the NIC or whole on the bridge; DEL and the next ADD complete', async () => {
    let points = 0;
    for (let point = 1; point < 60; point++) {
      const { node: n } = lab.aksNode(`az${point}`, { dualStack: true });
      const dir = join(lab.dir, `ipam-az${point}`);
      const p = pod();
      const r = await lab.run({ node: n, env: { ...cniEnv('ADD', { id: p.id, netns: p.netns }), VNET_TEST_CRASH_AT: String(point) }, stdin: az(dir) });
      if (r.code !== 0) expect(r.code, `crash point ${point}: ${r.stdout}`).toBe(-1);
      // all of the node's addresses and both default routes on one device: the NIC, or the bridge
      const on = lab.ipJson(n, ['link', 'show', 'dev', 'eth0'])[0].master === 'crashaz0' ? 'crashaz0' : 'eth0';
      expect(globals(n, on)).toEqual(['10.224.0.4/16', 'fd00:224::4/64']);
      expect(lab.ipJson(n, ['route', 'show', 'default']), `point ${point} on ${on}: ${JSON.stringify(lab.ipJson(n, ['route', 'show', 'table', 'all']))} ${r.stdout}`).toEqual([expect.objectContaining({ dev: on, gateway: '10.224.0.1' })]);
      expect(lab.ipJson(n, ['-6', 'route', 'show', 'default'])).toEqual([expect.objectContaining({ dev: on, gateway: 'fd00:224::1' })]);
      reachable(n);
      // the runtime's DEL of the killed call, then a pod that works, then its DEL
      const del1 = await lab.run({ node: n, env: cniEnv('DEL', { id: p.id, netns: p.netns }), stdin: az(dir) });
      ok(del1);
      const q = pod();
      ok(await lab.run({ node: n, env: cniEnv('ADD', { id: q.id, netns: q.netns }), stdin: az(dir) }));
      expect(lab.ping(q.netns, '10.224.0.1')).toContain('1 received');
      reachable(n);
      ok(await lab.run({ node: n, env: cniEnv('DEL', { id: q.id, netns: q.netns }), stdin: az(dir) }));
      expect(lab.ipJson(n, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'))).toEqual([]);
      if (r.code === 0) {
        points = point - 1;
        break;
      }
    }
    expect(points).toBeGreaterThanOrEqual(5);
    process.stderr.write(`crash test: Azure's layout, dual stack: the first ADD has ${points} crash points\n`);
  }, 300_000);
});
