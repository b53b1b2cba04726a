// A podman of its own for one network, run the way a node runs it: inside a Lab "node" namespace
// (`nsenter --net=…`, so mounts stay in the machine's mount namespace where conmon and
// `podman container cleanup` see them too), with every piece of state in <lab dir>/podman-<network>
// (the network's name starts with the lab's prefix; one test file may run several, one per node):
//
//   storage (--root, --runroot, vfs), libpod's --tmpdir, the events log, the CNI config dir, the
//   container rootfs, the plugin's log, and a containers.conf (CONTAINERS_CONF) that selects the CNI
//   backend and puts dist/bin first on the CNI plugin path, then /usr/lib/cni (the reference
//   plugins: portmap is found there).
//
// What podman 4.3 keeps outside that dir, and cleanup() removes by name: the container netns files
// /run/netns/netns-<uuid> (podman picks the name; we record each one from `podman inspect`), libcni's
// result cache /var/lib/cni/results/<network>-<id>-<ifname>, runc's state /run/runc/<container id>
// (`--runtime-flag root=…` would move it, but conmon's exit command does not pass that flag on, so
// the cleanup after a container exits would miss it), and cgroupfs cgroups under /<network>
// (--cgroup-parent). Nothing here touches the machine's network namespace.
//
// Why these flags (podman 4.3.1, conmon 2.1.6, runc 1.1.5 on Debian 12):
// - runc, not Debian's default crun 1.8.1: crun refuses hybrid cgroup hierarchies ("cgroups in hybrid
//   mode not supported, drop all controllers from cgroupv2") and runc does not support
//   --cgroups=disabled, so containers get cgroupfs cgroups under a parent named by the prefix.
// - --ulimit nofile/nproc at 1024: podman's defaults (nofile 1048576) exceed the hard limits of a
//   root without CAP_SYS_RESOURCE (as in a container or VM sandbox), and the runtime's setrlimit fails.
// - --rootfs with a directory holding a static busybox: no registry is needed, and unlike
//   `podman import` nothing is written to /var/lib/containers/cache (the blob info cache).
// - --cap-add NET_RAW: podman 4.3's default capabilities leave it out and busybox ping wants a raw socket.
//
// Machine facts the port-mapping tests rest on (Debian 12, kernel 6.18 with everything built in):
// - portmap is containernetworking-plugins 1.1.1 (/usr/lib/cni, CNI up to 1.0.0). It runs the
//   `iptables` it finds on PATH, which is iptables-nft 1.8.9 (update-alternatives), so its rules are
//   nftables tables of iptables-nft's (`table ip nat`, "managed by iptables-nft") in the namespace
//   it runs in: the node's, since podman runs there. iptables-legacy is never used.
// - Its rules: shared chains CNI-HOSTPORT-DNAT (jumped to from PREROUTING and OUTPUT for local
//   destinations), CNI-HOSTPORT-SETMARK and CNI-HOSTPORT-MASQ (kept after the last container goes), and
//   per container a chain CNI-DN-<hash> holding the DNAT, jumped to by a rule commented
//   `dnat name: "<network>" id: "<container ID>"`; DEL removes both. With "snat": true it marks for
//   masquerade what comes from 127.0.0.1 and from the container's whole subnet (`-s <subnet>`, not
//   the container's /32), so a VNet client in the pods' subnet reaches a published port
//   masqueraded, a client on another subnet not; and it sets route_localnet=1 on the device its
//   route to the container goes through (the azv veth in transparent mode, the bridge in bridge
//   mode), never turned back off.
// - `iptables-save -t nat` creates an empty nat table in a namespace that had none; `nft list
//   ruleset` reads without creating.
// - podman 4.3 (rootful, CNI) reserves each published host port: conmon holds a listening socket
//   on 0.0.0.0:<hostport> in the node namespace while the container runs. It never accepts, so a
//   connection that no DNAT diverts hangs there; it closes when conmon exits (stop, rm).
// - br_netfilter is built in, and bridge-nf-call-iptables is 1 in every new namespace. Azure's
//   bridge layout needs it for published ports: the container answers a client outside its subnet
//   through the VNet's gateway, bridged, and only conntrack on the bridge undoes the DNAT.
// - DNAT to a container behind the bridge needs IPv4 forwarding in the node namespace; a new
//   namespace starts with it off. vnet turns it on in every layout (in Azure's bridge layout for
//   exactly this: its pods' own traffic is bridged).
// - busybox-static 1.35's nc is the small one: no -k; `nc -ll -p PORT -e PROG ARGS…` serves every
//   connection; its httpd, wget and telnet applets are there too.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { BIN_DIR, REF_DIR, type Lab, pidsInCgroups } from './lab.js';

const BUSYBOX = '/bin/busybox'; // Debian's busybox-static: one static file, runs in an empty rootfs
const APPLETS = ['sh', 'ping', 'ip', 'sleep', 'cat', 'nc', 'echo'];
const CNI_CACHE = '/var/lib/cni';
const RUNC_ROOT = '/run/runc';
const CGROUP_ROOT = '/sys/fs/cgroup';

export class Podman {
  readonly dir: string;
  readonly rootfs: string;
  readonly confDir: string;
  readonly cgroupParent: string;
  readonly logFile: string;
  private readonly env: Record<string, string>;
  private readonly globals: string[];
  private readonly containers = new Set<string>();
  private readonly sandboxes = new Set<string>();
  private readonly ids = new Set<string>();
  private readonly runcRootExisted = existsSync(RUNC_ROOT);
  private readonly cniCacheExisted = existsSync(CNI_CACHE);
  private readonly cniResultsExisted = existsSync(join(CNI_CACHE, 'results'));

  constructor(
    lab: Lab,
    private readonly node: string,
    readonly network: string,
  ) {
    // One podman per network (per node): its own dir, and a cgroup parent named by the network,
    // which carries the lab's prefix.
    if (!network.startsWith(lab.prefix)) throw new Error(`network ${network} lacks the lab prefix ${lab.prefix}`);
    this.dir = join(lab.dir, `podman-${network}`);
    this.rootfs = join(this.dir, 'rootfs');
    this.confDir = join(this.dir, 'cni');
    this.cgroupParent = `/${network}`;
    this.logFile = join(this.dir, 'vnet.log');
    for (const d of [this.dir, this.confDir, join(this.rootfs, 'bin')]) mkdirSync(d, { recursive: true });

    if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install busybox-static (scripts/deps.sh does)`);
    copyFileSync(BUSYBOX, join(this.rootfs, 'bin', 'busybox'));
    for (const a of APPLETS) symlinkSync('busybox', join(this.rootfs, 'bin', a));

    const containersConf = join(this.dir, 'containers.conf');
    writeFileSync(
      containersConf,
      [
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ${JSON.stringify([BIN_DIR, REF_DIR])}`,
        `network_config_dir = ${JSON.stringify(this.confDir)}`,
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = ${JSON.stringify(join(this.dir, 'events.log'))}`,
        '',
      ].join('\n'),
    );
    const storageConf = join(this.dir, 'storage.conf');
    writeFileSync(
      storageConf,
      [
        '[storage]',
        'driver = "vfs"',
        `graphroot = ${JSON.stringify(join(this.dir, 'root'))}`,
        `runroot = ${JSON.stringify(join(this.dir, 'runroot'))}`,
        '',
      ].join('\n'),
    );
    // Inherited by conmon and by the `podman container cleanup` it runs when a container exits,
    // and by the CNI plugins podman execs.
    this.env = {
      ...(process.env as Record<string, string>),
      CONTAINERS_CONF: containersConf,
      CONTAINERS_STORAGE_CONF: storageConf,
      VNET_LOG_FILE: this.logFile,
    };
    this.globals = [
      '--root', join(this.dir, 'root'),
      '--runroot', join(this.dir, 'runroot'),
      '--tmpdir', join(this.dir, 'tmp'),
      '--volumepath', join(this.dir, 'volumes'),
      '--storage-driver', 'vfs',
      '--network-backend', 'cni',
      '--network-config-dir', this.confDir,
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      '--runtime', 'runc',
    ];
  }

  /** Writes the network's conflist into podman's CNI config dir. */
  writeConflist(conflist: object): void {
    writeFileSync(join(this.confDir, `${this.network}.conflist`), JSON.stringify(conflist, null, 2));
  }

  /** `podman ARGS` inside the node namespace; throws with podman's stderr on failure. */
  podman(args: string[]): string {
    try {
      return execFileSync('nsenter', [`--net=${this.node}`, 'podman', ...this.globals, ...args], {
        env: this.env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      }).trim();
    } catch (e: any) {
      throw new Error(`podman ${args.join(' ')} failed (exit ${e.status ?? e.signal}): ${String(e.stderr ?? e.message).trim()}`);
    }
  }

  /**
   * `podman run -d` a busybox container on the network, running `sleep 600` or `argv`, with
   * `-p HOST:CTR` for each of `publish` (podman hands them to portmap as runtimeConfig.portMappings),
   * and `--mac-address` for `mac` (podman 4.3's CNI backend hands it to the plugins as CNI_ARGS MAC).
   */
  runContainer(name: string, o: { publish?: string[]; argv?: string[]; mac?: string } = {}): void {
    this.containers.add(name);
    this.podman([
      'run', '-d', '--name', name,
      '--network', this.network,
      ...(o.publish ?? []).flatMap((p) => ['--publish', p]),
      ...(o.mac ? ['--mac-address', o.mac] : []),
      '--cgroup-parent', this.cgroupParent,
      '--cap-add', 'NET_RAW',
      '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
      '--rootfs', this.rootfs,
      ...(o.argv ?? ['sleep', '600']),
    ]);
    this.track(name);
  }

  /** `podman start` again (the runtime calls ADD again, in a new netns). */
  start(name: string): void {
    this.podman(['start', name]);
    this.track(name);
  }

  exec(name: string, argv: string[]): string {
    return this.podman(['exec', name, ...argv]);
  }

  /** What podman knows about the container: full ID, state, netns path, address on our network. */
  inspect(name: string): { id: string; status: string; netns: string; ip: string; prefixLen: number; gateway: string } {
    const c = JSON.parse(this.podman(['container', 'inspect', name]))[0];
    const n = c.NetworkSettings?.Networks?.[this.network] ?? {};
    return {
      id: c.Id,
      status: c.State.Status,
      netns: c.NetworkSettings?.SandboxKey ?? '',
      ip: n.IPAddress ?? '',
      prefixLen: n.IPPrefixLen ?? 0,
      gateway: n.Gateway ?? '',
    };
  }

  /** Remembers the container's ID and netns file, so cleanup() can remove what podman did not. */
  private track(name: string): void {
    const c = this.inspect(name);
    this.ids.add(c.id);
    if (c.netns) this.sandboxes.add(c.netns);
  }

  /** Files libcni keeps for this network outside the Lab dir (empty once every DEL ran). */
  cniCacheFiles(): string[] {
    const dir = join(CNI_CACHE, 'results');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => f.startsWith(`${this.network}-`));
  }

  /** Netns files podman made for our containers that still exist. */
  liveSandboxes(): string[] {
    return [...this.sandboxes].filter((p) => existsSync(p));
  }

  /**
   * Best effort, every step on its own, by name: our containers, any process left in our
   * cgroups or holding our dirs (conmon, the containers), mounts under our dir, the netns files
   * podman made for us, our cgroups, libcni's cache entries for our network.
   */
  cleanup(): void {
    const attempt = (f: () => void) => {
      try {
        f();
      } catch {
        // keep going: the next step may still free something
      }
    };
    if (this.containers.size) attempt(() => this.podman(['rm', '--force', '--ignore', '--time', '0', ...this.containers]));

    for (const pid of this.strayPids()) attempt(() => process.kill(pid, 'SIGKILL'));
    for (const id of this.ids) {
      if (existsSync(join(RUNC_ROOT, id))) attempt(() => execFileSync('runc', ['delete', '--force', id], { stdio: 'ignore' }));
    }
    if (!this.runcRootExisted) attempt(() => rmdirSync(RUNC_ROOT));

    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m === this.dir || m.startsWith(this.dir + '/'))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) attempt(() => execFileSync('umount', ['-l', m], { stdio: 'ignore' }));

    for (const ns of this.sandboxes) {
      if (existsSync(ns) && basename(ns).startsWith('netns-')) attempt(() => execFileSync('ip', ['netns', 'del', basename(ns)], { stdio: 'ignore' }));
    }

    for (const dir of this.cgroupDirs()) attempt(() => rmCgroup(dir));

    for (const f of this.cniCacheFiles()) attempt(() => rmSync(join(CNI_CACHE, 'results', f), { force: true }));
    // libcni created these if they were not there before us; remove them only if empty.
    if (!this.cniResultsExisted) attempt(() => rmdirSync(join(CNI_CACHE, 'results')));
    if (!this.cniCacheExisted) attempt(() => rmdirSync(CNI_CACHE));

    attempt(() => rmSync(this.dir, { recursive: true, force: true }));
  }

  /** Our cgroup parent in every hierarchy (cgroup v1 controllers, the hybrid unified one, or v2). */
  private cgroupDirs(): string[] {
    const name = this.cgroupParent.slice(1);
    const dirs = [join(CGROUP_ROOT, name)];
    if (existsSync(CGROUP_ROOT)) for (const h of readdirSync(CGROUP_ROOT)) dirs.push(join(CGROUP_ROOT, h, name));
    return dirs.filter((d) => existsSync(d) && statSync(d).isDirectory());
  }

  /** conmon and container processes: in our cgroups, or started with our dir on their command line. */
  private strayPids(): number[] {
    const pids = pidsInCgroups(this.cgroupDirs());
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(this.dir + '/')) pids.add(Number(p));
      } catch {
        // exited
      }
    }
    pids.delete(process.pid);
    return [...pids];
  }
}

/** Removes a cgroup directory and its children, deepest first (cgroups are removed with rmdir). */
function rmCgroup(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmCgroup(join(dir, e.name));
  rmdirSync(dir);
}

/** A node on its VNet, as every podman mode test starts from (see vnetNode). */
export interface VnetNode {
  /** namespace <prefix>-<name>: the node, where podman and the plugins run */
  node: string;
  /** namespace <prefix>-<name>-vnet: the VNet, holding its gateway on vnet0 and routing to `remote` */
  vnet: string;
  /** namespace <prefix>-<name>-remote: a machine on another subnet, reached through the VNet's router */
  remote: string;
  /** the VNet subnet, the node's address on eth0 and the VNet's gateway, the node's default route */
  subnet: string;
  prefixLen: number;
  nodeIp: string;
  gwIp: string;
  remoteIp: string;
}

/**
 * A node as on Azure: namespace `name` whose eth0 (10.230.0.4/16) is a veth to namespace
 * `name-vnet`, which holds the VNet's gateway 10.230.0.1 (vnet0), the node's default route, and
 * routes on to namespace `name-remote` (10.240.0.2/24, another subnet: a client whose traffic no
 * one masquerades). Every mode starts from it: transparent leaves eth0 alone, kubenet's bridge
 * sits beside it, Azure's bridge layout moves eth0 onto the bridge. Sysctls are set in these
 * namespaces only.
 */
export function vnetNode(lab: Lab, name: string): VnetNode {
  const n: VnetNode = {
    node: lab.ns(name),
    vnet: lab.ns(`${name}-vnet`),
    remote: lab.ns(`${name}-remote`),
    subnet: '10.230.0.0/16',
    prefixLen: 16,
    nodeIp: '10.230.0.4',
    gwIp: '10.230.0.1',
    remoteIp: '10.240.0.2',
  };
  lab.in(n.node, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vnet0', 'netns', n.vnet]);
  lab.in(n.node, ['ip', 'addr', 'add', `${n.nodeIp}/${n.prefixLen}`, 'dev', 'eth0']);
  lab.in(n.node, ['ip', 'link', 'set', 'eth0', 'up']);
  lab.in(n.vnet, ['ip', 'addr', 'add', `${n.gwIp}/${n.prefixLen}`, 'dev', 'vnet0']);
  lab.in(n.vnet, ['ip', 'link', 'set', 'vnet0', 'up']);
  lab.in(n.node, ['ip', 'route', 'add', 'default', 'via', n.gwIp]);

  lab.in(n.vnet, ['ip', 'link', 'add', 'remote0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.remote]);
  lab.in(n.vnet, ['ip', 'addr', 'add', '10.240.0.1/24', 'dev', 'remote0']);
  lab.in(n.vnet, ['ip', 'link', 'set', 'remote0', 'up']);
  lab.in(n.vnet, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
  lab.in(n.remote, ['ip', 'addr', 'add', `${n.remoteIp}/24`, 'dev', 'eth0']);
  lab.in(n.remote, ['ip', 'link', 'set', 'eth0', 'up']);
  lab.in(n.remote, ['ip', 'route', 'add', 'default', 'via', '10.240.0.1']);
  return n;
}
