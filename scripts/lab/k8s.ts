// `scripts/k8s-e2e.sh`: a real Kubernetes v1.20.2 cluster on the lab (lab/cluster.ts), its nodes
// wired by vnet, driven end to end, then torn down. Everything lives in namespaces made here:
//
//   <prefix>-vnet, -outside, -node<i>   the lab's own (Cluster.create), nodes at 10.220.2.4+i
//   <prefix>-cp                         the control plane at CP_IP on the VNet: etcd (127.0.0.1),
//                                       kube-apiserver (:6443), controller-manager, scheduler
//   per node                            containerd (test/helpers/containerd.ts: its netns and a private
//                                       mount namespace held by a holder process), and in that same
//                                       mount namespace and netns the kubelet and kube-proxy
//
// Files under /tmp/<prefix> (the lab's dir), cgroups under /<prefix>-node<i> in every hierarchy.
// Why things are as they are (facts of this machine and of kubelet 1.20):
// - kubelet 1.20 with --container-runtime=remote leaves the network to the runtime: its
//   --network-plugin/--cni-* flags are dockershim's only. containerd's CRI config (the harness's)
//   names the CNI bin and conf dirs; the conflist there is what `vnet install` wrote.
// - kubenet/overlay: the node's pod CIDR is the one the controller-manager put in spec.podCIDR. The
//   lab's own conflist (with the lab's guess) is removed before containerd starts, so no pod can be
//   wired before `vnet install --pod-cidr <spec.podCIDR>` has run, and the VNet's routes are fixed
//   to send each assigned CIDR to its node.
// - kubelet writes machine-wide sysctls at start (setupKernelTunables). In the node's private
//   mount namespace small files holding the values it wants are bind-mounted over those /proc/sys
//   files: it reads what it expects and writes nothing. (--protect-kernel-defaults would fail.)
// - kubelet hard-codes /var/log/pods (container logs): a dir of the node is bind-mounted over /var/log
//   in the same private namespace (containerd writes the logs there too, it shares the namespace).
// - kubelet refuses a --cgroup-root that does not exist: it is made in every hierarchy first.
// - root lacks CAP_SYS_RESOURCE: --oom-score-adj=0 for kubelet and kube-proxy.
// - No registry and no DNS: the workload runs the sandbox image (static busybox) with a command of
//   its own, imagePullPolicy Never; busybox's nc serves its hostname (the pod's name) on 8080, and
//   clients are busybox nc run in a pod's netns (/proc/<container pid>/ns/net).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BlockList } from 'node:net';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, LAYOUTS, MAX_NODES, installArgs, nodeAddressing, nodeIp, OUTSIDE, podLeftovers, SDN_MAC, seededConflist, VNET_GW, type Layout } from './cluster.js';
import type { Conflist } from './chain.js';
import { inNs, nsPath, sh, trySh } from './sys.js';
import { askWhoami, whoami } from './matrix.js';
import { Containerd, PAUSE_IMAGE, buildPauseImage, criSetup } from '../../test/helpers/containerd.js';
import { pidsInCgroups } from '../../test/helpers/lab.js';

// Bundled to dist/k8s.cjs by scripts/k8s-e2e.sh: the repository is the bundle's parent's parent.
const ROOT = resolve(dirname(process.argv[1] ?? '.'), '..');
/** The control plane's address on the VNet: beyond every node's slice (.32 to .223 for 6 nodes). */
const CP_IP = '10.220.2.250';
const CLUSTER_CIDR = '10.244.0.0/16';
const SERVICE_CIDR = '10.96.0.0/16';
// Dual stack (Kubernetes 1.20: alpha, behind the IPv6DualStack feature gate on every component).
const CLUSTER_CIDR6 = 'fd00:244::/56';
const SERVICE_CIDR6 = 'fd00:96::/112';
const DUAL = '--feature-gates=IPv6DualStack=true';
const CGROUP_ROOT = '/sys/fs/cgroup';
/** What kubelet 1.20's setupKernelTunables wants; each is bind-mounted over, in the node's mount namespace only. */
const KUBELET_SYSCTLS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
const say = (s: string) => console.log(`[${secs()}s] ${s}`);
let failures = 0;
function result(ok: boolean, what: string) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

/** Like sys.ts's sh, with a timeout; a failure is an answer. */
function attempt(argv: readonly string[], timeoutMs = 10_000, input = ''): { ok: boolean; out: string } {
  try {
    return { ok: true, out: execFileSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs }) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

async function waitFor<T>(what: string, timeoutMs: number, f: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const start = performance.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(1000);
  }
}

/** The index of the node a pod runs on (its spec.nodeName ends in node<i>). */
const nodeOf = (p: any): number => Number(/node(\d+)$/.exec(p.spec.nodeName)![1]);
/** Every address of a pod, IPv4 first (status.podIPs; podIP alone on a cluster that has no podIPs). */
const podIpsOf = (p: any): string[] => (p.status.podIPs?.length ? p.status.podIPs.map((x: any) => x.ip) : [p.status.podIP]);
const family = (ip: string) => (ip.includes(':') ? 'ipv6' : 'ipv4');

export function machineSysctls(): Record<string, string> {
  return Object.fromEntries(Object.keys(KUBELET_SYSCTLS).map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]));
}

// ---------------------------------------------------------------------------------------------
// Leftovers: found and removed by name (prefix) and pid, from this process or a later `down`.

const dirOf = (prefix: string) => `/tmp/${prefix}`;
const pidFile = (prefix: string) => join(dirOf(prefix), 'k8s-pids.json');

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}
function alive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
/** Our cgroup directories, /<prefix>-…, in every hierarchy. */
function ourCgroups(prefix: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync(CGROUP_ROOT)) {
    const d = join(CGROUP_ROOT, h);
    try {
      if (!statSync(d).isDirectory()) continue;
      for (const e of readdirSync(d)) if (e.startsWith(`${prefix}-`)) out.push(join(d, e));
    } catch {
      // not a hierarchy
    }
  }
  return out;
}
/** Every live process of this run: recorded pids, any naming our dir, any in our cgroups. */
function ourProcesses(prefix: string): number[] {
  const pids = new Set<number>();
  if (existsSync(pidFile(prefix))) for (const p of JSON.parse(readFileSync(pidFile(prefix), 'utf8')) as number[]) pids.add(p);
  for (const e of readdirSync('/proc')) if (/^\d+$/.test(e) && cmdline(Number(e)).includes(`${dirOf(prefix)}/`)) pids.add(Number(e));
  for (const p of pidsInCgroups(ourCgroups(prefix))) pids.add(p);
  pids.delete(process.pid);
  return [...pids].filter(alive);
}
function rmCgroup(d: string) {
  for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmCgroup(join(d, e.name));
  rmdirSync(d);
}
const ourNetns = (prefix: string) => (existsSync('/var/run/netns') ? readdirSync('/var/run/netns').filter((n) => n.startsWith(`${prefix}-`)) : []);

/** SIGKILLs what is left by pid, removes cgroups, namespaces, files; then says whether anything is left. */
export async function sweep(prefix: string): Promise<boolean> {
  for (let round = 0; round < 5; round++) {
    const pids = ourProcesses(prefix);
    if (!pids.length) break;
    for (const p of pids) trySh(['kill', '-KILL', String(p)]);
    await sleep(300);
  }
  for (let i = 0; i < 20 && ourCgroups(prefix).length; i++) {
    for (const d of ourCgroups(prefix)) {
      try {
        rmCgroup(d);
      } catch {
        // busy for a moment more
      }
    }
    if (ourCgroups(prefix).length) await sleep(200);
  }
  for (const ns of ourNetns(prefix)) trySh(['ip', 'netns', 'del', ns]);
  rmSync(dirOf(prefix), { recursive: true, force: true });
  const left = { processes: ourProcesses(prefix), cgroups: ourCgroups(prefix), netns: ourNetns(prefix), files: existsSync(dirOf(prefix)) ? [dirOf(prefix)] : [] };
  const none = Object.values(left).every((x) => x.length === 0);
  result(none, `nothing left with prefix ${prefix} (processes, cgroups, netns, files)${none ? '' : `: ${JSON.stringify(left)}`}`);
  return none;
}

// ---------------------------------------------------------------------------------------------
// The cluster.

interface Opts {
  layout: Layout;
  dualStack: boolean;
  /** A conflist from conf/seeds/ on every node instead of the one `vnet install` writes. */
  seed?: Conflist;
  nodes: number;
  keep: boolean;
  prefix: string;
}

class K8s {
  readonly dir: string;
  readonly bin: string;
  lab!: Cluster;
  readonly cp: string;
  readonly nodesCri: Containerd[] = [];
  private readonly procs: { name: string; child: ChildProcess }[] = [];
  private readonly pids: number[] = [];
  readonly kubeconfig: string;
  /** Node i's spec.podCIDRs (kubenet, overlay): IPv4, then IPv6 when dual stack. */
  podCidrs: string[][] = [];

  constructor(readonly o: Opts, bin: string) {
    this.dir = dirOf(o.prefix);
    this.bin = bin;
    this.cp = `${o.prefix}-cp`;
    this.kubeconfig = join(this.dir, 'pki', 'admin.kubeconfig');
  }

  nodeName = (i: number) => `${this.o.prefix}-node${i}`;
  get dual() {
    return this.o.dualStack ? [DUAL] : [];
  }
  get services() {
    return this.o.dualStack ? `${SERVICE_CIDR},${SERVICE_CIDR6}` : SERVICE_CIDR;
  }
  get clusterCidrs() {
    return this.o.dualStack ? `${CLUSTER_CIDR},${CLUSTER_CIDR6}` : CLUSTER_CIDR;
  }
  nodeDir = (i: number) => join(this.dir, `node${i}`);
  /** Whether node i's conflist masquerades its pods (ipMasq on vnet). */
  masq(i: number): boolean {
    return (this.lab.conflist(i).plugins.find((p) => p.type === 'vnet') as { ipMasq?: boolean } | undefined)?.ipMasq === true;
  }
  get perNodeCidr() {
    return this.o.layout === 'kubenet' || this.o.layout === 'overlay';
  }

  private record(pid: number | undefined) {
    if (!pid) return;
    this.pids.push(pid);
    writeFileSync(pidFile(this.o.prefix), JSON.stringify(this.pids));
  }

  /** Starts a long-running process with its output in <dir>/logs/<name>.log. */
  private start(name: string, argv: string[]): ChildProcess {
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    const log = openSync(join(this.dir, 'logs', `${name}.log`), 'a');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log, log], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: this.dir } });
    closeSync(log);
    child.on('error', () => undefined);
    this.procs.push({ name, child });
    this.record(child.pid);
    return child;
  }
  logTail(name: string, n = 15) {
    const f = join(this.dir, 'logs', `${name}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8').trimEnd().split('\n').slice(-n).join('\n') : '(no log)';
  }
  checkAlive() {
    for (const p of this.procs) if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}):\n${this.logTail(p.name)}`);
  }

  kubectl(args: string[], input?: string, timeoutMs = 30_000): string {
    const r = attempt(['nsenter', `--net=${nsPath(this.cp)}`, join(this.bin, 'kubectl'), '--kubeconfig', this.kubeconfig, ...args], timeoutMs, input);
    if (!r.ok) throw new Error(`kubectl ${args.join(' ')}: ${r.out.trim()}`);
    return r.out;
  }
  getJson(args: string[]): any {
    return JSON.parse(this.kubectl(['get', ...args, '-o', 'json']));
  }

  // ---- set-up ----

  async up() {
    mkdirSync(this.dir, { recursive: true });
    this.lab = Cluster.create({
      layout: this.o.layout, nodes: this.o.nodes, pods: 0, dualStack: this.o.dualStack, prefix: this.o.prefix, seed: this.o.seed,
      dir: this.dir, binDir: join(ROOT, 'dist', 'bin'), refDir: '/usr/lib/cni',
    });
    // The conflist comes when the controller-manager has said which pod CIDR (see the header).
    if (this.perNodeCidr) for (let i = 0; i < this.o.nodes; i++) rmSync(this.lab.conflistFile(i));
    this.attachControlPlane();
    say(`lab up: ${this.o.layout}, ${this.o.nodes} nodes, control plane ${this.cp} at ${CP_IP}; files in ${this.dir}`);
    this.certificates();
    await this.controlPlane();
    say('control plane answers');
    const proto = criSetup(resolve(ROOT, '.tmp/cri'));
    const image = buildPauseImage(join(this.dir, 'image'));
    await Promise.all(Array.from({ length: this.o.nodes }, (_, i) => this.node(i, proto, image)));
    say('containerd, kubelet and kube-proxy started on every node');
  }

  /** The control plane's namespace on the VNet, attached as the lab attaches a node. */
  private attachControlPlane() {
    const v = this.lab.vnet;
    sh(['ip', 'netns', 'add', this.cp]);
    inNs(this.cp, ['ip', 'link', 'set', 'lo', 'up']);
    inNs(v, ['ip', 'link', 'add', 'cp0', 'address', SDN_MAC, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsPath(this.cp)]);
    inNs(this.cp, ['ip', 'addr', 'add', `${CP_IP}/24`, 'dev', 'eth0']);
    inNs(this.cp, ['ip', 'link', 'set', 'eth0', 'up']);
    this.lab.attachPort('cp0');
    inNs(v, ['ip', 'route', 'add', `${CP_IP}/32`, 'dev', 'cp0']);
    inNs(this.cp, ['ip', 'route', 'add', 'default', 'via', VNET_GW[4]]);
  }

  /** A CA, the apiserver's serving cert, one admin client cert (system:masters) for every component, the service-account keys. */
  private certificates() {
    const pki = join(this.dir, 'pki');
    mkdirSync(pki, { recursive: true });
    const f = (n: string) => join(pki, n);
    const ssl = (args: string[]) => sh(['openssl', ...args]);
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', `/CN=${this.o.prefix}-ca`]);
    const signed = (name: string, subj: string, ext: string) => {
      ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj]);
      writeFileSync(f(`${name}.ext`), ext);
      ssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '2', '-extfile', f(`${name}.ext`)]);
    };
    const sans = ['DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local', `IP:${CP_IP}`, 'IP:10.96.0.1', 'IP:127.0.0.1'];
    signed('apiserver', '/CN=kube-apiserver', `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(',')}\n`);
    signed('admin', '/O=system:masters/CN=admin', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
    ssl(['genrsa', '-out', f('sa.key'), '2048']);
    ssl(['rsa', '-in', f('sa.key'), '-pubout', '-out', f('sa.pub')]);
    // JSON is YAML: a kubeconfig every component and kubectl use.
    writeFileSync(
      this.kubeconfig,
      JSON.stringify({
        apiVersion: 'v1', kind: 'Config', 'current-context': 'lab',
        clusters: [{ name: 'lab', cluster: { server: `https://${CP_IP}:6443`, 'certificate-authority': f('ca.crt') } }],
        users: [{ name: 'admin', user: { 'client-certificate': f('admin.crt'), 'client-key': f('admin.key') } }],
        contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'admin' } }],
      }),
    );
  }

  private async controlPlane() {
    const b = (n: string) => join(this.bin, n);
    const pki = (n: string) => join(this.dir, 'pki', n);
    const inCp = ['nsenter', `--net=${nsPath(this.cp)}`, '--'];
    const peer = 'http://127.0.0.1:2380';
    this.start('etcd', [...inCp, b('etcd'), '--name', 'cp', '--data-dir', join(this.dir, 'etcd'),
      '--listen-client-urls', 'http://127.0.0.1:2379', '--advertise-client-urls', 'http://127.0.0.1:2379',
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `cp=${peer}`]);
    this.start('kube-apiserver', [...inCp, b('kube-apiserver'), '--etcd-servers=http://127.0.0.1:2379',
      `--advertise-address=${CP_IP}`, '--secure-port=6443', '--insecure-port=0', `--cert-dir=${join(this.dir, 'apiserver')}`,
      `--tls-cert-file=${pki('apiserver.crt')}`, `--tls-private-key-file=${pki('apiserver.key')}`, `--client-ca-file=${pki('ca.crt')}`,
      `--service-cluster-ip-range=${this.services}`, ...this.dual, '--authorization-mode=Node,RBAC', '--allow-privileged=true',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local', `--service-account-key-file=${pki('sa.pub')}`,
      `--service-account-signing-key-file=${pki('sa.key')}`,
      // No DNS for node names; kubelets' serving certs are self-signed (no --kubelet-certificate-authority).
      '--kubelet-preferred-address-types=InternalIP', `--kubelet-client-certificate=${pki('admin.crt')}`, `--kubelet-client-key=${pki('admin.key')}`]);
    await waitFor('the apiserver /readyz', 90_000, () => {
      this.checkAlive();
      return attempt(['nsenter', `--net=${nsPath(this.cp)}`, b('kubectl'), '--kubeconfig', this.kubeconfig, 'get', '--raw', '/readyz'], 5000).out.trim() === 'ok';
    });
    this.start('kube-controller-manager', [...inCp, b('kube-controller-manager'), `--kubeconfig=${this.kubeconfig}`,
      `--authentication-kubeconfig=${this.kubeconfig}`, `--authorization-kubeconfig=${this.kubeconfig}`,
      '--leader-elect=false', '--bind-address=127.0.0.1', `--cert-dir=${join(this.dir, 'cm')}`,
      '--allocate-node-cidrs=true', `--cluster-cidr=${this.clusterCidrs}`, ...(this.o.dualStack ? ['--node-cidr-mask-size-ipv4=24', '--node-cidr-mask-size-ipv6=64', DUAL] : ['--node-cidr-mask-size=24']),
      `--service-cluster-ip-range=${this.services}`,
      `--service-account-private-key-file=${pki('sa.key')}`, `--root-ca-file=${pki('ca.crt')}`,
      `--cluster-signing-cert-file=${pki('ca.crt')}`, `--cluster-signing-key-file=${pki('ca.key')}`, '--use-service-account-credentials=false']);
    this.start('kube-scheduler', [...inCp, b('kube-scheduler'), `--kubeconfig=${this.kubeconfig}`,
      `--authentication-kubeconfig=${this.kubeconfig}`, `--authorization-kubeconfig=${this.kubeconfig}`,
      '--leader-elect=false', '--bind-address=127.0.0.1', `--cert-dir=${join(this.dir, 'scheduler')}`]);
  }

  /** Node i: containerd, then in its mount namespace the bind mounts, the kubelet and kube-proxy. */
  private async node(i: number, proto: string, image: string) {
    const nd = this.nodeDir(i);
    this.nodesCri[i] = new Containerd({
      name: this.nodeName(i), dir: join(nd, 'cri'), netns: this.lab.node(i), cniConfDir: dirname(this.lab.conflistFile(i)),
      cniBinDirs: [join(nd, 'bin'), '/usr/lib/cni'], protoFile: proto,
    });
    await this.boot(i, image);
  }

  /**
   * Boots node i's software: containerd (importing the image on the first boot), its mount
   * namespace's bind mounts, the node's cgroup root, the kubelet and kube-proxy. Each boot gets a
   * boot id of its own (a file over /proc/sys/kernel/random/boot_id in that mount namespace): the
   * kubelet reports it, and vnet's IPAM store reclaims a previous boot's addresses by it.
   */
  private async boot(i: number, image?: string) {
    const nd = this.nodeDir(i);
    const d = this.nodesCri[i]!;
    await d.start();
    this.record(d.holderPid);
    this.record(d.pid);
    if (image) await d.importImage(image);
    const inMnt = (argv: string[]) => sh(['nsenter', `--mount=/proc/${d.holderPid}/ns/mnt`, '--', ...argv]);
    const varLog = join(nd, 'var-log');
    mkdirSync(varLog, { recursive: true });
    inMnt(['mount', '--bind', varLog, '/var/log']);
    const faked: Record<string, string> = { ...KUBELET_SYSCTLS, 'kernel/random/boot_id': randomUUID() };
    for (const [k, v] of Object.entries(faked)) {
      const f = join(nd, 'sysctl', k);
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, `${v}\n`);
      inMnt(['mount', '--bind', f, `/proc/sys/${k}`]);
    }
    // kubelet's --cgroup-root must exist, in every hierarchy; cpuset's needs its cpus and mems.
    for (const h of readdirSync(CGROUP_ROOT)) {
      const root = join(CGROUP_ROOT, h);
      if (!statSync(root).isDirectory() || readlinkSafe(root)) continue;
      const c = join(root, this.nodeName(i));
      if (!existsSync(c)) mkdirSync(c);
      if (existsSync(join(c, 'cpuset.cpus')) && !readFileSync(join(c, 'cpuset.cpus'), 'utf8').trim()) {
        for (const k of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(c, k), readFileSync(join(root, k), 'utf8'));
      }
    }
    this.startKubelet(i);
    this.start(`kube-proxy-node${i}`, [...this.enter(i), join(this.bin, 'kube-proxy'), `--kubeconfig=${this.kubeconfig}`, `--hostname-override=${this.nodeName(i)}`,
      '--proxy-mode=iptables', '--oom-score-adj=0', ...(this.perNodeCidr ? [`--cluster-cidr=${this.clusterCidrs}`] : []), ...this.dual,
      // conntrack's sysctls are the machine's: kube-proxy leaves them alone with these.
      '--conntrack-max-per-core=0', '--conntrack-min=0', '--conntrack-tcp-timeout-established=0', '--conntrack-tcp-timeout-close-wait=0',
      '--metrics-bind-address=127.0.0.1:10249']);
  }

  /** nsenter into node i's mount namespace (its containerd's) and network namespace. */
  private enter(i: number) {
    return ['nsenter', `--mount=/proc/${this.nodesCri[i]!.holderPid}/ns/mnt`, `--net=${nsPath(this.lab.node(i))}`, '--'];
  }

  private startKubelet(i: number) {
    const name = this.nodeName(i);
    const kd = join(this.nodeDir(i), 'kubelet');
    this.start(`kubelet-node${i}`, [...this.enter(i), join(this.bin, 'kubelet'), `--kubeconfig=${this.kubeconfig}`, '--register-node=true',
      '--container-runtime=remote', `--container-runtime-endpoint=unix://${this.nodesCri[i]!.socket}`, `--containerd=${this.nodesCri[i]!.socket}`,
      '--cgroup-driver=cgroupfs', `--cgroup-root=/${name}`, '--cgroups-per-qos=true', '--enforce-node-allocatable=',
      '--oom-score-adj=0', `--root-dir=${kd}`, `--cert-dir=${join(kd, 'pki')}`, `--volume-plugin-dir=${join(kd, 'volume-plugins')}`,
      `--pod-infra-container-image=${PAUSE_IMAGE}`, '--fail-swap-on=false', `--hostname-override=${name}`, `--node-ip=${nodeIp(i, 4)}`,
      '--read-only-port=0', '--anonymous-auth=true', '--authorization-mode=AlwaysAllow', ...this.dual,
      // This machine's disk is shared and may be fuller than the defaults allow: no evictions, no image GC.
      '--eviction-hard=memory.available<1Mi,nodefs.available<1%,imagefs.available<1%', '--image-gc-high-threshold=100', '--image-gc-low-threshold=99',
      '--v=2']);
  }

  /** SIGKILL to the named long-running processes, forgotten once they have exited. */
  private async killProcs(pred: (name: string) => boolean) {
    const ps = this.procs.filter((p) => pred(p.name));
    await Promise.all(ps.map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        const exited = new Promise((r) => p.child.once('exit', r));
        p.child.kill('SIGKILL');
        await exited;
      }
      this.procs.splice(this.procs.indexOf(p), 1);
    }));
  }

  /** The kubelet and containerd of node i killed and started again; the shims and pods keep running. */
  async restartKubeletAndContainerd(i: number) {
    await this.killProcs((n) => n === `kubelet-node${i}`);
    await this.nodesCri[i]!.kill();
    await this.nodesCri[i]!.start();
    this.record(this.nodesCri[i]!.pid);
    this.startKubelet(i);
  }

  /**
   * Node i rebooted: everything on it killed at once (kubelet, kube-proxy, containerd, shims,
   * pods, and with its mount namespace the pods' network namespaces, so their veths go too), /run
   * emptied, then booted again with a new boot id. The node's own network (its namespace, address,
   * routes, what vnet set up node-wide) stays, as the lab's VNet keeps it.
   */
  async reboot(i: number) {
    await this.killProcs((n) => n === `kubelet-node${i}` || n === `kube-proxy-node${i}`);
    await this.nodesCri[i]!.powerCycle();
    await this.boot(i);
  }

  /** kubenet/overlay: each node's spec.podCIDRs into its conflist (`vnet install`) and the VNet's routes. */
  async wirePodCidrs() {
    if (!this.perNodeCidr) return;
    const want = this.o.dualStack ? 2 : 1;
    this.podCidrs = await waitFor(`every node registered with ${want} spec.podCIDRs`, 120_000, () => {
      this.checkAlive();
      const r = attempt(['nsenter', `--net=${nsPath(this.cp)}`, join(this.bin, 'kubectl'), '--kubeconfig', this.kubeconfig, 'get', 'nodes', '-o', 'json'], 10_000);
      if (!r.ok) return false;
      const byName = new Map<string, string[]>((JSON.parse(r.out).items as any[]).map((n) => [n.metadata.name, n.spec.podCIDRs ?? (n.spec.podCIDR ? [n.spec.podCIDR] : [])]));
      const cidrs = Array.from({ length: this.o.nodes }, (_, i) => byName.get(this.nodeName(i)) ?? []);
      return cidrs.every((c) => c.length === want) && cidrs;
    });
    const assigned = new Set(this.podCidrs.flat());
    for (let i = 0; i < this.o.nodes; i++) {
      const args = installArgs(this.lab.spec, i);
      const at = args.flatMap((a, j) => (a === '--pod-cidr' ? [j + 1] : []));
      at.forEach((j, f) => (args[j] = this.podCidrs[i]![f]!));
      inNs(this.lab.node(i), [join(this.lab.spec.binDir, 'vnet'), ...args]);
      // --seed: the seed conflist instead, with this node's pod CIDRs as its ranges.
      if (this.lab.spec.seed) writeFileSync(this.lab.conflistFile(i), JSON.stringify(seededConflist(this.lab.spec, i, this.podCidrs[i]!.map((subnet) => [{ subnet }])), null, 2));
      // The lab routed its own guess (10.244.i.0/24, fd00:244:i::/64) to node i: the controller-manager's choice wins.
      for (const dst of nodeAddressing(this.o.layout, i, this.o.dualStack).vnetRoutes) {
        if (!assigned.has(dst)) trySh(['nsenter', `--net=${nsPath(this.lab.vnet)}`, 'ip', ...(dst.includes(':') ? ['-6'] : []), 'route', 'del', dst]);
      }
      for (const c of this.podCidrs[i]!) {
        const v6 = c.includes(':');
        inNs(this.lab.vnet, ['ip', ...(v6 ? ['-6'] : []), 'route', 'replace', c, 'via', nodeIp(i, v6 ? 6 : 4), 'dev', `n${i}`]);
      }
    }
    say(`pod CIDRs from the controller-manager: ${this.podCidrs.map((c, i) => `node${i} ${c.join(' ')}`).join(', ')}`);
  }

  /** The ranges node i's pods must be in, both families when dual stack. */
  nodeRange(i: number): (ip: string) => boolean {
    const list = new BlockList();
    if (this.perNodeCidr) {
      for (const c of this.podCidrs[i]!) list.addSubnet(c.split('/')[0]!, Number(c.split('/')[1]), family(c));
    } else {
      for (const [r] of nodeAddressing(this.o.layout, i, this.o.dualStack).ranges as { rangeStart: string; rangeEnd: string }[][]) list.addRange(r!.rangeStart, r!.rangeEnd, family(r!.rangeStart));
    }
    return (ip) => list.check(ip, family(ip));
  }

  /** The pid of a pod's (first) container, from its node's containerd: the pod's netns is /proc/<pid>/ns/net. */
  containerPid(pod: any): number {
    const id = String(pod.status.containerStatuses?.[0]?.containerID ?? '').replace(/^containerd:\/\//, '');
    const row = this.nodesCri[nodeOf(pod)]!.ctr(['task', 'ls']).split('\n').find((l) => l.startsWith(`${id} `));
    if (!id || !row) throw new Error(`no task for pod ${pod.metadata.name}`);
    return Number(row.trim().split(/\s+/)[1]);
  }

  // ---- tear-down ----

  async down() {
    const stop = async (pred: (n: string) => boolean) => {
      const ps = this.procs.filter((p) => pred(p.name) && p.child.exitCode === null && p.child.signalCode === null);
      for (const p of ps) p.child.kill('SIGTERM');
      for (let i = 0; i < 50 && ps.some((p) => p.child.exitCode === null && p.child.signalCode === null); i++) await sleep(100);
      for (const p of ps) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    };
    // kubelets first (they do not stop pods on exit), then containerd stops and removes every
    // sandbox through CRI (the plugin's DELs), then the rest.
    await stop((n) => n.startsWith('kubelet') || n.startsWith('kube-proxy'));
    await Promise.all(this.nodesCri.map((d) => d?.cleanup()));
    await stop(() => true);
    this.lab?.destroy();
  }
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The checks.

const APP = 'web';
function deployment(replicas: number) {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: APP },
    spec: {
      replicas, selector: { matchLabels: { app: APP } },
      template: {
        metadata: { labels: { app: APP } },
        spec: {
          terminationGracePeriodSeconds: 1,
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: APP } } }],
          // The sandbox image's busybox: each connection on 8080 gets the pod's hostname (its name).
          containers: [{ name: APP, image: PAUSE_IMAGE, imagePullPolicy: 'Never', command: ['/bin/busybox', 'nc', '-ll', '-p', '8080', '-e', '/bin/busybox', 'hostname'], ports: [{ containerPort: 8080 }] }],
        },
      },
    },
  };
}
const service = (name: string, selector: Record<string, string>, type: 'ClusterIP' | 'NodePort') => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { type, selector, ports: [{ port: 80, targetPort: 8080 }] },
});

/** busybox nc from a netns path: what the server said, or undefined. */
function ask(netns: string, ip: string, port: number | string): string | undefined {
  const r = attempt(['nsenter', `--net=${netns}`, 'busybox', 'nc', '-w', '3', ip, String(port)], 8000);
  return r.ok ? r.out.trim() : undefined;
}

/** Every node with its pod range wired and Ready, the machine's sysctls untouched. */
async function ready(k: K8s): Promise<boolean> {
  const n = k.o.nodes;
  await k.wirePodCidrs();
  if (k.perNodeCidr) result(k.podCidrs.length === n && new Set(k.podCidrs.flat()).size === n * k.podCidrs[0]!.length, `every node got its spec.podCIDRs (${k.podCidrs.map((c) => c.join(' ')).join(', ')})`);
  const tReady = performance.now();
  try {
    await waitFor('every node Ready', 180_000, () => {
      const nodes = k.getJson(['nodes']).items as any[];
      return nodes.length === n && nodes.every((x) => x.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True'));
    });
    result(true, `${n} nodes Ready (${secs()}s since start${k.perNodeCidr ? `, ${((performance.now() - tReady) / 1000).toFixed(1)}s after the pod CIDRs` : ''})`);
  } catch (err) {
    result(false, `nodes Ready: ${(err as Error).message}\n${k.kubectl(['get', 'nodes', '-o', 'wide'])}`);
    return false;
  }
  const sysNow = machineSysctls();
  result(Object.entries(sysNow).every(([key]) => sysNow[key] === BEFORE[key]), `the machine's sysctls unchanged while kubelets run (${Object.entries(sysNow).map(([a, b]) => `${a}=${b}`).join(' ')})`);
  return true;
}

async function checks(k: K8s) {
  const n = k.o.nodes;
  if (!(await ready(k))) return;

  // 2. a Deployment, 2 pods per node
  await waitFor('the default service account', 60_000, () => attempt(['nsenter', `--net=${nsPath(k.cp)}`, join(k.bin, 'kubectl'), '--kubeconfig', k.kubeconfig, 'get', 'sa', 'default']).ok);
  k.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [deployment(2 * n), service(APP, { app: APP }, 'NodePort')] }));
  const tDeploy = performance.now();
  let pods: any[];
  try {
    pods = await waitFor(`${2 * n} pods Running`, 180_000, () => {
      const ps = k.getJson(['pods', '-l', `app=${APP}`]).items as any[];
      return ps.length === 2 * n && ps.every((p) => p.status.phase === 'Running' && p.status.podIP && p.status.containerStatuses?.[0]?.ready) && ps;
    });
  } catch (err) {
    result(false, `Deployment running: ${(err as Error).message}\n${k.kubectl(['get', 'pods', '-o', 'wide'])}\n${k.kubectl(['get', 'events', '--sort-by=.lastTimestamp']).split('\n').slice(-15).join('\n')}`);
    return;
  }
  const perNode = Array.from({ length: n }, (_, i) => pods.filter((p) => nodeOf(p) === i));
  result(perNode.every((ps) => ps.length === 2), `Deployment of ${2 * n} Running in ${((performance.now() - tDeploy) / 1000).toFixed(1)}s, 2 per node`);
  const families = k.o.dualStack ? 2 : 1;
  const outOfRange = pods.filter((p) => podIpsOf(p).length !== families || !podIpsOf(p).every(k.nodeRange(nodeOf(p))));
  result(!outOfRange.length, `every pod's ${families === 2 ? 'IPv4 and IPv6 addresses' : 'IP'} inside its node's range (${pods.map((p) => `${p.metadata.name.slice(-5)}@node${nodeOf(p)}=${podIpsOf(p).join(',')}`).join(' ')})`);

  // 3. pod -> pod
  let netns = podNetns(k, pods);
  podToPod(k, pods, netns, '');

  // 4. Services
  const svc = k.getJson(['service', APP]);
  const clusterIp: string = svc.spec.clusterIP;
  const nodePort: number = svc.spec.ports[0].nodePort;
  await waitFor('the Service endpoints', 60_000, () => (k.getJson(['endpoints', APP]).subsets?.[0]?.addresses?.length ?? 0) === 2 * n);
  const names = new Set(pods.map((p) => p.metadata.name));
  const client = perNode[0]![0]!;
  // The endpoints are there before kube-proxy has written all of them into every node's rules (a
  // first sync may hold only some): wait until a backend on another node has answered once.
  const remoteNames = new Set(pods.filter((p) => nodeOf(p) !== nodeOf(client)).map((p) => p.metadata.name));
  await waitFor('kube-proxy to program every endpoint of the ClusterIP', 30_000, () => {
    const got = ask(netns.get(client.metadata.name)!, clusterIp, 80);
    return n === 1 ? got !== undefined : got !== undefined && remoteNames.has(got);
  }).catch(() => undefined);
  const seen = new Set<string>();
  let answered = 0;
  const tries = 12 * n;
  for (let j = 0; j < tries; j++) {
    const got = ask(netns.get(client.metadata.name)!, clusterIp, 80);
    if (got && names.has(got)) answered++, seen.add(got);
  }
  const remote = [...seen].filter((s) => pods.some((p) => p.metadata.name === s && nodeOf(p) !== nodeOf(client)));
  result(answered === tries && (n === 1 || remote.length > 0), `ClusterIP ${clusterIp}:80 from a pod on node0: ${answered}/${tries} answered, by ${seen.size} backends, ${remote.length} on other nodes`);
  // Hairpin: a Service whose one backend is the client itself.
  const self = perNode[n - 1]![0]!;
  k.kubectl(['label', 'pod', self.metadata.name, `hairpin=${self.metadata.name}`]);
  k.kubectl(['apply', '-f', '-'], JSON.stringify(service('hairpin', { hairpin: self.metadata.name }, 'ClusterIP')));
  const hp = k.getJson(['service', 'hairpin']).spec.clusterIP;
  await waitFor('the hairpin endpoint', 60_000, () => (k.getJson(['endpoints', 'hairpin']).subsets?.[0]?.addresses?.length ?? 0) === 1);
  let hairpin: string | undefined;
  await waitFor('kube-proxy to program the hairpin Service', 20_000, () => (hairpin = ask(netns.get(self.metadata.name)!, hp, 80)) === self.metadata.name).catch(() => undefined);
  result(hairpin === self.metadata.name, `hairpin: backend ${self.metadata.name} to its own Service ${hp} (got ${hairpin ?? 'nothing'})`);
  for (const [from, fromNs] of [['outside', nsPath(k.lab.outside)], [`node0`, nsPath(k.lab.node(0))]] as const) {
    const target = nodeIp(n - 1, 4);
    await waitFor(`the NodePort to answer ${from} once`, 20_000, () => ask(fromNs, target, nodePort)).catch(() => undefined);
    const answers = Array.from({ length: 12 }, () => ask(fromNs, target, nodePort));
    const good = answers.filter((a) => a && names.has(a)).length;
    result(good === answers.length, `NodePort ${target}:${nodePort} from ${from} (${good}/${answers.length})`);
  }
  k.kubectl(['delete', 'service', 'hairpin']);

  // 5. pods -> the outside world, with the source address the layout implies
  const server = whoami(k.lab.outside, OUTSIDE[4]);
  try {
    await server.ready;
    for (const ps of perNode) {
      const p = ps[0]!;
      const want = k.masq(nodeOf(p)) ? nodeIp(nodeOf(p), 4) : p.status.podIP;
      const got = askWhoami(netns.get(p.metadata.name)!, OUTSIDE[4]);
      result(got === want, `${p.metadata.name} on node${nodeOf(p)} -> outside ${OUTSIDE[4]}: seen from ${got || 'nothing'} (${k.masq(nodeOf(p)) ? 'masqueraded to its node' : 'its own address'}: ${want})`);
    }
  } finally {
    server.stop();
  }

  if (k.o.dualStack) await dualStack(k, pods, netns);

  // 6. node0's kubelet and containerd restarted: its pods keep running, reachable, untouched
  const callsBefore = countCalls(k).total;
  const tRestart = performance.now();
  // The new kubelet has synced once it has posted the node's status (a heartbeat after its start;
  // the API's times are whole seconds).
  const restarted = Date.now() - 1000;
  await k.restartKubeletAndContainerd(0);
  const again: any[] = await waitFor('node0 Ready again, every pod Running with its address', 120_000, () => {
    const node0 = (k.getJson(['nodes']).items as any[]).find((x) => x.metadata.name === k.nodeName(0));
    const ps = k.getJson(['pods', '-l', `app=${APP}`]).items as any[];
    const readyNow = node0?.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True' && Date.parse(c.lastHeartbeatTime) >= restarted);
    return readyNow && ps.every((p) => p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready) && ps;
  }).catch((): any[] => []);
  const same = again.length === pods.length && pods.every((p) => again.some((q) => q.metadata.uid === p.metadata.uid && q.status.podIP === p.status.podIP && q.status.containerStatuses[0].containerID === p.status.containerStatuses[0].containerID));
  result(same, `node0's kubelet and containerd restarted (${((performance.now() - tRestart) / 1000).toFixed(1)}s): the same ${pods.length} pods Running, same addresses and containers`);
  netns = podNetns(k, pods);
  podToPod(k, pods, netns, ' after the restart');
  const callsAfter = countCalls(k).total;
  result(callsAfter.add === callsBefore.add && callsAfter.delNetns + callsAfter.delNoNetns === callsBefore.delNetns + callsBefore.delNoNetns, `the restart sent the plugin nothing (${callsAfter.add - callsBefore.add} ADD, ${callsAfter.delNetns + callsAfter.delNoNetns - callsBefore.delNetns - callsBefore.delNoNetns} DEL)`);

  // 7. 30 pods per node
  const many = 30 * n;
  k.kubectl(['scale', 'deployment', APP, `--replicas=${many}`]);
  const tMany = performance.now();
  let full: any[];
  try {
    full = await waitFor(`${many} pods Running`, 600_000, () => {
      k.checkAlive();
      const ps = k.getJson(['pods', '-l', `app=${APP}`]).items as any[];
      return ps.length === many && ps.every((p) => p.status.phase === 'Running' && p.status.podIP && p.status.containerStatuses?.[0]?.ready) && ps;
    });
  } catch (err) {
    result(false, `scale to ${many}: ${(err as Error).message}\n${k.kubectl(['get', 'events', '--sort-by=.lastTimestamp']).split('\n').slice(-10).join('\n')}`);
    return;
  }
  const ips = full.flatMap(podIpsOf);
  result(
    Array.from({ length: n }, (_, i) => full.filter((p) => nodeOf(p) === i).length).every((c) => c === 30) && new Set(ips).size === many * families && full.every((p) => podIpsOf(p).every(k.nodeRange(nodeOf(p)))),
    `scaled to ${many} in ${((performance.now() - tMany) / 1000).toFixed(1)}s: 30 per node, ${new Set(ips).size} distinct addresses, each in its node's range`,
  );
  for (let i = 0; i < n; i++) {
    const held = allocations(k, i);
    const want = full.filter((p) => nodeOf(p) === i).flatMap(podIpsOf).sort();
    result(held.join() === want.join(), `node${i}: the IPAM holds exactly its ${want.length} pods' addresses (${held.length} held)`);
  }

  // 8. the last node rebooted with its 30 pods: every old address reclaimed, the pods back
  const r = n - 1;
  const doomed = full.filter((p) => nodeOf(p) === r);
  const doomedSandboxes = liveSandboxes(k, r);
  const tReboot = performance.now();
  await k.reboot(r);
  let back: any[] = [];
  try {
    back = await waitFor(`node${r}'s ${doomed.length} pods Running again in new containers`, 600_000, () => {
      k.checkAlive();
      const ps = (k.getJson(['pods', '-l', `app=${APP}`]).items as any[]).filter((p) => doomed.some((d) => d.metadata.uid === p.metadata.uid));
      const fresh = ps.filter((p) => p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready && p.status.podIP && p.status.containerStatuses[0].containerID !== doomed.find((d) => d.metadata.uid === p.metadata.uid).status.containerStatuses[0].containerID);
      return fresh.length === doomed.length && fresh;
    });
  } catch (err) {
    result(false, `after node${r}'s reboot: ${(err as Error).message}\n${k.logTail(`kubelet-node${r}`, 10)}`);
    return;
  }
  const backIps = back.flatMap(podIpsOf).sort();
  const ipam = (k.lab.conflist(r).plugins.find((p) => p.type === 'vnet') as { ipam?: { type?: string } } | undefined)?.ipam?.type;
  // host-local (a seed's IPAM) frees a dead sandbox's address only at its DEL, which may come after the pod is back.
  let held = allocations(k, r);
  if (ipam !== 'vnet-ipam') await waitFor('the kubelet\'s DELs of the dead sandboxes', 60_000, () => (held = allocations(k, r)).join() === backIps.join()).catch(() => undefined);
  result(held.join() === backIps.join() && back.every((p) => podIpsOf(p).every(k.nodeRange(r))), `node${r} rebooted: its ${back.length} pods back in ${((performance.now() - tReboot) / 1000).toFixed(1)}s, ${ipam} holds exactly their ${backIps.length} new addresses (${held.length} held, none from before the boot)`);
  // Two ways back: the kubelet's StopPodSandbox for each dead sandbox (a DEL), and vnet-ipam's
  // first ADD after the boot, which sees a new boot id (src/ipam/allocator.ts) and releases what
  // is left of the previous boot. Which comes first is the kubelet's order.
  if (ipam === 'vnet-ipam') {
    const released = [...readFileSync(join(k.nodeDir(r), 'vnet.log'), 'utf8').matchAll(/released (\d+) of the previous boot/g)].map((m) => Number(m[1]));
    result(released.length === 1 && released[0]! <= doomed.length * families, `node${r}'s first ADD after the boot released the previous boot's addresses no DEL had yet (${released.join(', ') || 'none'} of its ${doomed.length} pods' ${doomed.length * families})`);
  }
  const lo = podLeftovers(k.lab, r);
  result(lo.links!.length === back.length, `node${r}: one azv veth per pod (${lo.links!.length} for ${back.length})`);
  const st = vnetState(k, r);
  result(st.ok && !st.leaks, `node${r}: vnet state finds no leak after the reboot${st.ok ? '' : `: ${st.detail}`}`);
  const others = full.filter((p) => nodeOf(p) !== r);
  if (others.length) {
    const all = [...others, ...back];
    netns = podNetns(k, all);
    const peer = others[0]!;
    let ok = 0;
    for (const p of back) if (ask(netns.get(peer.metadata.name)!, p.status.podIP, 8080) === p.metadata.name && ask(netns.get(p.metadata.name)!, peer.status.podIP, 8080) === peer.metadata.name) ok++;
    result(ok === back.length, `${peer.metadata.name} on node${nodeOf(peer)} <-> each pod of the rebooted node (${ok}/${back.length} both ways)`);
  }

  // 9. scale to 0
  k.kubectl(['scale', 'deployment', APP, '--replicas=0']);
  const tScale = performance.now();
  await waitFor('every pod gone', 300_000, () => (k.getJson(['pods', '-l', `app=${APP}`]).items as any[]).length === 0);
  const scaleSecs = ((performance.now() - tScale) / 1000).toFixed(1);
  // StopPodSandbox (DEL) precedes the pod object's removal only loosely: give the kubelets a moment.
  let left: string[] = [];
  await waitFor('no allocation left', 30_000, () => {
    left = [];
    for (let i = 0; i < n; i++) {
      const lo = podLeftovers(k.lab, i);
      // `.boot` is the store's boot-id stamp (src/ipam/store.ts), not an allocation: it stays.
      lo.allocations = lo.allocations!.filter((f) => f !== '.boot');
      for (const [kind, xs] of Object.entries(lo)) if (xs.length) left.push(`node${i} ${kind}: ${xs.join(', ')}`);
      const st = vnetState(k, i);
      if (!st.ok || st.allocations || st.leaks) left.push(`node${i} vnet state: ${st.detail}`);
    }
    return left.length === 0;
  }).catch(() => undefined);
  result(left.length === 0, `scaled ${many} to 0 in ${scaleSecs}s: no vnet allocation, azv veth, route, neighbour or masquerade entry left${left.length ? `: ${left.join('; ')}` : ''}`);

  // 10. what the runtime sent the plugin. kubelet removes a dead pod's sandbox in its GC (every
  //     minute): those are the DELs without CNI_NETNS.
  await waitFor("kubelet's sandbox GC (the DELs without netns)", 75_000, () => {
    const c = countCalls(k);
    return c.total.add > 0 && c.total.delNoNetns >= c.total.add;
  }).catch(() => undefined);
  const c = countCalls(k);
  console.log('CNI calls to vnet (from each node\'s vnet.log), per pod: ADD / DEL with CNI_NETNS / DEL without');
  const shape = new Map<string, number>();
  for (const x of Object.values(c.perPod)) {
    const key = `${x.add} / ${x.delNetns} / ${x.delNoNetns}${x.other ? `, other ${x.other}` : ''}`;
    shape.set(key, (shape.get(key) ?? 0) + 1);
  }
  for (const [key, count] of [...shape].sort((a, b) => b[1] - a[1])) console.log(`  ${count} pods: ${key}`);
  console.log(`  total: ${c.total.add} ADD, ${c.total.delNetns} DEL with netns, ${c.total.delNoNetns} DEL without, ${c.failed.length} failed`);
  const rebooted = new Set(doomed.map((p) => `node${r} ${p.metadata.name}`));
  const wrongAdds = Object.entries(c.perPod).filter(([pod, x]) => x.add !== (rebooted.has(pod) ? 2 : 1));
  result(!wrongAdds.length, `one ADD per pod, two for each pod of the rebooted node (its new sandbox)${wrongAdds.length ? `: ${wrongAdds.slice(0, 4).map(([p, x]) => `${p} ${x.add}`).join(', ')}` : ''}`);
  const twice = Object.entries(c.perSandbox).filter(([, x]) => x.add > 1);
  const undeleted = Object.entries(c.perSandbox).filter(([, x]) => x.add && !(x.delNetns + x.delNoNetns));
  result(!twice.length && !undeleted.length, `every sandbox got one ADD and at least one DEL (${Object.keys(c.perSandbox).length} sandboxes)${twice.length || undeleted.length ? `: ADD twice ${twice.map(([id]) => id.slice(0, 12)).join(' ')}, never DELed ${undeleted.map(([id]) => id.slice(0, 12)).join(' ')}` : ''}`);
  const killed = doomedSandboxes.map((id) => c.perSandbox[id]!).filter(Boolean);
  result(killed.length === doomedSandboxes.length && killed.every((x) => x.delNetns + x.delNoNetns > 0), `the ${doomedSandboxes.length} sandboxes the reboot killed were each DELed afterwards (${killed.filter((x) => x.delNetns).length} with a CNI_NETNS that no longer exists)`);
  result(!c.failed.length, `the plugin answered every call with success (${c.failed.length} errors${c.failed.length ? `: ${c.failed.slice(0, 3).join(' | ')}` : ''})`);
}

/** Dual stack: pod to pod over IPv6, a dual-stack Service's IPv6 ClusterIP, and each node's pods' IPv6 source outside. */
async function dualStack(k: K8s, pods: readonly any[], netns: Map<string, string>) {
  const v6 = (p: any) => podIpsOf(p).find((ip) => ip.includes(':'))!;
  let good = 0;
  let tries = 0;
  const bad: string[] = [];
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      tries++;
      const got = ask(netns.get(a.metadata.name)!, v6(b), 8080);
      if (got === b.metadata.name) good++;
      else bad.push(`${a.metadata.name}->${v6(b)}: ${got}`);
    }
  }
  result(good === tries, `IPv6 pod -> pod, same node and across (${good}/${tries})${bad.length ? `: ${bad.slice(0, 3).join('; ')}` : ''}`);
  k.kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-dual' },
    spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'], selector: { app: APP }, ports: [{ port: 80, targetPort: 8080 }] },
  }));
  const ips: string[] = k.getJson(['service', 'web-dual']).spec.clusterIPs ?? [];
  const ip6 = ips.find((x) => x.includes(':'));
  const client = pods[0]!;
  let answered = 0;
  const seen = new Set<string>();
  const misses: string[] = [];
  if (ip6) {
    // As for IPv4: the endpoints exist before kube-proxy has programmed every one of them.
    await waitFor('kube-proxy to program every endpoint of the IPv6 ClusterIP', 30_000, () => {
      const got = ask(netns.get(client.metadata.name)!, ip6, 80);
      if (got) seen.add(got);
      return seen.size === pods.length;
    }).catch(() => undefined);
    for (let j = 0; j < 12; j++) {
      const got = ask(netns.get(client.metadata.name)!, ip6, 80);
      if (pods.some((p) => p.metadata.name === got)) answered++;
      else misses.push(String(got));
    }
  }
  result(!!ip6 && answered === 12, `dual-stack Service: ClusterIPs ${ips.join(', ') || 'none'}; the IPv6 one answered a pod on node${nodeOf(client)} ${answered}/12, by ${seen.size} of ${pods.length} backends while waiting${misses.length ? ` (misses: ${misses.join(', ')})` : ''}`);
  k.kubectl(['delete', 'service', 'web-dual']);
  const server = whoami(k.lab.outside, OUTSIDE[6]);
  try {
    await server.ready;
    for (let i = 0; i < k.o.nodes; i++) {
      const p = pods.find((x) => nodeOf(x) === i)!;
      const want = k.masq(i) ? nodeIp(i, 6) : v6(p);
      const got = askWhoami(netns.get(p.metadata.name)!, OUTSIDE[6]);
      result(got === want, `${p.metadata.name} on node${i} -> outside ${OUTSIDE[6]}: seen from ${got || 'nothing'} (${k.masq(i) ? 'masqueraded to its node' : 'its own address'}: ${want})`);
    }
  } finally {
    server.stop();
  }
}

/** Each pod's network namespace, by name: /proc/<its container's pid>/ns/net. */
function podNetns(k: K8s, pods: readonly any[]) {
  return new Map<string, string>(pods.map((p) => [p.metadata.name, `/proc/${k.containerPid(p)}/ns/net`]));
}

/** Every pod asks every other pod for its name on 8080: same node and across nodes, counted apart. */
function podToPod(k: K8s, pods: readonly any[], netns: Map<string, string>, when: string) {
  const pairs: Record<'same' | 'across', [number, number]> = { same: [0, 0], across: [0, 0] };
  const bad: string[] = [];
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      const kind = nodeOf(a) === nodeOf(b) ? 'same' : 'across';
      const got = ask(netns.get(a.metadata.name)!, b.status.podIP, 8080);
      pairs[kind][1]++;
      if (got === b.metadata.name) pairs[kind][0]++;
      else bad.push(`${a.metadata.name}->${b.status.podIP}: ${got}`);
    }
  }
  result(pairs.same[1] > 0 && pairs.same[0] === pairs.same[1], `pod -> pod on the same node${when} (${pairs.same[0]}/${pairs.same[1]})`);
  if (k.o.nodes > 1) result(pairs.across[0] === pairs.across[1], `pod -> pod across nodes${when} (${pairs.across[0]}/${pairs.across[1]})${bad.length ? `: ${bad.slice(0, 4).join('; ')}` : ''}`);
}

/** The addresses vnet-ipam holds on node i (its address files), sorted. */
function allocations(k: K8s, i: number): string[] {
  return podLeftovers(k.lab, i).allocations!.filter((f) => f !== '.boot').sort();
}

/** `vnet state --json` on node i: how many allocations it sees and how many leaks it finds. */
function vnetState(k: K8s, i: number): { ok: boolean; allocations: number; leaks: number; detail: string } {
  const st = attempt(['nsenter', `--net=${nsPath(k.lab.node(i))}`, join(k.nodeDir(i), 'bin', 'vnet'), 'state', '--conf', k.lab.conflistFile(i), '--json'], 10_000);
  let rep: any = {};
  try {
    rep = JSON.parse(st.out);
  } catch {
    return { ok: false, allocations: -1, leaks: -1, detail: st.out.trim().slice(0, 300) };
  }
  const allocs = rep.allocations?.length ?? -1;
  const leaks = rep.leaks?.length ?? -1;
  return { ok: st.ok && allocs >= 0 && leaks >= 0, allocations: allocs, leaks, detail: `${allocs} allocations, ${leaks} leaks${leaks > 0 ? `: ${JSON.stringify(rep.leaks).slice(0, 300)}` : ''}` };
}

/** Node i's sandboxes that got an ADD and no DEL so far (from its vnet.log). */
function liveSandboxes(k: K8s, i: number): string[] {
  return Object.entries(countCalls(k, [i]).perSandbox).filter(([, x]) => x.add && !(x.delNetns + x.delNoNetns)).map(([id]) => id);
}

interface Calls {
  add: number;
  delNetns: number;
  delNoNetns: number;
  other: number;
}
/** The CNI calls each node's vnet.log shows, per pod, per sandbox and in all, and every failed one. */
function countCalls(k: K8s, nodes = Array.from({ length: k.o.nodes }, (_, i) => i)) {
  const perPod: Record<string, Calls> = {};
  const perSandbox: Record<string, Calls> = {};
  const total: Calls = { add: 0, delNetns: 0, delNoNetns: 0, other: 0 };
  const failed: string[] = [];
  const zero = () => ({ add: 0, delNetns: 0, delNoNetns: 0, other: 0 });
  for (const i of nodes) {
    const f = join(k.nodeDir(i), 'vnet.log');
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/Processing (\w+) command with args \{ContainerID:(\S+) Netns:(\S*) IfName:\S+ Args:(\S*) Path:/g)) {
      const pod = /K8S_POD_NAME=([^;]+)/.exec(m[4]!)?.[1] ?? `container ${m[2]!.slice(0, 12)}`;
      const kind: keyof Calls = m[1] === 'ADD' ? 'add' : m[1] === 'DEL' ? (m[3] ? 'delNetns' : 'delNoNetns') : 'other';
      (perPod[`node${i} ${pod}`] ??= zero())[kind]++;
      (perSandbox[m[2]!] ??= zero())[kind]++;
      total[kind]++;
    }
    for (const m of text.matchAll(/^.*\b(ADD|DEL|CHECK) failed: code .*$/gm)) failed.push(`node${i}: ${m[0].slice(0, 200)}`);
  }
  return { perPod, perSandbox, total, failed };
}

// ---------------------------------------------------------------------------------------------

const BEFORE = machineSysctls();
/** The cluster `scripts/lab.sh up --k8s` keeps: its prefix, the Kubernetes binaries, the kubeconfig (for lab.sh kubectl and down). */
const LAB_K8S = '/run/vnet-lab-k8s';

async function main() {
  const { values, positionals } = parseArgs({
    options: { layout: { type: 'string', default: 'kubenet' }, nodes: { type: 'string', default: '2' }, keep: { type: 'boolean', default: false }, 'cluster-only': { type: 'boolean', default: false }, 'dual-stack': { type: 'boolean', default: false }, seed: { type: 'string' }, prefix: { type: 'string' }, bin: { type: 'string' } },
    allowPositionals: true,
  });
  const prefix = values.prefix ?? `vk${randomBytes(3).toString('hex')}`;
  if (!/^vk[0-9a-f]{6}$/.test(prefix)) throw new Error(`bad prefix ${prefix}`);
  if (positionals[0] === 'down') {
    process.exitCode = (await sweep(prefix)) ? 0 : 1;
    if (existsSync(LAB_K8S) && readFileSync(LAB_K8S, 'utf8').startsWith(`${prefix} `)) rmSync(LAB_K8S);
    return;
  }
  const layout = values.layout as Layout;
  if (!(LAYOUTS as readonly string[]).includes(layout)) throw new Error(`--layout: one of ${LAYOUTS.join(', ')}`);
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new Error(`--nodes: 1 to ${MAX_NODES}`);
  if (!values.bin) throw new Error('--bin DIR (the k8s binaries) is required');
  // The lab's VNet answers IPv6 neighbour solicitations for the addresses the lab tells it of
  // (scripts/lab/cluster.ts fabricKnows); the kubelet's pods are not told.
  if (layout === 'bridge' && values['dual-stack']) throw new Error('--dual-stack takes transparent, kubenet or overlay: in the bridge layout the VNet would not know the pods\' IPv6 addresses');
  // --cluster-only (scripts/lab.sh up --k8s): the cluster up and Ready, no checks, kept.
  const only = values['cluster-only']!;
  const keep = values.keep! || only;
  const seed = values.seed ? (JSON.parse(readFileSync(resolve(ROOT, values.seed), 'utf8')) as Conflist) : undefined;
  const k = new K8s({ layout, nodes, keep, prefix, dualStack: values['dual-stack']!, seed }, values.bin);
  say(`k8s e2e: layout ${layout}${values['dual-stack'] ? ', dual stack' : ''}${values.seed ? `, conflist ${values.seed}` : ''}, ${nodes} nodes, prefix ${prefix}`);
  try {
    await k.up();
    if (only) {
      if (await ready(k)) writeFileSync(LAB_K8S, `${prefix} ${k.bin} ${k.kubeconfig}\n`);
    } else {
      await checks(k);
    }
  } catch (err) {
    result(false, `run: ${(err as Error).stack ?? err}`);
    for (const p of ['kube-apiserver', 'kubelet-node0']) console.log(`--- ${p} log tail:\n${k.logTail(p, 10)}`);
  } finally {
    if (only) {
      say(`the cluster is up: scripts/lab.sh kubectl get nodes -o wide (or any kubectl command); scripts/lab.sh down removes it`);
    } else if (keep) {
      say(`--keep: the cluster stays; kubectl: nsenter --net=${nsPath(k.cp)} ${join(k.bin, 'kubectl')} --kubeconfig ${k.kubeconfig} …; remove it with scripts/k8s-e2e.sh --down ${prefix}`);
    } else {
      const td = performance.now();
      await k.down().catch((err) => console.log(`teardown: ${(err as Error).message}`));
      await sweep(prefix);
      say(`torn down in ${((performance.now() - td) / 1000).toFixed(1)}s`);
    }
  }
  console.log(failures ? `FAILED (${failures} failed)` : 'PASSED');
  process.exitCode = failures ? 1 : 0;
  // With --keep the daemons are still this process's children (and CRI clients are open): do not wait for them.
  if (keep) process.exit();
}

main().catch((err) => {
  console.error(`k8s: ${(err as Error).stack ?? err}`);
  process.exitCode = 2;
});

