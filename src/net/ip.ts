// The iproute2 driver: typed commands (command.ts) run as one `ip -batch -` process per side
// (the node, or the pod through `nsenter --net=/proc/self/fd/3`), a command that batch grammar
// cannot carry as its own argv; state read back with `ip -json`. Never a shell.
import { runProcess as run, startProcess, tool, type Ran, type Started } from '../proc.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { CniError, Code, firstLine } from '../errors.js';
import { POD_NETNS_REF, argvOf, batchLine, type IpCmd } from './command.js';
import type { PodNetns } from './netns.js';
import { ifNameProblem, toAddr, toDst, type Addr, type Cidr, type IfName, type Mac } from './values.js';
import { log } from '../log.js';

/** The argv that runs `ip ARGS` on the node (no pod) or inside the pod's netns. */
function ipArgv(args: string[], pod?: PodNetns): string[] {
  return pod ? [tool('nsenter'), `--net=${POD_NETNS_REF}`, tool('ip'), ...args] : [tool('ip'), ...args];
}

/**
 * `ip -batch -` processes started ahead of need, one on the node and one in the pod, each taken
 * by the first batch of its side that is given them: ADD starts them before IPAM, so that their
 * start-up overlaps it.
 */
export class Batches {
  private readonly started: Partial<Record<'node' | 'pod', Started>>;
  constructor(pod: PodNetns) {
    this.started = { node: startProcess(ipArgv(['-batch', '-']), { fd3: pod.fd }), pod: startProcess(ipArgv(['-batch', '-'], pod), { fd3: pod.fd }) };
  }
  /** The waiting process of a side, once: a later batch of that side starts its own. */
  take(side: 'node' | 'pod'): Started | undefined {
    const s = this.started[side];
    delete this.started[side];
    return s;
  }
  /** Throws why a process could not start (out of descriptors, say): before any plan step. */
  check(): void {
    for (const s of Object.values(this.started)) {
      const err = s.startError();
      if (err) throw err;
    }
  }
  /** Ends the processes nobody took (an empty batch: ip exits at once). */
  async end(): Promise<void> {
    const left = [this.take('node'), this.take('pod')];
    await Promise.all(left.map((s) => s?.finish('').catch(() => undefined)));
  }
}

/** Every child gets the pod's namespace on fd 3, so a node-side `netns` argument can name it too. */
function runIp(args: string[], stdin: string, pod?: PodNetns, fd3 = pod?.fd): Promise<Ran> {
  return run(ipArgv(args, pod), stdin, { fd3 });
}

/**
 * What `ip` and `nft` say when what a removal wanted gone is gone already: for DEL and GC, done.
 * "No such device" is `ip link del` of a link that went between GC's listing and its delete.
 */
export const ALREADY_GONE = /Cannot find device|No such device|does not exist|No such file or directory|No such process/;

interface Failure {
  /** 0-based index of the command that failed. */
  index: number;
  message: string;
}

/** What `ip` said, without its "Command failed" trailers. */
const said = (stderr: string, code: number) =>
  stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join('; ') || `ip exited ${code}`;

export interface Where {
  /** Run inside the pod's namespace; else on the node. */
  pod?: PodNetns;
  /** The pod's namespace descriptor, for node-side commands that name it. */
  fd3?: number;
  /** Processes started ahead: the first batch of this side takes its own. */
  batches?: Batches;
  /**
   * A node-side link whose deletion ends these commands: once it is gone from the node they are
   * done, without waiting for the kernel's teardown (see goneBeforeEnd).
   */
  doneWhenGone?: IfName;
}

/**
 * Runs commands in order, batch lines together in one process, a command batch grammar cannot
 * carry alone. Stops at the first failure and says which command failed.
 */
export async function ipRun(cmds: readonly IpCmd[], where: Where = {}): Promise<Failure | undefined> {
  const gone = where.doneWhenGone && !where.pod && nodeHasLink(where.doneWhenGone) ? where.doneWhenGone : undefined;
  let i = 0;
  while (i < cmds.length) {
    const lines: string[] = [];
    for (let j = i; j < cmds.length; j++) {
      const line = batchLine(cmds[j]!);
      if (line === undefined) break;
      lines.push(line);
    }
    if (lines.length) {
      const stdin = lines.join('\n') + '\n';
      const ready = where.batches?.take(where.pod ? 'pod' : 'node');
      const ended = ready ? ready.finish(stdin) : runIp(['-batch', '-'], stdin, where.pod, where.fd3);
      const last = i + lines.length === cmds.length;
      if (gone && last && (await goneBeforeEnd(gone, ended))) {
        log.info(`  ${gone} is gone from the node; ip waits out the kernel's teardown of it on its own`);
        i += lines.length;
        continue;
      }
      const { code, stderr } = await ended;
      if (code !== 0) {
        const m = /Command failed -:(\d+)/.exec(stderr);
        return { index: i + (m ? Number(m[1]) - 1 : 0), message: said(stderr, code) };
      }
      i += lines.length;
    } else {
      const { code, stderr } = await runIp(argvOf(cmds[i]!), '', where.pod, where.fd3);
      if (code !== 0) return { index: i, message: said(stderr, code) };
      i++;
    }
  }
  return undefined;
}

/**
 * Whether the link left the node before `ip` ended. The kernel unlists a link at once and then
 * tears it down (RCU grace periods, references), which takes longer than the rest of a DEL,
 * before it answers ip's netlink request. Once the link is gone the commands have succeeded (ip
 * stops at its first failing line, and the deletion is the last): a DEL need not wait for the
 * teardown, ip finishes it by itself.
 */
async function goneBeforeEnd(name: IfName, ended: Promise<Ran>): Promise<boolean> {
  let over = false;
  void ended.then(() => (over = true), () => (over = true));
  while (!over) {
    if (!nodeHasLink(name)) return true;
    await new Promise((r) => setTimeout(r, 1));
  }
  return false;
}

/** Runs every command, whatever fails (`ip -force`), and returns every failure. */
export async function ipRunAll(cmds: readonly IpCmd[]): Promise<Failure[]> {
  const failures: Failure[] = [];
  const batched: number[] = [];
  for (const [i, cmd] of cmds.entries()) {
    if (batchLine(cmd) !== undefined) {
      batched.push(i);
      continue;
    }
    const { code, stderr } = await runIp(argvOf(cmd), '');
    if (code !== 0) failures.push({ index: i, message: said(stderr, code) });
  }
  if (batched.length) {
    const { stderr } = await runIp(['-force', '-batch', '-'], batched.map((i) => batchLine(cmds[i]!)).join('\n') + '\n');
    // With -force, ip prints each failing line's error, then "Command failed -:N".
    let pending: string[] = [];
    for (const l of stderr.split('\n')) {
      const m = /Command failed -:(\d+)/.exec(l);
      if (!m) {
        if (l) pending.push(l);
        continue;
      }
      failures.push({ index: batched[Number(m[1]) - 1] ?? -1, message: pending.join('; ') || 'failed' });
      pending = [];
    }
  }
  return failures.sort((a, b) => a.index - b.index);
}

/** A link as `ip -json [-details] link|addr show` prints it: one type for every reader, the fields vnet reads. */
export interface LinkRow {
  ifname: string;
  ifalias?: string;
  address?: string;
  mtu?: number;
  master?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[];
}

/** A neighbour entry as `ip -json neigh show` prints it. */
export interface NeighRow {
  dst?: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** Both families' routes in one read: `route show` alone lists IPv4 only, and batch lines take no -6. */
export const ROUTES = 'route show table all';

export interface RouteRow {
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  table?: string;
  type?: string;
  pref?: string;
  flags?: string[];
  prefsrc?: string;
  nexthops?: unknown[];
  metrics?: unknown[];
}

/**
 * The main table's unicast routes of a ROUTES read, typed: the destination as a CIDR of its
 * family ("default" is 0.0.0.0/0 or ::/0: the gateway says which, else IPv6's `pref` field, which
 * only IPv6 routes carry), the gateway parsed. A row that does not parse is left out.
 */
export function mainRoutes(rows: readonly RouteRow[]): (Omit<RouteRow, 'dst' | 'gateway' | 'metric'> & { dst: Cidr; gw?: Addr; metric?: number })[] {
  return rows.flatMap((r) => {
    if (r.table !== undefined || (r.type !== undefined && r.type !== 'unicast') || typeof r.dst !== 'string') return [];
    const gw = r.gateway === undefined ? undefined : toAddr(r.gateway);
    if (r.gateway !== undefined && !gw) return [];
    const v6 = r.dst === 'default' ? (gw ? gw.family === 6 : r.pref !== undefined) : r.dst.includes(':');
    const text = r.dst === 'default' ? (v6 ? '::/0' : '0.0.0.0/0') : r.dst.includes('/') ? r.dst : `${r.dst}/${v6 ? 128 : 32}`;
    const dst = toDst(text);
    return dst ? [{ ...r, dst, gw, metric: Number.isInteger(r.metric) ? r.metric : undefined }] : [];
  });
}

/** One link's row with its kind (`ip -json -details link show dev NAME`: linkinfo.info_kind), whatever characters its name holds; undefined if absent. */
export async function linkRow(name: IfName): Promise<LinkRow | undefined> {
  const { stdout } = await runIp(['-json', '-details', ...argvOf(['link', 'show', 'dev', name])], '');
  try {
    return (JSON.parse(stdout || '[]') as LinkRow[]).find((l) => l.ifname === name);
  } catch {
    return undefined;
  }
}

/** Runs read-only `ip -json` commands (our own constant text) in one process; one array each. */
export async function ipJson(commands: readonly string[], pod?: PodNetns): Promise<unknown[][]> {
  const { code, stdout, stderr } = await runIp(['-json', '-force', '-batch', '-'], commands.join('\n') + '\n', pod);
  const out = stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown[]);
  if (out.length !== commands.length) {
    throw new CniError(Code.io, `reading network state${pod ? ` in ${pod.path}` : ''} failed (exit ${code}): ${firstLine(stderr)}`);
  }
  return out;
}

/** A sysctl key under net.*, built from our own names (never outside text). */
export type SysctlKey = `net.${string}`;

/** Reads a sysctl of the caller's own network namespace (the node's). */
export function readSysctl(key: SysctlKey): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Writes a sysctl in the node's namespace, in-process: no `sysctl` process on the ADD path. */
export function writeSysctl(key: SysctlKey, value: string): void {
  if (readSysctl(key) === value) return;
  try {
    writeFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, value);
  } catch (err) {
    throw new CniError(Code.datapath, `cannot set sysctl ${key}=${value}: ${(err as Error).message}`);
  }
}

/** Whether the node has a link of this name, from /proc (per network namespace): no process. */
export function nodeHasLink(name: IfName): boolean {
  try {
    readFileSync(`/proc/sys/net/ipv4/conf/${name}/forwarding`);
    return true;
  } catch {
    return false;
  }
}

/** The addresses a bridge's neighbour table maps to this MAC (DEL without prevResult): one process. */
/**
 * In one process: the alias of `veth` (when it exists) and the addresses of the neighbour entries on
 * `dev` that `macOf(alias)` names, for DEL to find a pod's entries by its MAC.
 */
export async function neighboursByMac(dev: IfName, veth: IfName, macOf: (alias: string | undefined) => Mac): Promise<{ mac: Mac; ips: Addr[] }> {
  let has = nodeHasLink(veth);
  const read = () => ipJson(has ? [`link show dev ${veth}`, 'neigh show'] : ['neigh show']);
  // The veth may go between the look and the read (a GC racing this DEL): then read without it.
  const rows = await read().catch((err: unknown) => {
    if (nodeHasLink(veth)) throw err;
    has = false;
    return read();
  });
  const link = has ? (rows[0] as LinkRow[]).find((l) => l.ifname === veth) : undefined;
  const mac = macOf(link?.ifalias);
  const ips = (rows[rows.length - 1] as NeighRow[])
    .filter((n) => n.dev === dev && n.lladdr === mac && typeof n.dst === 'string')
    .flatMap((n) => toAddr(n.dst!) ?? []);
  return { mac, ips };
}

/** The name of the interface holding the default IPv4 route, from /proc/net/route (no process). */
export function defaultRouteInterface(): string | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (dest === '00000000' && mask === '00000000' && iface) return iface;
  }
  return undefined;
}

/**
 * MTU of a link in the node's namespace. Read in-process from /proc/sys/net/ipv6/conf/<dev>/mtu,
 * which /proc keeps per network namespace (sysfs would show the machine's own, not the node's):
 * it follows the link's MTU unless someone lowered IPv6's alone, and is never above it. Where
 * IPv6 is off, one `ip` process.
 */
export async function linkMtu(name: string): Promise<number | undefined> {
  if (!ifNameProblem(name)) {
    try {
      const v = Number(readFileSync(`/proc/sys/net/ipv6/conf/${name}/mtu`, 'utf8').trim());
      if (Number.isInteger(v) && v >= 1280) return v;
    } catch {
      // no IPv6 on this link or node: ask ip
    }
  }
  const [links] = await ipJson(['link show']);
  const link = (links as LinkRow[]).find((l) => l.ifname === name);
  return link?.mtu;
}
