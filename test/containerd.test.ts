// containerd's CRI end to end, as kind nodes run it: the lab's VNet and two nodes
// (scripts/lab/cluster.ts, pods: 0) per layout — transparent, bridge (Azure, uplink eth0) and kubenet —
// and in each node a containerd 1.6 of its own whose CNI conf dir is that node's net.d, holding the
// conflist `vnet install` wrote. Pods are CRI sandboxes: RunPodSandbox makes containerd call CNI ADD
// (loopback, then vnet with vnet-ipam in-process, then portmap), StopPodSandbox calls DEL. The
// runtime is the real thing, driven over its gRPC socket by a small CRI client (test/helpers/cri.ts)
// exactly as kubelet would drive it; nothing here calls the plugin directly.
//
// One describe per rule, each over the three layouts; they run in order and share the clusters
// (the pods made under the first rule are reached under the second, survive the restart under the
// third, and are removed under the last). Where containerd keeps its state, and the machine facts
// this rests on: test/helpers/containerd.ts. scripts/cri-setup.sh fetches the CRI proto.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Cluster, nodeAddressing, podLeftovers, type Layout } from '../scripts/lab/cluster.js';
import { canonicalIp, networkOf, hostMask, parseCidr, parseIp } from '../src/net/address.js';
import { hostVethName } from '../src/plan/names.js';
import { BIN_DIR, REF_DIR, sh } from './helpers/lab.js';
import { Containerd, alive, buildPauseImage, criSetup } from './helpers/containerd.js';
import { sandboxIps } from './helpers/cri.js';

const LAYOUTS = ['transparent', 'bridge', 'kubenet'] as const satisfies readonly Layout[];
const NODES = 2;
const PODS_PER_NODE = 2;
const DUAL_STACK = true;

interface Pod {
  node: number;
  name: string;
  id: string;
  ips: string[];
  /** the sandbox's process (busybox sh as PID 1 of the pod) */
  pid: number;
  /** the netns path CRI gave the sandbox (a mount in containerd's mount namespace only) */
  netns: string;
}
interface Env {
  layout: Layout;
  c: Cluster;
  nodes: Containerd[];
  pods: Pod[];
  network: string;
}

const envs = new Map<Layout, Env>();
const clusters: Cluster[] = [];
const daemons: Containerd[] = [];
const work = mkdtempSync(join(tmpdir(), `vc${randomBytes(3).toString('hex')}-`));
const timings = {
  setup: {} as Record<string, number>,
  start: [] as number[],
  restart: [] as number[],
  run: [] as number[],
  runAtOnce: [] as number[],
  stop: [] as number[],
  remove: [] as number[],
  /** vnet's own ADD and DEL, as its log times them (the plugin's share of Run and Stop) */
  vnetAdd: [] as number[],
  vnetDel: [] as number[],
};
// The machine's mount namespace before any containerd: what must still be true after.
const MACHINE_HAD = { runContainerd: existsSync('/run/containerd') };
/** Every sandbox ID CRI gave us. */
const sandboxIds = new Set<string>();

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.cleanup()));
  for (const c of clusters) {
    for (let i = 0; i < c.spec.nodes; i++) {
      const f = join(c.spec.dir, `node${i}`, 'vnet.log');
      if (!existsSync(f)) continue;
      for (const m of readFileSync(f, 'utf8').matchAll(/\] (ADD|DEL) done in ([\d.]+) ms/g)) (m[1] === 'ADD' ? timings.vnetAdd : timings.vnetDel).push(Number(m[2]));
    }
  }
  for (const c of clusters) c.destroy();
  rmSync(work, { recursive: true, force: true });
  const ms = (xs: number[]) => (xs.length ? `median ${median(xs).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms (n=${xs.length})` : 'n/a');
  console.log(
    [
      `containerd CRI timings: set-up ${Object.entries(timings.setup).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}`,
      `  containerd start until CRI answers: ${ms(timings.start)}; restart: ${ms(timings.restart)}`,
      `  RunPodSandbox: ${ms(timings.run)}; two at once on a node, each: ${ms(timings.runAtOnce)}`,
      `  StopPodSandbox: ${ms(timings.stop)}; RemovePodSandbox: ${ms(timings.remove)}`,
      `  of which the vnet plugin (its log): ADD ${ms(timings.vnetAdd)}; DEL ${ms(timings.vnetDel)}`,
    ].join('\n'),
  );
}, 120_000);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function timed<T>(into: number[], f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const r = await f();
  into.push(performance.now() - t0);
  return r;
}

beforeAll(async () => {
  const t0 = performance.now();
  const proto = criSetup(resolve('.tmp/cri'));
  const image = buildPauseImage(join(work, 'image'));
  timings.setup['proto and image'] = performance.now() - t0;
  await settled(
    LAYOUTS.map(async (layout) => {
      const t1 = performance.now();
      const prefix = 'vc' + randomBytes(3).toString('hex');
      const c = Cluster.create({
        layout, nodes: NODES, pods: 0, dualStack: DUAL_STACK, prefix,
        dir: mkdtempSync(join(tmpdir(), `${prefix}-`)), binDir: BIN_DIR, refDir: REF_DIR,
      });
      clusters.push(c);
      const nodes: Containerd[] = [];
      for (let i = 0; i < NODES; i++) {
        const nodeDir = join(c.spec.dir, `node${i}`);
        const d = new Containerd({
          name: `${prefix}-node${i}`,
          dir: join(nodeDir, 'cri'),
          netns: c.node(i),
          cniConfDir: dirname(c.conflistFile(i)),
          cniBinDirs: [join(nodeDir, 'bin'), REF_DIR],
          protoFile: proto,
        });
        daemons.push(d);
        nodes.push(d);
      }
      await settled(
        nodes.map(async (d) => {
          timings.start.push(await d.start());
          await d.importImage(image);
        }),
      );
      envs.set(layout, { layout, c, nodes, pods: [], network: c.conflist(0).name });
      timings.setup[layout] = performance.now() - t1;
    }),
  );
}, 300_000);

/**
 * Like Promise.all, but waits for every promise before it throws the first failure: afterAll must
 * not clean up while another layout's containerd is still starting.
 */
async function settled(ps: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(ps)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

const env = (layout: Layout) => {
  const e = envs.get(layout);
  if (!e) throw new Error(`no cluster for ${layout}: set-up failed`);
  return e;
};

// ---- what the node and the runtime hold ----

/** vnet-ipam's record of an address on node i: `containerID\r\nifname`, or undefined. */
function allocation(e: Env, i: number, ip: string): string | undefined {
  const f = join(e.c.spec.dir, `node${i}`, 'ipam', e.network, canonicalIp(ip)!);
  return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
}
/** Every address vnet-ipam holds on node i. */
function allocations(e: Env, i: number): string[] {
  const d = join(e.c.spec.dir, `node${i}`, 'ipam', e.network);
  return existsSync(d) ? readdirSync(d).filter((f) => parseIp(f)).sort() : [];
}
/** libcni's result cache of node i's containerd (its /var/lib/cni/results). */
function cniCache(e: Env, i: number): string[] {
  const d = join(e.nodes[i]!.varLib, 'cni', 'results');
  return existsSync(d) ? readdirSync(d).sort() : [];
}
/** The netns mounts CRI made on node i (files under its state dir). */
function netnsFiles(e: Env, i: number): string[] {
  const d = join(e.nodes[i]!.state, 'io.containerd.grpc.v1.cri', 'netns');
  return existsSync(d) ? readdirSync(d) : [];
}
/** The CNI calls the vnet plugin logged on node i, per container ID: the verb, and the netns it was given ('' for none). */
function cniCalls(e: Env, i: number): Record<string, string[]> {
  const f = join(e.c.spec.dir, `node${i}`, 'vnet.log');
  const out: Record<string, string[]> = {};
  if (!existsSync(f)) return out;
  for (const m of readFileSync(f, 'utf8').matchAll(/Processing (ADD|DEL|CHECK) command with args \{ContainerID:(\S+) Netns:(\S*) /g)) {
    (out[m[2]!] ??= []).push(`${m[1]} ${m[3] ? 'netns' : 'no netns'}`);
  }
  return out;
}
const veth = (e: Env, p: Pod) => hostVethName(e.network, { containerId: p.id, ifname: 'eth0' });
const nodeLinks = (e: Env, i: number) => JSON.parse(sh(['ip', '-n', e.c.node(i), '-json', 'link', 'show'])) as { ifname: string; operstate: string }[];
const hostRoutesTo = (e: Env, i: number, ip: string) =>
  sh(['ip', '-n', e.c.node(i), ...(ip.includes(':') ? ['-6'] : ['-4']), 'route', 'show', 'table', 'all']).split('\n').filter((l) => l.split(' ')[0] === canonicalIp(ip));

/** Whether ip is in one of node i's ranges (its slice of the VNet, or its pod CIDR), off the gateway. */
function inNodeRange(e: Env, i: number, ip: string): boolean {
  const a = parseIp(ip)!;
  return nodeAddressing(e.layout, i, DUAL_STACK).ranges.flat().some((r: any) => {
    const s = parseCidr(r.subnet)!;
    if (s.ip.family !== a.family) return false;
    const lo = r.rangeStart ? parseIp(r.rangeStart)!.value : networkOf(s) + 1n;
    const hi = r.rangeEnd ? parseIp(r.rangeEnd)!.value : networkOf(s) + hostMask(s.ip.family, s.prefix);
    return a.value >= lo && a.value <= hi && a.value !== parseIp(r.gateway)!.value;
  });
}

/** RunPodSandbox on node i, then what CRI says about it. */
async function runPod(e: Env, i: number, name: string, times = timings.run): Promise<Pod> {
  const d = e.nodes[i]!;
  const id = await timed(times, () => d.cri.runPodSandbox({ name, cgroupParent: d.cgroupParent }));
  const { status, info } = await d.cri.podSandboxStatus(id);
  const netns = info.runtimeSpec.linux?.namespaces?.find((n) => n.type === 'network')?.path ?? '';
  sandboxIds.add(id);
  const pod = { node: i, name, id, ips: sandboxIps(status), pid: info.pid, netns };
  e.c.fabricKnows(i, pod.ips); // the VNet answers for the pod's IPv6 address, as Azure's fabric is told of it
  e.pods.push(pod);
  return pod;
}

/** One ping from a pod's network namespace (entered through its process); true if answered. */
function ping(p: Pod, to: string): Promise<boolean> {
  return new Promise((done) => {
    const child = spawn('nsenter', [`--net=/proc/${p.pid}/ns/net`, 'ping', '-c', '1', '-W', '2', to], { stdio: 'ignore' });
    child.on('error', () => done(false));
    child.on('close', (code) => done(code === 0));
  });
}
/** Every pod pings every other pod's every address, all at once; the failures. */
async function unreachable(pods: Pod[]): Promise<string[]> {
  const probes = pods.flatMap((a) => pods.filter((b) => b !== a).flatMap((b) => b.ips.map((ip) => ({ a, b, ip }))));
  const ok = await Promise.all(probes.map((x) => ping(x.a, x.ip)));
  return probes.filter((_, k) => !ok[k]).map(({ a, b, ip }) => `${a.name} (node${a.node}) -> ${b.name} (node${b.node}) ${ip}`);
}

// ---- the rules ----

describe('RunPodSandbox: CRI reports for each sandbox exactly the addresses vnet-ipam holds for its ID, from the node’s own range', () => {
  for (const layout of LAYOUTS) {
    it(`${layout}: ${PODS_PER_NODE} sandboxes on each of ${NODES} nodes (node0 one by one, node1 all at once, as kubelet starts pods), each READY with one address per family, held by vnet-ipam under its sandbox ID`, async () => {
      const e = env(layout);
      for (let i = 0; i < NODES; i++) expect((await e.nodes[i]!.cri.conditions()).NetworkReady).toMatchObject({ status: true });
      for (let j = 0; j < PODS_PER_NODE; j++) await runPod(e, 0, `n0p${j}`);
      // the first ADDs on a fresh node at once: in Azure's layout each would create the bridge and move eth0
      for (let i = 1; i < NODES; i++) await Promise.all(Array.from({ length: PODS_PER_NODE }, (_, j) => runPod(e, i, `n${i}p${j}`, timings.runAtOnce)));
      for (const p of e.pods) {
        const { status, info } = await e.nodes[p.node]!.cri.podSandboxStatus(p.id);
        expect(status.state).toBe('SANDBOX_READY');
        expect(p.ips.map((ip) => ip.includes(':'))).toEqual(DUAL_STACK ? [false, true] : [false]);
        for (const ip of p.ips) {
          expect(inNodeRange(e, p.node, ip), `${ip} in node${p.node}'s range`).toBe(true);
          expect(allocation(e, p.node, ip)).toBe(`${p.id}\r\neth0`);
        }
        // the CNI result containerd kept is vnet's: the same addresses on eth0
        const eth0 = info.cniResult?.Interfaces?.eth0;
        expect((eth0?.IPConfigs ?? []).map((c) => c.IP).sort()).toEqual([...p.ips].sort());
        // the pod's eth0 holds them, seen through the netns path CRI gave the sandbox, which is the pause process's netns
        expect(dirname(p.netns)).toBe(join(e.nodes[p.node]!.state, 'io.containerd.grpc.v1.cri', 'netns'));
        expect(basename(p.netns)).toMatch(/^cni-[0-9a-f-]{36}$/);
        const addrs = JSON.parse(e.nodes[p.node]!.inNetns(p.netns, ['ip', '-json', 'addr', 'show', 'dev', 'eth0']))[0].addr_info.map((a: any) => a.local);
        for (const ip of p.ips) expect(addrs).toContain(ip);
        const inode = e.nodes[p.node]!.inNetns(p.netns, ['stat', '-L', '-c', '%i', '/proc/self/ns/net']).trim();
        expect(readlinkSync(`/proc/${p.pid}/ns/net`)).toBe(`net:[${inode}]`);
        // in cgroups under the parent the request named (cgroupfs: <parent>/<sandbox ID>)
        expect(info.runtimeSpec.linux?.cgroupsPath).toBe(`${e.nodes[p.node]!.cgroupParent}/${p.id}`);
        expect(readFileSync(`/proc/${p.pid}/cgroup`, 'utf8').split('\n').filter((l) => l.endsWith(`:${e.nodes[p.node]!.cgroupParent}/${p.id}`))).not.toEqual([]);
        // and the node holds its host veth, named from the sandbox ID
        expect(nodeLinks(e, p.node).find((l) => l.ifname === veth(e, p))).toMatchObject({ operstate: 'UP' });
      }
      for (let i = 0; i < NODES; i++) {
        const mine = e.pods.filter((p) => p.node === i).flatMap((p) => p.ips.map((ip) => canonicalIp(ip)!));
        expect(allocations(e, i)).toEqual([...mine].sort());
        // libcni cached both networks' results per sandbox: the loopback's and vnet's
        expect(cniCache(e, i)).toEqual(e.pods.filter((p) => p.node === i).flatMap((p) => [`cni-loopback-${p.id}-lo`, `${e.network}-${p.id}-eth0`]).sort());
      }
      const all = e.pods.flatMap((p) => p.ips);
      expect(new Set(all).size).toBe(all.length);
    });
  }
});

describe('pods started through CRI reach each other, across nodes and on the same node, in both families', () => {
  for (const layout of LAYOUTS) {
    it(`${layout}: every sandbox pings every other sandbox's every address`, async () => {
      const e = env(layout);
      expect(e.pods).toHaveLength(NODES * PODS_PER_NODE);
      expect(await unreachable(e.pods)).toEqual([]);
    });
  }
});

describe('a containerd restart (SIGKILL, then started again on the same state) keeps existing pods: no CNI call, same addresses, still reachable', () => {
  for (const layout of LAYOUTS) {
    it(`${layout}: both nodes' containerd killed and restarted; sandboxes READY with their addresses, reachable; a new sandbox after it reaches them`, async () => {
      const e = env(layout);
      const calls = e.nodes.map((_, i) => cniCalls(e, i));
      for (const d of e.nodes) await d.kill();
      // the sandboxes and their shims live on without containerd
      for (const p of e.pods) expect(alive(p.pid)).toBe(true);
      expect(await unreachable(e.pods)).toEqual([]);
      for (const d of e.nodes) timings.restart.push(await d.start());
      for (const p of e.pods) {
        const { status, info } = await e.nodes[p.node]!.cri.podSandboxStatus(p.id);
        expect(status.state).toBe('SANDBOX_READY');
        expect(sandboxIps(status)).toEqual(p.ips);
        expect(info.pid).toBe(p.pid);
        expect(info.netNamespaceClosed).toBe(false);
      }
      // the restart itself made no CNI call
      expect(e.nodes.map((_, i) => cniCalls(e, i))).toEqual(calls);
      expect(await unreachable(e.pods)).toEqual([]);
      // the restarted containerd runs new pods: one more per node, reaching every other
      for (let i = 0; i < NODES; i++) await runPod(e, i, `n${i}late`);
      for (const p of e.pods.slice(-NODES)) for (const ip of p.ips) expect(allocation(e, p.node, ip)).toBe(`${p.id}\r\neth0`);
      expect(await unreachable(e.pods)).toEqual([]);
    });
  }
});

describe('StopPodSandbox (CNI DEL) and RemovePodSandbox leave nothing: no azv veth, host route, allocation, libcni cache file, netns, process or cgroup', () => {
  for (const layout of LAYOUTS) {
    it(`${layout}: each sandbox stopped, checked, removed, checked; then the nodes hold no trace of any pod`, async () => {
      const e = env(layout);
      const pods = [...e.pods];
      expect(pods.length).toBeGreaterThan(0);
      for (const p of pods) {
        const d = e.nodes[p.node]!;
        const shims = d.shims();
        await timed(timings.stop, () => d.cri.stopPodSandbox(p.id));
        const { status } = await d.cri.podSandboxStatus(p.id);
        expect(status.state).toBe('SANDBOX_NOTREADY');
        expect(sandboxIps(status)).toEqual([]);
        expect(nodeLinks(e, p.node).map((l) => l.ifname)).not.toContain(veth(e, p));
        for (const ip of p.ips) {
          expect(allocation(e, p.node, ip)).toBeUndefined();
          expect(hostRoutesTo(e, p.node, ip)).toEqual([]);
        }
        expect(cniCache(e, p.node).filter((f) => f.includes(p.id))).toEqual([]);
        expect(alive(p.pid)).toBe(false);
        expect(cniCalls(e, p.node)[p.id]).toEqual(['ADD netns', 'DEL netns']);

        await timed(timings.remove, () => d.cri.removePodSandbox(p.id));
        // containerd 1.6's Remove stops the sandbox again, so the plugins get a second DEL, without
        // a netns (it is gone), as kubelet's Stop then Remove makes on every node: it must succeed
        expect(cniCalls(e, p.node)[p.id]).toEqual(['ADD netns', 'DEL netns', 'DEL no netns']);
        expect((await d.cri.listPodSandbox()).map((s) => s.id)).not.toContain(p.id);
        expect(netnsFiles(e, p.node).filter((f) => p.netns.endsWith(`/${f}`))).toEqual([]);
        expect(existsSync(join(d.state, 'io.containerd.grpc.v1.cri', 'sandboxes', p.id))).toBe(false);
        expect(d.sandboxCgroups().filter((c) => c.endsWith(`/${p.id}`))).toEqual([]);
        // its shim is gone; the other sandboxes' are not
        expect(d.shims().length).toBe(shims.length - 1);
        e.pods.splice(e.pods.indexOf(p), 1);
        // the pods left still reach each other
        if (p === pods[Math.floor(pods.length / 2)]) expect(await unreachable(e.pods)).toEqual([]);
      }
      for (let i = 0; i < NODES; i++) {
        const d = e.nodes[i]!;
        expect(await d.cri.listPodSandbox()).toEqual([]);
        expect(podLeftovers(e.c, i)).toEqual({ links: [], routes: [], neighbours: [], masquerade: [], macDnat: [], allocations: [], index: [], temps: [], cached: [] });
        expect(cniCache(e, i)).toEqual([]);
        expect(netnsFiles(e, i)).toEqual([]);
        expect(d.sandboxPids()).toEqual([]);
        expect(d.sandboxCgroups()).toEqual([]);
        expect(d.shims()).toEqual([]);
        // every sandbox had one ADD, the DEL of its Stop and the one of its Remove; nothing else ran
        expect(Object.values(cniCalls(e, i)).filter((x) => x.join() !== 'ADD netns,DEL netns,DEL no netns')).toEqual([]);
      }
    });
  }
});

describe('containerd runs in the node namespaces and a mount namespace of its own: the machine’s mount table and network namespace keep nothing of it', () => {
  it('each containerd is in its node’s netns and its holder’s mount namespace, where /run and /var/lib are its own dirs; the machine has none of those mounts, no /run/containerd it did not have, no libcni cache file or azv link of ours', () => {
    const mountsOf = (pid: number | 'self') => readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
    const machine = mountsOf('self');
    for (const d of daemons) {
      const pid = d.pid!;
      expect(alive(pid)).toBe(true);
      expect(readlinkSync(`/proc/${pid}/ns/mnt`)).toBe(readlinkSync(`/proc/${d.holderPid}/ns/mnt`));
      expect(readlinkSync(`/proc/${pid}/ns/mnt`)).not.toBe(readlinkSync('/proc/self/ns/mnt'));
      expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(`net:[${sh(['stat', '-L', '-c', '%i', `/var/run/netns/${d.o.netns}`]).trim()}]`);
      // inside: /run and /var/lib are bind mounts (field 5: mount point); the machine has no mount in our dirs
      const inside = mountsOf(pid).map((f) => f[4]);
      expect(inside).toContain('/run');
      expect(inside).toContain('/var/lib');
      expect(machine.filter((f) => f[4]!.startsWith(d.dir) || f[3]!.startsWith(d.dir))).toEqual([]);
    }
    expect(machine.filter((f) => f[4] === '/run/containerd' || f[4]!.startsWith('/run/containerd/') || f[4]!.startsWith('/var/lib/cni'))).toEqual([]);
    if (!MACHINE_HAD.runContainerd) expect(existsSync('/run/containerd')).toBe(false);
    // libcni's cache on the machine (podman's, if any) names none of our sandboxes
    const machineCache = existsSync('/var/lib/cni/results') ? readdirSync('/var/lib/cni/results') : [];
    expect(machineCache.filter((f) => [...sandboxIds].some((id) => f.includes(id)))).toEqual([]);
    expect(sh(['ip', '-o', 'link', 'show']).split('\n').filter((l) => / azv[0-9a-f]+[@:]/.test(l))).toEqual([]);
  });
});
