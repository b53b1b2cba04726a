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
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, LAYOUTS, MAX_NODES, installArgs, nodeAddressing, nodeIp, podLeftovers, SDN_MAC, VNET_GW, type Layout } from './cluster.js';
import { inNs, nsPath, sh, trySh } from './sys.js';
import { Containerd, PAUSE_IMAGE, buildPauseImage, criSetup } from '../test/helpers/containerd.js';
import { pidsInCgroups } from '../test/helpers/lab.js';

// Bundled to dist/k8s.cjs by scripts/k8s-e2e.sh: the repository is the bundle's parent's parent.
const ROOT = resolve(dirname(process.argv[1] ?? '.'), '..');
/** The control plane's address on the VNet: beyond every node's slice (.32 to .223 for 6 nodes). */
const CP_IP = '10.220.2.250';
const CLUSTER_CIDR = '10.244.0.0/16';
const SERVICE_CIDR = '10.96.0.0/16';
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

const ipInt = (ip: string) => ip.split('.').reduce((a, x) => a * 256 + Number(x), 0);
function inCidr(ip: string, cidr: string) {
  const [net, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return Math.floor(ipInt(ip) / size) === Math.floor(ipInt(net!) / size);
}

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
  /** Node i's spec.podCIDR (kubenet, overlay). */
  podCidrs: string[] = [];

  constructor(readonly o: Opts, bin: string) {
    this.dir = dirOf(o.prefix);
    this.bin = bin;
    this.cp = `${o.prefix}-cp`;
    this.kubeconfig = join(this.dir, 'pki', 'admin.kubeconfig');
  }

  nodeName = (i: number) => `${this.o.prefix}-node${i}`;
  nodeDir = (i: number) => join(this.dir, `node${i}`);
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
  private checkAlive() {
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
      layout: this.o.layout, nodes: this.o.nodes, pods: 0, dualStack: false, prefix: this.o.prefix,
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
    const l2 = this.o.layout === 'bridge';
    inNs(v, ['ip', 'link', 'add', 'cp0', ...(l2 ? [] : ['address', SDN_MAC]), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsPath(this.cp)]);
    inNs(this.cp, ['ip', 'addr', 'add', `${CP_IP}/24`, 'dev', 'eth0']);
    inNs(this.cp, ['ip', 'link', 'set', 'eth0', 'up']);
    if (l2) {
      inNs(v, ['ip', 'link', 'set', 'cp0', 'master', 'vnetbr', 'up']);
    } else {
      inNs(v, ['ip', 'addr', 'add', `${VNET_GW[4]}/24`, 'dev', 'cp0', 'noprefixroute']);
      inNs(v, ['sysctl', '-qw', 'net.ipv4.conf.cp0.proxy_arp=1']);
      inNs(v, ['ip', 'link', 'set', 'cp0', 'up']);
      inNs(v, ['ip', 'route', 'add', `${CP_IP}/32`, 'dev', 'cp0']);
    }
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
      `--service-cluster-ip-range=${SERVICE_CIDR}`, '--authorization-mode=Node,RBAC', '--allow-privileged=true',
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
      '--allocate-node-cidrs=true', `--cluster-cidr=${CLUSTER_CIDR}`, '--node-cidr-mask-size=24', `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--service-account-private-key-file=${pki('sa.key')}`, `--root-ca-file=${pki('ca.crt')}`,
      `--cluster-signing-cert-file=${pki('ca.crt')}`, `--cluster-signing-key-file=${pki('ca.key')}`, '--use-service-account-credentials=false']);
    this.start('kube-scheduler', [...inCp, b('kube-scheduler'), `--kubeconfig=${this.kubeconfig}`,
      `--authentication-kubeconfig=${this.kubeconfig}`, `--authorization-kubeconfig=${this.kubeconfig}`,
      '--leader-elect=false', '--bind-address=127.0.0.1', `--cert-dir=${join(this.dir, 'scheduler')}`]);
  }

  /** Node i: containerd, then in its mount namespace the bind mounts, the kubelet and kube-proxy. */
  private async node(i: number, proto: string, image: string) {
    const name = this.nodeName(i);
    const nd = this.nodeDir(i);
    const d = new Containerd({
      name, dir: join(nd, 'cri'), netns: this.lab.node(i), cniConfDir: dirname(this.lab.conflistFile(i)),
      cniBinDirs: [join(nd, 'bin'), '/usr/lib/cni'], protoFile: proto,
    });
    this.nodesCri[i] = d;
    await d.start();
    this.record(d.holderPid);
    this.record(d.pid);
    await d.importImage(image);
    const holder = d.holderPid!;
    const inMnt = (argv: string[]) => sh(['nsenter', `--mount=/proc/${holder}/ns/mnt`, '--', ...argv]);
    const varLog = join(nd, 'var-log');
    mkdirSync(varLog, { recursive: true });
    inMnt(['mount', '--bind', varLog, '/var/log']);
    const sysctls = join(nd, 'sysctl');
    for (const [k, v] of Object.entries(KUBELET_SYSCTLS)) {
      const f = join(sysctls, k);
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, `${v}\n`);
      inMnt(['mount', '--bind', f, `/proc/sys/${k}`]);
    }
    // kubelet's --cgroup-root must exist, in every hierarchy; cpuset's needs its cpus and mems.
    for (const h of readdirSync(CGROUP_ROOT)) {
      const root = join(CGROUP_ROOT, h);
      if (!statSync(root).isDirectory() || readlinkSafe(root)) continue;
      const c = join(root, name);
      if (!existsSync(c)) mkdirSync(c);
      if (existsSync(join(c, 'cpuset.cpus')) && !readFileSync(join(c, 'cpuset.cpus'), 'utf8').trim()) {
        for (const k of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(c, k), readFileSync(join(root, k), 'utf8'));
      }
    }
    const enter = ['nsenter', `--mount=/proc/${holder}/ns/mnt`, `--net=${nsPath(this.lab.node(i))}`, '--'];
    const kd = join(nd, 'kubelet');
    this.start(`kubelet-node${i}`, [...enter, join(this.bin, 'kubelet'), `--kubeconfig=${this.kubeconfig}`, '--register-node=true',
      '--container-runtime=remote', `--container-runtime-endpoint=unix://${d.socket}`, `--containerd=${d.socket}`,
      '--cgroup-driver=cgroupfs', `--cgroup-root=/${name}`, '--cgroups-per-qos=true', '--enforce-node-allocatable=',
      '--oom-score-adj=0', `--root-dir=${kd}`, `--cert-dir=${join(kd, 'pki')}`, `--volume-plugin-dir=${join(kd, 'volume-plugins')}`,
      `--pod-infra-container-image=${PAUSE_IMAGE}`, '--fail-swap-on=false', `--hostname-override=${name}`, `--node-ip=${nodeIp(i, 4)}`,
      '--read-only-port=0', '--anonymous-auth=true', '--authorization-mode=AlwaysAllow',
      // This machine's disk is shared and may be fuller than the defaults allow: no evictions, no image GC.
      '--eviction-hard=memory.available<1Mi,nodefs.available<1%,imagefs.available<1%', '--image-gc-high-threshold=100', '--image-gc-low-threshold=99',
      '--v=2']);
    this.start(`kube-proxy-node${i}`, [...enter, join(this.bin, 'kube-proxy'), `--kubeconfig=${this.kubeconfig}`, `--hostname-override=${name}`,
      '--proxy-mode=iptables', '--oom-score-adj=0', ...(this.perNodeCidr ? [`--cluster-cidr=${CLUSTER_CIDR}`] : []),
      // conntrack's sysctls are the machine's: kube-proxy leaves them alone with these.
      '--conntrack-max-per-core=0', '--conntrack-min=0', '--conntrack-tcp-timeout-established=0', '--conntrack-tcp-timeout-close-wait=0',
      '--metrics-bind-address=127.0.0.1:10249']);
  }

  /** kubenet/overlay: each node's spec.podCIDR into its conflist (`vnet install`) and the VNet's routes. */
  async wirePodCidrs() {
    if (!this.perNodeCidr) return;
    this.podCidrs = await waitFor('every node registered with a spec.podCIDR', 120_000, () => {
      this.checkAlive();
      const r = attempt(['nsenter', `--net=${nsPath(this.cp)}`, join(this.bin, 'kubectl'), '--kubeconfig', this.kubeconfig, 'get', 'nodes', '-o', 'json'], 10_000);
      if (!r.ok) return false;
      const byName = new Map<string, string>((JSON.parse(r.out).items as any[]).map((n) => [n.metadata.name, n.spec.podCIDR]));
      const cidrs = Array.from({ length: this.o.nodes }, (_, i) => byName.get(this.nodeName(i)));
      return cidrs.every(Boolean) && (cidrs as string[]);
    });
    const assigned = new Set(this.podCidrs);
    for (let i = 0; i < this.o.nodes; i++) {
      const args = installArgs(this.lab.spec, i);
      args[args.indexOf('--pod-cidr') + 1] = this.podCidrs[i]!;
      inNs(this.lab.node(i), [join(this.lab.spec.binDir, 'vnet'), ...args]);
      // The lab routed its own guess (10.244.i.0/24) to node i: the controller-manager's choice wins.
      for (const dst of nodeAddressing(this.o.layout, i, false).vnetRoutes) if (!assigned.has(dst)) trySh(['nsenter', `--net=${nsPath(this.lab.vnet)}`, 'ip', 'route', 'del', dst]);
      inNs(this.lab.vnet, ['ip', 'route', 'replace', this.podCidrs[i]!, 'via', nodeIp(i, 4), 'dev', `n${i}`]);
    }
    say(`pod CIDRs from the controller-manager: ${this.podCidrs.map((c, i) => `node${i} ${c}`).join(', ')}`);
  }

  /** The range node i's pods must be in. */
  nodeRange(i: number): (ip: string) => boolean {
    if (this.perNodeCidr) return (ip) => inCidr(ip, this.podCidrs[i]!);
    const r = nodeAddressing(this.o.layout, i, false).ranges[0]![0] as { rangeStart: string; rangeEnd: string };
    return (ip) => ipInt(ip) >= ipInt(r.rangeStart) && ipInt(ip) <= ipInt(r.rangeEnd);
  }

  /** The pid of a pod's (first) container, from its node's containerd: the pod's netns is /proc/<pid>/ns/net. */
  containerPid(pod: any): number {
    const id = String(pod.status.containerStatuses?.[0]?.containerID ?? '').replace(/^containerd:\/\//, '');
    const node = Number(/node(\d+)$/.exec(pod.spec.nodeName)![1]);
    const row = this.nodesCri[node]!.ctr(['task', 'ls']).split('\n').find((l) => l.startsWith(`${id} `));
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

async function checks(k: K8s) {
  const n = k.o.nodes;
  // 1. nodes Ready, pod CIDRs
  await k.wirePodCidrs();
  if (k.perNodeCidr) result(k.podCidrs.length === n && new Set(k.podCidrs).size === n, `every node got a spec.podCIDR (${k.podCidrs.join(', ')})`);
  const tReady = performance.now();
  try {
    await waitFor('every node Ready', 180_000, () => {
      const nodes = k.getJson(['nodes']).items as any[];
      return nodes.length === n && nodes.every((x) => x.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True'));
    });
    result(true, `${n} nodes Ready (${secs()}s since start${k.perNodeCidr ? `, ${((performance.now() - tReady) / 1000).toFixed(1)}s after the pod CIDRs` : ''})`);
  } catch (err) {
    result(false, `nodes Ready: ${(err as Error).message}\n${k.kubectl(['get', 'nodes', '-o', 'wide'])}`);
    return;
  }
  const sysNow = machineSysctls();
  result(Object.entries(sysNow).every(([key]) => sysNow[key] === BEFORE[key]), `the machine's sysctls unchanged while kubelets run (${Object.entries(sysNow).map(([a, b]) => `${a}=${b}`).join(' ')})`);

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
  const nodeOf = (p: any) => Number(/node(\d+)$/.exec(p.spec.nodeName)![1]);
  const perNode = Array.from({ length: n }, (_, i) => pods.filter((p) => nodeOf(p) === i));
  result(perNode.every((ps) => ps.length === 2), `Deployment of ${2 * n} Running in ${((performance.now() - tDeploy) / 1000).toFixed(1)}s, 2 per node`);
  const outOfRange = pods.filter((p) => !k.nodeRange(nodeOf(p))(p.status.podIP));
  result(!outOfRange.length, `every pod IP inside its node's range (${pods.map((p) => `${p.metadata.name.slice(-5)}@node${nodeOf(p)}=${p.status.podIP}`).join(' ')})`);

  // 3. pod -> pod
  const netns = new Map<string, string>(pods.map((p) => [p.metadata.name, `/proc/${k.containerPid(p)}/ns/net`]));
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
  result(pairs.same[1] > 0 && pairs.same[0] === pairs.same[1], `pod -> pod on the same node (${pairs.same[0]}/${pairs.same[1]})`);
  if (n > 1) result(pairs.across[0] === pairs.across[1], `pod -> pod across nodes (${pairs.across[0]}/${pairs.across[1]})${bad.length ? `: ${bad.slice(0, 4).join('; ')}` : ''}`);

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
    const answers = Array.from({ length: 4 }, () => ask(fromNs, target, nodePort));
    const good = answers.filter((a) => a && names.has(a)).length;
    result(good === answers.length, `NodePort ${target}:${nodePort} from ${from} (${good}/${answers.length})`);
  }

  // 5. scale to 0
  k.kubectl(['delete', 'service', 'hairpin']);
  k.kubectl(['scale', 'deployment', APP, '--replicas=0']);
  const tScale = performance.now();
  await waitFor('every pod gone', 120_000, () => (k.getJson(['pods', '-l', `app=${APP}`]).items as any[]).length === 0);
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
      const st = attempt(['nsenter', `--net=${nsPath(k.lab.node(i))}`, join(k.nodeDir(i), 'bin', 'vnet'), 'state', '--conf', k.lab.conflistFile(i), '--json'], 10_000);
      const rep = JSON.parse(st.out || '{}');
      if (!st.ok || rep.allocations?.length || rep.leaks?.length) left.push(`node${i} vnet state: ${rep.allocations?.length ?? '?'} allocations, ${rep.leaks?.length ?? '?'} leaks`);
    }
    return left.length === 0;
  }).catch(() => undefined);
  result(left.length === 0, `scaled to 0 in ${scaleSecs}s: no vnet allocation, azv veth, route, neighbour or masquerade entry left${left.length ? `: ${left.join('; ')}` : ''}`);

  // 6. what the runtime sent the plugin. kubelet removes a dead pod's sandbox in its GC (every minute):
  //    that is the second DEL, without CNI_NETNS.
  await waitFor("kubelet's sandbox GC (the DELs without netns)", 90_000, () => {
    const c = countCalls(k);
    return c.total.add > 0 && c.total.delNoNetns >= c.total.add;
  }).catch(() => undefined);
  const c = countCalls(k);
  console.log(`CNI calls to vnet (from each node's vnet.log), per pod: ADD / DEL with CNI_NETNS / DEL without`);
  for (const [pod, x] of Object.entries(c.perPod)) console.log(`  ${pod}: ${x.add} / ${x.delNetns} / ${x.delNoNetns}${x.other ? `, other ${x.other}` : ''}`);
  console.log(`  total: ${c.total.add} ADD, ${c.total.delNetns} DEL with netns, ${c.total.delNoNetns} DEL without`);
  result(c.total.add === 2 * n && c.total.delNetns >= c.total.add, `every pod got one ADD and at least one DEL with its netns (${c.total.add} ADD, ${c.total.delNetns}+${c.total.delNoNetns} DEL)`);
}

interface Calls {
  add: number;
  delNetns: number;
  delNoNetns: number;
  other: number;
}
function countCalls(k: K8s): { perPod: Record<string, Calls>; total: Calls } {
  const perPod: Record<string, Calls> = {};
  const total: Calls = { add: 0, delNetns: 0, delNoNetns: 0, other: 0 };
  for (let i = 0; i < k.o.nodes; i++) {
    const f = join(k.nodeDir(i), 'vnet.log');
    if (!existsSync(f)) continue;
    for (const m of readFileSync(f, 'utf8').matchAll(/Processing (\w+) command with args \{ContainerID:(\S+) Netns:(\S*) IfName:\S+ Args:(\S*) Path:/g)) {
      const pod = /K8S_POD_NAME=([^;]+)/.exec(m[4]!)?.[1] ?? `container ${m[2]!.slice(0, 12)}`;
      const x = (perPod[`node${i} ${pod}`] ??= { add: 0, delNetns: 0, delNoNetns: 0, other: 0 });
      const kind: keyof Calls = m[1] === 'ADD' ? 'add' : m[1] === 'DEL' ? (m[3] ? 'delNetns' : 'delNoNetns') : 'other';
      x[kind]++;
      total[kind]++;
    }
  }
  return { perPod, total };
}

// ---------------------------------------------------------------------------------------------

const BEFORE = machineSysctls();

async function main() {
  const { values, positionals } = parseArgs({
    options: { layout: { type: 'string', default: 'kubenet' }, nodes: { type: 'string', default: '2' }, keep: { type: 'boolean', default: false }, prefix: { type: 'string' }, bin: { type: 'string' } },
    allowPositionals: true,
  });
  const prefix = values.prefix ?? `vk${randomBytes(3).toString('hex')}`;
  if (!/^vk[0-9a-f]{6}$/.test(prefix)) throw new Error(`bad prefix ${prefix}`);
  if (positionals[0] === 'down') {
    process.exitCode = (await sweep(prefix)) ? 0 : 1;
    return;
  }
  const layout = values.layout as Layout;
  if (!(LAYOUTS as readonly string[]).includes(layout)) throw new Error(`--layout: one of ${LAYOUTS.join(', ')}`);
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new Error(`--nodes: 1 to ${MAX_NODES}`);
  if (!values.bin) throw new Error('--bin DIR (the k8s binaries) is required');
  const k = new K8s({ layout, nodes, keep: values.keep!, prefix }, values.bin);
  say(`k8s e2e: layout ${layout}, ${nodes} nodes, prefix ${prefix}`);
  try {
    await k.up();
    await checks(k);
  } catch (err) {
    result(false, `run: ${(err as Error).stack ?? err}`);
    for (const p of ['kube-apiserver', 'kubelet-node0']) console.log(`--- ${p} log tail:\n${k.logTail(p, 10)}`);
  } finally {
    if (values.keep) {
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
  if (values.keep) process.exit();
}

main().catch((err) => {
  console.error(`k8s: ${(err as Error).stack ?? err}`);
  process.exitCode = 2;
});

