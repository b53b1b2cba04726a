// A lab of network namespaces for one test file: a "node" namespace where the plugin runs (the
// way a runtime runs it, through nsenter), pod namespaces, and temp dirs. Everything carries a
// unique prefix and is deleted by name in cleanup(), which tests call in afterAll/afterEach
// even when they fail. Nothing here touches the machine's own namespace.
import { spawn } from 'node:child_process';
import { runProcess } from '../../src/proc.js';
import { sh } from '../../scripts/lab/sys.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export const BIN = resolve(process.env.VNET_BIN ?? 'dist/bin/vnet');
export const BIN_DIR = resolve(BIN, '..');
export const REF_DIR = '/usr/lib/cni';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, if it was. */
  json: any;
}

export { sh };

export class Lab {
  readonly prefix = 'vt' + randomBytes(3).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
  private namespaces: string[] = [];

  /** Creates namespace <prefix>-<name> with lo up; returns its path. */
  ns(name: string): string {
    const full = `${this.prefix}-${name}`;
    sh(['ip', 'netns', 'add', full]);
    this.namespaces.push(full);
    sh(['ip', '-n', full, 'link', 'set', 'lo', 'up']);
    return `/var/run/netns/${full}`;
  }

  /**
   * A node as on AKS: namespace `node` whose eth0 (10.224.0.4/16) is a veth to namespace `vnet`
   * holding the VNet's gateway 10.224.0.1, the node's default route.
   */
  aksNode(name = 'node', o: { dualStack?: boolean } = {}): { node: string; gw: string } {
    const node = this.ns(name);
    const gw = this.ns(`${name}-vnet`);
    this.in(node, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vnet0', 'netns', gw]);
    // A real node's NIC finished duplicate address detection long ago; these links come up now.
    // With DAD on, the kernel adds the link-local address's local route a second or two later, in
    // the middle of a test comparing the node before and after a call, and until then sends no
    // IPv6 neighbour solicitation from them, so forwarded IPv6 would stall. Their DAD is off; the
    // plugin's own links keep the kernel's defaults.
    this.in(node, ['sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad']);
    this.in(gw, ['sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/vnet0/accept_dad']);
    this.in(node, ['ip', 'addr', 'add', '10.224.0.4/16', 'dev', 'eth0']);
    this.in(node, ['ip', 'link', 'set', 'eth0', 'up']);
    this.in(gw, ['ip', 'addr', 'add', '10.224.0.1/16', 'dev', 'vnet0']);
    this.in(gw, ['ip', 'link', 'set', 'vnet0', 'up']);
    this.in(node, ['ip', 'route', 'add', 'default', 'via', '10.224.0.1']);
    if (o.dualStack) {
      // and the VNet's IPv6 prefix, as on a dual-stack AKS node: fd00:224::4/64, gateway fd00:224::1
      this.in(node, ['ip', 'addr', 'add', 'fd00:224::4/64', 'dev', 'eth0']);
      this.in(gw, ['ip', 'addr', 'add', 'fd00:224::1/64', 'dev', 'vnet0']);
      this.in(node, ['ip', 'route', 'add', 'default', 'via', 'fd00:224::1', 'dev', 'eth0']);
    }
    return { node, gw };
  }

  /** Runs `ip ARGS` (or any argv with exec: true) inside a namespace path. */
  in(nsPath: string, argv: string[], input?: string): string {
    return sh(['nsenter', `--net=${nsPath}`, ...argv], input);
  }

  /** One ping from a namespace (IPv4 or IPv6, by the address); its output says "1 received" when it got through. */
  ping(from: string, to: string): string {
    return this.in(from, ['ping', '-c', '1', '-W', '2', to]);
  }

  ipJson(nsPath: string, args: string[]): any[] {
    return JSON.parse(this.in(nsPath, ['ip', '-json', ...args]) || '[]');
  }

  /** Runs a plugin binary inside the node namespace as a runtime would. */
  run(opts: { node: string; bin?: string; env: Record<string, string | undefined>; stdin: string | object }): Promise<Ran> {
    const input = typeof opts.stdin === 'string' ? opts.stdin : JSON.stringify(opts.stdin);
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', VNET_LOG_FILE: join(this.dir, 'vnet.log') };
    for (const [k, v] of Object.entries(opts.env)) if (v !== undefined) env[k] = v;
    else delete env[k];
    // By absolute path: a test may hand the plugin a PATH with planted tools first.
    return runProcess(['/usr/bin/nsenter', `--net=${opts.node}`, opts.bin ?? BIN], input, { env }).then((r) => {
      let json: any;
      try {
        json = JSON.parse(r.stdout);
      } catch {
        json = undefined;
      }
      // A plugin killed by a signal (the crash tests' SIGKILL) has no exit code: -1.
      return { ...r, code: r.signal ? -1 : r.code, json };
    });
  }

  cleanup(): void {
    for (const n of this.namespaces.splice(0)) {
      if (existsSync(`/var/run/netns/${n}`)) {
        try {
          sh(['ip', 'netns', 'del', n]);
        } catch {
          // already gone
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Environment for one CNI call. */
export function cniEnv(command: string, o: { id?: string; netns?: string; ifname?: string; path?: string; args?: string } = {}) {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: o.id,
    CNI_NETNS: o.netns,
    CNI_IFNAME: o.ifname ?? (command === 'VERSION' || command === 'STATUS' || command === 'GC' ? undefined : 'eth0'),
    CNI_PATH: o.path ?? `${BIN_DIR}:${REF_DIR}`,
    CNI_ARGS: o.args,
  };
}

/** A TCP listener in namespace `on` at addr:7000 that answers with the source address it sees. */
export function whoami(on: string, addr: string): { ready: Promise<unknown>; stop: () => void } {
  const p = spawn('nsenter', [`--net=${on}`, process.execPath, '-e',
    `require('net').createServer((s) => s.end(s.remoteAddress)).listen(7000, '${addr}', () => console.log('ready'))`]);
  return { ready: new Promise((r) => p.stdout!.once('data', r)), stop: () => p.kill() };
}

/** What a `whoami` listener at addr answers a connection from namespace `from`. */
export const ask = (from: string, addr: string) =>
  sh(['nsenter', `--net=${from}`, process.execPath, '-e',
    `const s = require('net').connect(7000, '${addr}'); s.on('data', (d) => process.stdout.write(d)); s.setTimeout(3000, () => process.exit(2));`]);

/** A transparent-mode config on vnet-ipam: one range set per family given, a default route per family. */
export function transparentConf(net: string, ranges: object[][], dataDir: string, over: Record<string, unknown> = {}): any {
  const families = ranges.map((r: any) => (String(r[0].subnet).includes(':') ? '::/0' : '0.0.0.0/0'));
  return {
    cniVersion: '1.1.0',
    name: net,
    type: 'vnet',
    mode: 'transparent',
    mtu: 1500,
    ipam: { type: 'vnet-ipam', ranges, routes: families.map((dst) => ({ dst })), dataDir },
    ...over,
  };
}

/** Every pid in these cgroup directories and their descendants (a cgroup that goes away meanwhile is skipped). */
export function pidsInCgroups(dirs: readonly string[]): Set<number> {
  const pids = new Set<number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name === 'cgroup.procs') for (const p of readFileSync(join(d, e.name), 'utf8').split('\n')) if (p) pids.add(Number(p));
    }
  };
  for (const d of dirs) {
    try {
      walk(d);
    } catch {
      // a cgroup went away while we looked
    }
  }
  return pids;
}
