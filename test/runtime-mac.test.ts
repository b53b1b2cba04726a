// runtimeConfig.mac (capability `mac`, as the reference bridge has it): the runtime chooses the
// pod's MAC. ADD gives it to the pod's interface and to every entry keyed by the pod's MAC (the
// bridge's neighbour entry); the host veth's alias records it, so DEL, GC and `vnet state` find the
// pod's entries whether or not the runtime sends it again. In namespaces, with the built binary.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Lab, cniEnv, type Ran } from './helpers/lab.js';

const lab = new Lab();
let node = '';
const NET = 'rtmac';
const BR = `${lab.prefix.slice(0, 6)}br`;
const MAC = '0a:58:0a:f4:00:42';

beforeAll(() => {
  node = lab.ns('node');
});
afterAll(() => lab.cleanup());
afterEach(() => {
  for (const l of lab.ipJson(node, ['link', 'show']).filter((x) => x.ifname.startsWith('azv'))) lab.in(node, ['ip', 'link', 'del', l.ifname]);
  for (const n of staticNeighs()) lab.in(node, ['ip', 'neigh', 'del', n.dst, 'dev', BR]);
  rmSync(dataDir(), { recursive: true, force: true });
});

const dataDir = () => join(lab.dir, 'ipam');
const conf = (mode: 'bridge' | 'transparent', mac?: unknown) => ({
  cniVersion: '1.1.0',
  name: NET,
  type: 'vnet',
  mode,
  ...(mode === 'bridge' ? { bridge: BR, isGateway: true } : {}),
  mtu: 1500,
  ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.244.0.0/24', gateway: '10.244.0.1' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: dataDir() },
  ...(mac === undefined ? {} : { runtimeConfig: { mac } }),
});

let seq = 0;
const pod = () => ({ id: `${lab.prefix}-m${++seq}`, netns: lab.ns(`mpod${seq}`) });
type Pod = { id: string; netns: string };
const call = (command: string, p: Partial<Pod>, stdin: object) => lab.run({ node, env: cniEnv(command, { id: p.id, netns: p.netns ?? '' }), stdin });
function ok(r: Ran): any {
  expect(r.stdout + r.stderr, `exit ${r.code}`).not.toMatch(/"code":/);
  expect(r.code).toBe(0);
  return r.json;
}
const staticNeighs = () => (lab.ipJson(node, ['link', 'show', 'dev', BR]).length ? lab.ipJson(node, ['neigh', 'show', 'dev', BR]) : []).filter((n) => n.state?.includes('PERMANENT'));
const podMac = (p: Pod) => lab.ipJson(p.netns, ['link', 'show', 'dev', 'eth0'])[0].address;
const veths = () => lab.ipJson(node, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'));
function held(): string[] {
  const dir = join(dataDir(), NET);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
}
function state(c: object): { code: number; json: any } {
  const file = join(lab.dir, 'state.conf');
  writeFileSync(file, JSON.stringify(c));
  const r = spawnSync('nsenter', [`--net=${node}`, BIN, 'state', '--conf', file, '--json'], { encoding: 'utf8' });
  return { code: r.status ?? -1, json: JSON.parse(r.stdout) };
}

describe('ADD gives the pod the MAC the runtime chose, and everything keyed by the pod’s MAC uses it', () => {
  it('bridge mode: the pod’s interface, the result and the bridge’s neighbour entry have it; the veth’s alias records it; CHECK and vnet state agree', async () => {
    const a = pod();
    const b = pod();
    const ra = ok(await call('ADD', a, conf('bridge', MAC.toUpperCase())));
    ok(await call('ADD', b, conf('bridge')));
    expect(podMac(a)).toBe(MAC);
    expect(ra.interfaces[2]).toMatchObject({ name: 'eth0', mac: MAC });
    const ip = ra.ips[0].address.split('/')[0];
    expect(staticNeighs().find((n) => n.dst === ip)?.lladdr).toBe(MAC);
    expect(veths().find((l) => l.ifname === ra.interfaces[1].name)?.ifalias).toBe(`vnet:${NET}:${a.id}:eth0:mac=${MAC.replace(/:/g, '-')}`);
    expect(lab.ping(b.netns, ip)).toContain('1 received');
    ok(await call('CHECK', a, { ...conf('bridge', MAC), prevResult: ra }));
    const s = state(conf('bridge'));
    expect(s.json.leaks).toEqual([]);
    expect(s.code).toBe(0);
  });
  it('transparent mode: the pod’s interface and the result have it', async () => {
    const a = pod();
    const ra = ok(await call('ADD', a, conf('transparent', MAC)));
    expect(podMac(a)).toBe(MAC);
    expect(ra.interfaces[1]).toMatchObject({ name: 'eth0', mac: MAC });
    ok(await call('CHECK', a, { ...conf('transparent', MAC), prevResult: ra }));
  });
});

describe('the pod’s MAC from the three places the reference bridge reads it: runtimeConfig.mac, then args.cni.mac, then CNI_ARGS MAC', () => {
  const other = '0a:58:0a:f4:00:43';
  const third = '0a:58:0a:f4:00:44';
  const cases: [string, object, string | undefined, string][] = [
    ['CNI_ARGS MAC alone (podman’s --mac-address)', conf('bridge'), `IgnoreUnknown=1;MAC=${third}`, third],
    ['args.cni.mac over CNI_ARGS MAC', { ...conf('bridge'), args: { cni: { mac: other } } }, `MAC=${third}`, other],
    ['runtimeConfig.mac over both', { ...conf('bridge', MAC), args: { cni: { mac: other } } }, `MAC=${third}`, MAC],
  ];
  for (const [what, c, args, want] of cases) {
    it(what, async () => {
      const a = pod();
      const r = ok(await lab.run({ node, env: cniEnv('ADD', { id: a.id, netns: a.netns, args }), stdin: c }));
      expect(podMac(a)).toBe(want);
      expect(r.interfaces[2].mac).toBe(want);
      ok(await call('DEL', a, conf('bridge')));
      expect(staticNeighs()).toEqual([]);
    });
  }
  it('a CNI_ARGS MAC that is no pod’s MAC is refused with code 4 naming it, and changes nothing', async () => {
    const a = pod();
    const r = await lab.run({ node, env: cniEnv('ADD', { id: a.id, netns: a.netns, args: 'MAC=01:00:5e:00:00:01' }), stdin: conf('bridge') });
    expect(r.json).toMatchObject({ code: 4 });
    expect(r.json.msg).toMatch(/^CNI_ARGS MAC: 01:00:5e:00:00:01 is a multicast MAC address/);
    expect(veths()).toEqual([]);
    expect(held()).toEqual([]);
  });
});

describe('DEL and GC find the pod’s entries by the MAC the runtime chose, sent again or not', () => {
  for (const again of [true, false]) {
    it(`DEL ${again ? 'with' : 'without'} runtimeConfig.mac leaves no veth, neighbour entry or address`, async () => {
      const a = pod();
      ok(await call('ADD', a, conf('bridge', MAC)));
      ok(await call('DEL', a, conf('bridge', again ? MAC : undefined)));
      expect(veths()).toEqual([]);
      expect(staticNeighs()).toEqual([]);
      expect(held()).toEqual([]);
    });
  }
  it('DEL after the pod’s namespace (and so its veth) is gone, with runtimeConfig.mac: the neighbour entry goes too', async () => {
    const a = pod();
    ok(await call('ADD', a, conf('bridge', MAC)));
    lab.in(node, ['ip', 'link', 'del', veths()[0].ifname]);
    ok(await call('DEL', { id: a.id }, conf('bridge', MAC)));
    expect(staticNeighs()).toEqual([]);
    expect(held()).toEqual([]);
  });
  it('GC of a pod no longer valid: its veth and its neighbour entry (found through the alias) go', async () => {
    const a = pod();
    ok(await call('ADD', a, conf('bridge', MAC)));
    ok(await call('GC', {}, { ...conf('bridge'), 'cni.dev/valid-attachments': [] }));
    expect(veths()).toEqual([]);
    expect(staticNeighs()).toEqual([]);
    expect(held()).toEqual([]);
  });
});

describe('a runtimeConfig.mac that is no pod’s unicast MAC is refused with code 7 naming it, and changes nothing', () => {
  const hostile: [string, unknown][] = [
    ['a newline and a command', `${MAC}\nlink del eth0`],
    ['multicast', '01:00:5e:00:00:01'],
    ['broadcast', 'ff:ff:ff:ff:ff:ff'],
    ['all zeros', '00:00:00:00:00:00'],
    ['seven octets', `${MAC}:01`],
    ['a number', 42],
    ['an object', { mac: MAC }],
    ['shell text', '$(touch /tmp/x)'],
  ];
  for (const [what, value] of hostile) {
    it(what, async () => {
      const a = pod();
      const r = await call('ADD', a, conf('bridge', value));
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: 7 });
      expect(r.json.msg).toMatch(/^invalid network config: runtimeConfig\.mac: |^runtimeConfig\.mac: /);
      expect(veths()).toEqual([]);
      expect(staticNeighs()).toEqual([]);
      expect(held()).toEqual([]);
      expect(lab.ipJson(a.netns, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    });
  }
});
