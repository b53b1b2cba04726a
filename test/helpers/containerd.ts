// containerd's CRI, run the way a kind node runs it, one containerd per lab node: inside the node's
// network namespace (so the CNI plugins it executes wire pods into that node), with every piece of
// its state in <node dir>/cri/ (the node dir is the lab's, named by the lab's prefix):
//
//   root/     containerd's root (content, metadata, snapshots)       [config: root]
//   state/    containerd's state (task bundles, CRI's sandbox dirs,  [config: state]
//             the sandbox netns mounts under state/io.containerd.grpc.v1.cri/netns)
//   run/      bind-mounted over /run inside containerd's mount namespace: the shims' sockets
//             (/run/containerd/s/…), runc's state (/run/containerd/runc), iptables' lock
//   var-lib/  bind-mounted over /var/lib there: libcni's result cache (/var/lib/cni/results)
//   cni-bin/  the one CNI bin dir containerd 1.6 takes: symlinks to the node's vnet and vnet-ipam
//             (as `vnet install` put them) and to the reference plugins (loopback, portmap)
//   containerd.sock, config.toml, containerd.log, tmp/
//
// and cgroups (cgroupfs) under /<name> in every hierarchy, <name> being the lab prefix and the node.
//
// Machine facts this rests on (Debian 12: containerd 1.6.20~ds1-1+deb12u3, runc 1.1.5, kernel
// 6.18, cgroup v1 controllers plus the unified hierarchy, no systemd as PID 1, root without
// CAP_SYS_RESOURCE):
// - Debian's containerd 1.6 includes the CRI plugin, and drives CNI through go-cni/libcni 1.1.1
//   exactly as on a kind node: RunPodSandbox = CNI ADD of the loopback network, then of the first
//   conflist in conf_dir (max_conf_num 1); StopPodSandbox = DEL of both; nothing on a restart.
//   RemovePodSandbox stops the sandbox again (sandbox_remove.go), so every pod gets a second DEL,
//   with CNI_NETNS empty (the netns is gone): kubelet's Stop then Remove does this on every node.
// - Its CNI bin_dir is ONE directory (go-cni WithPluginDir([]string{bin_dir})), the CNI_PATH the
//   plugins get; it needs `loopback` besides the conflist's plugins. Hence cni-bin/ of symlinks.
//   vnet still runs vnet-ipam in-process through a symlink (it compares inodes, stat follows links).
// - containerd 1.6 hard-codes /run/containerd/s for the shims' sockets and libcni's cache is
//   /var/lib/cni/results, whatever the config says. So containerd runs in a mount namespace of its
//   own, made by a holder process (`unshare --mount --propagation private sleep infinity`) in which
//   this dir's run/ and var-lib/ are bind-mounted over /run and /var/lib. Nothing of that is visible
//   in the machine's mount namespace, and it all goes when its last process (holder, containerd,
//   shims, sandboxes) is gone. Mount points cannot be created on the machine (no /run/containerd
//   there), hence the whole of /run and /var/lib; nothing containerd, runc or the plugins run needs
//   from either.
// - The holder outlives containerd: a restarted containerd joins the SAME mount namespace
//   (nsenter --mount=/proc/<holder>/ns/mnt), where the sandboxes' netns mounts
//   (netns_mounts_under_state_dir = true) still are. A new mount namespace would not hold them, and
//   CRI would take a restored sandbox's netns as closed (NetNS.Closed() in sandbox_status.go: no IP,
//   and a DEL without netns on Stop).
// - From outside, a sandbox's netns path (in the verbose status's runtimeSpec) cannot be opened:
//   it is a mount in that namespace only. Its netns is reached as /proc/<sandbox pid>/ns/net, or by
//   path through `nsenter --mount=/proc/<holder>/ns/mnt nsenter --net=<path>` (nsenter opens every
//   namespace file before entering any, so the path must be opened by a second nsenter).
// - cgroup v1, no systemd: runtime option SystemdCgroup = false, and the pod's cgroup_parent is
//   ours (the RunPodSandbox request carries it, as kubelet's does); runc makes <parent>/<sandbox
//   id> in every hierarchy. A SIGKILLed sandbox leaves those directories; cleanup removes them.
// - restrict_oom_score_adj = true: the sandbox's oom_score_adj -998 needs CAP_SYS_RESOURCE, which
//   root lacks here (as in a container or some VM sandboxes); without it every RunPodSandbox fails
//   in runc create ("can't get final child's PID from pipe: EOF").
// - containerd 1.6 writes no shim.pid: the shims are found as the parents of the sandbox
//   processes, checked by their command line's `-address <our socket>`, and by that socket path in
//   any command line (a shim whose sandbox already exited).
// - No registry is reachable: the sandbox ("pause") image is built here as an OCI image layout
//   (one uncompressed layer holding Debian's static busybox, a config, a manifest, index.json,
//   every blob named by its sha256) and imported with `ctr -n k8s.io images import`; the
//   `io.containerd.image.name` annotation in index.json names it, as sandbox_image does. Its
//   process is busybox's sh as PID 1: `trap 'exit 0' TERM INT` (PID 1 ignores a signal it has no
//   handler for) and a `sleep & wait` loop; ash reaps adopted orphans on each SIGCHLD.
// - CRI's image store learns of an imported image from containerd's events, a moment later;
//   ImageStatus says when RunPodSandbox can resolve it (else it would try to pull it).
import { pidsInCgroups } from './lab.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriClient } from './cri.js';

const BUSYBOX = '/bin/busybox';
const CGROUP_ROOT = '/sys/fs/cgroup';
const SETUP_SCRIPT = 'scripts/cri-setup.sh';
/** The sandbox image's name, as sandbox_image gives it (a domain, so CRI leaves it as it is). */
export const PAUSE_IMAGE = 'localhost/vnet-cni/pause:busybox';
const PAUSE_SCRIPT = "trap 'exit 0' TERM INT; trap : CHLD; while :; do sleep 2147483647 & wait $!; done";

/** scripts/cri-setup.sh: containerd installed (if it was not), the CRI proto cached; the proto's path. */
export function criSetup(cacheDir: string): string {
  try {
    const out = execFileSync(SETUP_SCRIPT, [cacheDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
    return out.trim().split('\n').pop()!;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${SETUP_SCRIPT} failed: ${String(e.stderr ?? e.message).trim()}`);
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const goArch = () => ({ x64: 'amd64', arm64: 'arm64' })[process.arch as 'x64' | 'arm64'] ?? process.arch;

/**
 * The sandbox image as an OCI image layout in a tar (what `ctr images import` reads), built in
 * `dir`: busybox-static as /bin/busybox, /bin/sh and /bin/sleep; the pause loop as entrypoint.
 */
export function buildPauseImage(dir: string): string {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install busybox-static (scripts/deps.sh does)`);
  const rootfs = join(dir, 'rootfs');
  const layout = join(dir, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(blobs, { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  for (const a of ['sh', 'sleep']) symlinkSync('busybox', join(rootfs, 'bin', a));
  const layerTar = join(dir, 'layer.tar');
  execFileSync('tar', ['--create', '--file', layerTar, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', rootfs, 'bin']);
  const blob = (b: Buffer, mediaType: string) => {
    const digest = `sha256:${sha256(b)}`;
    writeFileSync(join(blobs, digest.slice(7)), b);
    return { mediaType, digest, size: b.length };
  };
  const layerBytes = readFileSync(layerTar);
  const layer = blob(layerBytes, 'application/vnd.oci.image.layer.v1.tar');
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: goArch(),
        os: 'linux',
        config: { Entrypoint: ['/bin/sh', '-c', PAUSE_SCRIPT], WorkingDir: '/', Env: ['PATH=/bin'] },
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = blob(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] })),
    'application/vnd.oci.image.manifest.v1+json',
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          ...manifest,
          platform: { architecture: goArch(), os: 'linux' },
          annotations: { 'io.containerd.image.name': PAUSE_IMAGE, 'org.opencontainers.image.ref.name': PAUSE_IMAGE.split(':').pop() },
        },
      ],
    }),
  );
  const image = join(dir, 'pause.oci.tar');
  execFileSync('tar', ['--create', '--file', image, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', layout, 'oci-layout', 'index.json', 'blobs']);
  return image;
}

export interface ContainerdOptions {
  /** Unique and prefixed (the lab's prefix and the node): names the cgroup parent. */
  name: string;
  /** Where all of this containerd's files go (removed by the caller, with the lab). */
  dir: string;
  /** The node's network namespace (a name under /var/run/netns). */
  netns: string;
  /** The node's /etc/cni/net.d, holding its conflist. */
  cniConfDir: string;
  /** Directories whose plugins go into the one CNI bin dir, first one wins. */
  cniBinDirs: string[];
  protoFile: string;
}

/** One containerd with CRI, in a node namespace and a mount namespace of its own (see the header). */
export class Containerd {
  readonly dir: string;
  readonly socket: string;
  readonly root: string;
  readonly state: string;
  readonly runDir: string;
  readonly varLib: string;
  readonly binDir: string;
  readonly logFile: string;
  readonly configFile: string;
  /** The cgroup parent of every sandbox, `/<name>`. */
  readonly cgroupParent: string;
  readonly cri: CriClient;
  private holder?: ChildProcess;
  private daemon?: ChildProcess;
  /** Every pid this containerd's world had: shims and sandboxes seen, for cleanup. */
  private readonly seen = new Set<number>();

  constructor(readonly o: ContainerdOptions) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(o.name)) throw new Error(`bad containerd name ${o.name}`);
    this.dir = o.dir;
    this.socket = join(o.dir, 'containerd.sock');
    this.root = join(o.dir, 'root');
    this.state = join(o.dir, 'state');
    this.runDir = join(o.dir, 'run');
    this.varLib = join(o.dir, 'var-lib');
    this.binDir = join(o.dir, 'cni-bin');
    this.logFile = join(o.dir, 'containerd.log');
    this.configFile = join(o.dir, 'config.toml');
    this.cgroupParent = `/${o.name}`;
    for (const d of [o.dir, this.root, this.state, this.runDir, this.varLib, this.binDir, join(o.dir, 'tmp')]) mkdirSync(d, { recursive: true, mode: 0o700 });
    const linked = new Set<string>();
    for (const src of o.cniBinDirs) {
      for (const f of readdirSync(src)) {
        if (linked.has(f) || f.startsWith('.')) continue;
        symlinkSync(join(src, f), join(this.binDir, f));
        linked.add(f);
      }
    }
    writeFileSync(this.configFile, this.config());
    this.cri = new CriClient(o.protoFile, this.socket);
  }

  private config(): string {
    const q = JSON.stringify; // a TOML basic string is a JSON string for these paths
    const cri = '[plugins."io.containerd.grpc.v1.cri"';
    return [
      'version = 2',
      `root = ${q(this.root)}`,
      `state = ${q(this.state)}`,
      // not needed, and each would want files elsewhere (opt: /opt/containerd)
      'disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
      '[grpc]',
      `  address = ${q(this.socket)}`,
      '[ttrpc]',
      `  address = ${q(`${this.socket}.ttrpc`)}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      `${cri}]`,
      `  sandbox_image = ${q(PAUSE_IMAGE)}`,
      '  netns_mounts_under_state_dir = true',
      '  restrict_oom_score_adj = true',
      // where AppArmor is on, CRI would load its profile into the machine's kernel; a test does not
      '  disable_apparmor = true',
      `${cri}.cni]`,
      `  bin_dir = ${q(this.binDir)}`,
      `  conf_dir = ${q(this.o.cniConfDir)}`,
      '  max_conf_num = 1',
      `${cri}.containerd]`,
      '  snapshotter = "overlayfs"',
      '  default_runtime_name = "runc"',
      `${cri}.containerd.runtimes.runc]`,
      '  runtime_type = "io.containerd.runc.v2"',
      `${cri}.containerd.runtimes.runc.options]`,
      '  SystemdCgroup = false',
      '',
    ].join('\n');
  }

  get pid(): number | undefined {
    return this.daemon?.pid;
  }
  get holderPid(): number | undefined {
    return this.holder?.pid;
  }

  /** The mount namespace containerd runs in, made once and kept across restarts. */
  private async ensureHolder(): Promise<number> {
    if (this.holder?.pid && alive(this.holder.pid)) return this.holder.pid;
    const h = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sleep', 'infinity'], { stdio: 'ignore' });
    this.holder = h;
    const pid = h.pid;
    if (!pid) throw new Error('unshare did not start');
    const mine = readlinkSync('/proc/self/ns/mnt');
    for (let i = 0; ; i++) {
      let ready = false;
      try {
        ready = readlinkSync(`/proc/${pid}/ns/mnt`) !== mine && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep';
      } catch {
        ready = false;
      }
      if (ready) break;
      if (i > 200 || h.exitCode !== null) throw new Error(`the mount namespace holder (unshare, pid ${pid}) did not come up`);
      await sleep(10);
    }
    const inMnt = (argv: string[]) => execFileSync('nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    inMnt(['mount', '--bind', this.runDir, '/run']);
    inMnt(['mount', '--bind', this.varLib, '/var/lib']);
    return pid;
  }

  /**
   * Starts containerd (again, with the same state, when it was killed) in the node's network
   * namespace and the holder's mount namespace; resolves when CRI answers, with the ms it took.
   */
  async start(): Promise<number> {
    const t0 = performance.now();
    if (this.daemon && this.daemon.exitCode === null && this.daemon.signalCode === null) throw new Error(`containerd ${this.o.name} is running`);
    const holder = await this.ensureHolder();
    const log = openSync(this.logFile, 'a');
    try {
      this.daemon = spawn(
        'nsenter',
        [`--mount=/proc/${holder}/ns/mnt`, `--net=/var/run/netns/${this.o.netns}`, '--', 'containerd', '--config', this.configFile, '--log-level', 'info'],
        { stdio: ['ignore', log, log], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', TMPDIR: join(this.dir, 'tmp') } },
      );
    } finally {
      closeSync(log);
    }
    const d = this.daemon;
    for (;;) {
      if (d.exitCode !== null || d.signalCode !== null) throw new Error(`containerd ${this.o.name} exited (${d.exitCode ?? d.signalCode}):\n${this.logTail()}`);
      try {
        await this.cri.version(1000);
        break;
      } catch {
        if (performance.now() - t0 > 30_000) throw new Error(`containerd ${this.o.name}: CRI did not answer in 30 s:\n${this.logTail()}`);
        await sleep(25);
      }
    }
    return performance.now() - t0;
  }

  /** SIGKILL containerd (only it: the shims and sandboxes keep running, as after a crash). */
  async kill(): Promise<void> {
    const d = this.daemon;
    if (!d?.pid || d.exitCode !== null || d.signalCode !== null) return;
    const exited = new Promise((r) => d.once('exit', r));
    process.kill(d.pid, 'SIGKILL');
    await exited;
  }

  /** The last lines of containerd's log, for error messages. */
  logTail(lines = 30): string {
    if (!existsSync(this.logFile)) return '(no log)';
    const fd = openSync(this.logFile, 'r');
    try {
      const size = statSync(this.logFile).size;
      const n = Math.min(size, 16_384);
      const b = Buffer.alloc(n);
      readSync(fd, b, 0, n, size - n);
      return b.toString('utf8').split('\n').slice(-lines).join('\n');
    } finally {
      closeSync(fd);
    }
  }

  ctr(args: string[]): string {
    return execFileSync('ctr', ['--address', this.socket, '--namespace', 'k8s.io', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Imports the sandbox image and waits until CRI's image store has it. */
  async importImage(tar: string, name = PAUSE_IMAGE): Promise<void> {
    this.ctr(['images', 'import', tar]);
    for (let i = 0; !(await this.cri.imageStatus(name)); i++) {
      if (i > 200) throw new Error(`CRI does not see ${name} after ctr images import`);
      await sleep(10);
    }
  }

  /** Runs argv in a sandbox's network namespace, entered by its path as CRI reports it. */
  inNetns(path: string, argv: string[]): string {
    const holder = this.holderPid;
    if (!holder) throw new Error('no mount namespace');
    return execFileSync('nsenter', [`--mount=/proc/${holder}/ns/mnt`, '--', 'nsenter', `--net=${path}`, '--', ...argv], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Every cgroup directory under our parent, in every hierarchy. */
  cgroupDirs(): string[] {
    const name = this.cgroupParent.slice(1);
    const dirs: string[] = [];
    if (!existsSync(CGROUP_ROOT)) return dirs;
    for (const h of ['', ...readdirSync(CGROUP_ROOT)]) {
      const d = join(CGROUP_ROOT, h, name);
      if (existsSync(d) && statSync(d).isDirectory()) dirs.push(d);
    }
    return dirs;
  }

  /** The sandbox cgroups under our parent (one per live or SIGKILLed sandbox, per hierarchy). */
  sandboxCgroups(): string[] {
    return this.cgroupDirs().flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(d, e.name)));
  }

  /** Processes in our cgroups: the sandboxes' (the pause processes and their children). */
  sandboxPids(): number[] {
    const pids = pidsInCgroups(this.cgroupDirs());
    for (const p of pids) this.seen.add(p);
    return [...pids].filter(alive);
  }

  /**
   * The shims: parents of the sandbox processes whose command line has `-address <our socket>`,
   * and any process whose command line names our socket (a shim whose sandbox exited already).
   */
  shims(): number[] {
    const ours = (pid: number) => {
      const argv = cmdline(pid);
      const i = argv.indexOf('-address');
      return argv[0]?.endsWith('containerd-shim-runc-v2') === true && i >= 0 && argv[i + 1] === this.socket;
    };
    const pids = new Set<number>();
    for (const p of this.sandboxPids()) {
      const pp = ppid(p);
      if (pp && ours(pp)) pids.add(pp);
    }
    for (const p of readdirSync('/proc')) {
      if (/^\d+$/.test(p) && ours(Number(p))) pids.add(Number(p));
    }
    for (const p of pids) this.seen.add(p);
    return [...pids];
  }

  /**
   * Best effort, each step on its own: sandboxes stopped and removed through CRI (so the plugins
   * get their DEL) while containerd answers; then SIGKILL to containerd, the shims, the sandboxes'
   * processes and the holder, by pid; our cgroups removed, deepest first. The files go with the
   * lab's dir.
   */
  async cleanup(): Promise<void> {
    const attempt = async (f: () => unknown) => {
      try {
        await f();
      } catch {
        // keep going
      }
    };
    if (this.daemon && this.daemon.exitCode === null && this.daemon.signalCode === null) {
      await attempt(async () => {
        for (const s of await this.cri.listPodSandbox(5000)) {
          await attempt(() => this.cri.stopPodSandbox(s.id, 10_000));
          await attempt(() => this.cri.removePodSandbox(s.id, 10_000));
        }
      });
    }
    await this.killAll();
    await attempt(() => this.cri.close());
  }

  /**
   * A power cut and a boot: everything this containerd's world runs is SIGKILLed at once
   * (containerd, the shims, the sandboxes, the mount namespace holder, so the pods' pinned
   * network namespaces go too), its cgroups removed, and /run and the state dir emptied as a boot
   * empties tmpfs. The root (images, CRI's metadata of every sandbox) stays, as /var/lib does.
   * start() brings containerd up again in a new mount namespace.
   */
  async powerCycle(): Promise<void> {
    await this.killAll();
    this.holder = undefined;
    this.seen.clear();
    for (const d of [this.runDir, this.state]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true, mode: 0o700 });
    }
  }

  /** SIGKILL to containerd, the shims, the sandboxes' processes and the holder, by pid; our cgroups removed, deepest first. */
  private async killAll(): Promise<void> {
    const attempt = async (f: () => unknown) => {
      try {
        await f();
      } catch {
        // keep going
      }
    };
    await attempt(() => this.kill());
    const victims = new Set<number>([...this.shims(), ...this.sandboxPids(), ...this.seen]);
    if (this.holder?.pid) victims.add(this.holder.pid);
    for (const p of victims) await attempt(() => alive(p) && process.kill(p, 'SIGKILL'));
    for (let i = 0; i < 100 && [...victims].some(alive); i++) await sleep(20);
    for (let i = 0; i < 20 && this.cgroupDirs().length; i++) {
      for (const d of this.cgroupDirs()) await attempt(() => rmCgroup(d));
      if (this.cgroupDirs().length) await sleep(50);
    }
  }
}

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function ppid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Removes a cgroup directory and its children, deepest first (cgroups are removed with rmdir). */
function rmCgroup(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmCgroup(join(dir, e.name));
  rmdirSync(dir);
}
