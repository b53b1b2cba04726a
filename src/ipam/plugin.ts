// vnet-ipam: a host-local compatible IPAM plugin. One verb per function, reading straight
// through: parse the config, then do the work under the network's lock.
import { readFileSync } from 'node:fs';
import type { CniEnv } from '../cni/env.js';
import { asCniError, CniError, Code, OUT_OF_RESOURCES } from '../errors.js';
import { crashPoint } from '../crash.js';
import { parseResult, type DNS, type Result } from '../cni/result.js';
import { validAttachments } from '../config/attachments.js';
import { parseIpamConfig, parseIpamLocation, type IpamConfig } from './config.js';
import { allocate, assignRequested, attachmentText, collect, holder, release, type Assigned } from './allocator.js';
import { withLock } from './lock.js';
import { formatCidr, formatIp, formatValue, parseCidr, parseIp } from '../net/address.js';
import { subnetFor } from './range.js';
import { Store, type Attachment } from './store.js';

/** Runs one vnet-ipam verb. `conf` is the parsed stdin JSON object (the network config). Returns the Result for ADD, undefined otherwise. Throws CniError. Never prints. */
export async function runIpam(env: CniEnv, conf: Record<string, unknown>): Promise<Result | undefined> {
  try {
    switch (env.command) {
      case 'ADD':
        return await add(env, conf);
      case 'DEL':
        await del(env, conf);
        return undefined;
      case 'CHECK':
        check(env, conf);
        return undefined;
      case 'GC':
        await gc(conf);
        return undefined;
      case 'STATUS':
        status(conf);
        return undefined;
      default:
        throw new CniError(Code.invalidEnv, `vnet-ipam does not handle CNI_COMMAND ${env.command}`);
    }
  } catch (err) {
    throw asIoError(err);
  }
}

/**
 * What `vnet state` shows: every address held in a network's directory, in address order. Reads
 * through no link: an address file that is a link is skipped, a network directory that is one is
 * an error naming it.
 */
export function listAllocations(dataDir: string, network: string): { ip: string; containerId: string; ifname: string }[] {
  const all = Store.forNetwork(dataDir, network).list();
  const key = (ip: string) => {
    const p = parseIp(ip)!;
    return [p.family, p.value] as const;
  };
  return all
    .map(({ ip, containerId, ifname }) => ({ ip, containerId, ifname }))
    .sort((a, b) => {
      const [fa, va] = key(a.ip);
      const [fb, vb] = key(b.ip);
      return fa - fb || (va < vb ? -1 : va > vb ? 1 : 0);
    });
}

/** An allocation younger than this is never freed by hand: an ADD may still be wiring its pod. */
const LEAK_GRACE_MS = 60_000;

/**
 * `vnet state --free-leaked`: releases the attachments whose addresses `vnet state` found leaked
 * (no veth), under the network's lock, each checked again there: still held by that attachment,
 * its veth still absent (`vethGone`), and its address file older than LEAK_GRACE_MS, so an ADD
 * that has allocated but not yet made its veth keeps what it holds. Returns what it freed and
 * what it kept, with why.
 */
export async function freeLeaked(
  dataDir: string,
  network: string,
  leaked: readonly (Attachment & { ip: string })[],
  vethGone: (a: Attachment) => boolean,
): Promise<{ freed: string[]; kept: string[] }> {
  const store = Store.forNetwork(dataDir, network);
  const out = { freed: [] as string[], kept: [] as string[] };
  if (!leaked.length || !store.exists()) return out;
  await withLock(store.dir, () => {
    for (const l of leaked) {
      const who = `${l.ip} (container ${l.containerId} ${l.ifname})`;
      const owner = store.owner(l.ip);
      if (!owner || owner.containerId !== l.containerId || owner.ifname !== l.ifname) out.kept.push(`${who}: no longer held by it`);
      else if (!vethGone(l)) out.kept.push(`${who}: its veth is back`);
      else if (Date.now() - store.allocatedAt(l.ip) < LEAK_GRACE_MS) out.kept.push(`${who}: allocated less than ${LEAK_GRACE_MS / 1000} s ago (an ADD may be wiring it)`);
      else out.freed.push(...release(store, l).map((ip) => `${ip} (container ${l.containerId} ${l.ifname})`));
    }
  });
  return out;
}

const attachmentOf = (env: CniEnv): Attachment => ({ containerId: env.containerId, ifname: env.ifname });

// ---- ADD ----

async function add(env: CniEnv, conf: Record<string, unknown>): Promise<Result> {
  const cfg = parseIpamConfig(conf, env.args);
  const requested = assignRequested(cfg.rangeSets, cfg.requested);
  const dns = cfg.resolvConf === undefined ? {} : readResolvConf(cfg.resolvConf);
  const store = Store.forNetwork(cfg.dataDir, cfg.name);
  const a = attachmentOf(env);

  // The address files are written before taking the lock, to keep the critical section short.
  const tmps: string[] = [];
  try {
    for (let s = 0; s < cfg.rangeSets.length; s++) tmps.push(store.prepare(a));
    crashPoint('vnet-ipam: temp address files written, the lock not taken');
    const picks = await withLock(store.dir, (lock) => allocate(store, cfg.rangeSets, requested, a, tmps, lock), {
      createDir: () => store.ensureDir(),
    });
    return { interfaces: [], ips: ipsOf(picks), routes: cfg.routes, dns };
  } finally {
    for (const t of tmps) {
      try {
        store.unlinkQuiet(t);
      } catch {
        // A leftover temp file is harmless; the next ADD, DEL or GC sweeps it (see store.ts).
      }
    }
  }
}

const ipsOf = (picks: Assigned[]): Result['ips'] =>
  picks.map((p) => ({
    address: formatCidr(p.range.family, parseIp(p.ip)!.value, p.range.prefix),
    gateway: formatValue(p.range.family, p.range.gateway),
  }));

/** resolv.conf as host-local reads it: nameserver, domain, search and options lines. */
function parseResolvConf(text: string): DNS {
  const dns: DNS = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const [key, ...values] = line.split(/\s+/);
    if (values.length === 0) continue;
    switch (key) {
      case 'nameserver':
        (dns.nameservers ??= []).push(values[0]!);
        break;
      case 'domain':
        dns.domain = values[0]!;
        break;
      case 'search':
        (dns.search ??= []).push(...values);
        break;
      case 'options':
        (dns.options ??= []).push(...values);
        break;
    }
  }
  return dns;
}

function readResolvConf(path: string): DNS {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CniError(Code.invalidConfig, `ipam.resolvConf: cannot read ${path}: ${(err as Error).message}`, '', { cause: err });
  }
}

// ---- DEL ----

async function del(env: CniEnv, conf: Record<string, unknown>): Promise<void> {
  const { dataDir, name } = parseIpamLocation(conf);
  const store = Store.forNetwork(dataDir, name);
  if (!store.exists()) return; // nothing was ever allocated on this network
  await withLock(store.dir, () => release(store, attachmentOf(env)));
}

// ---- CHECK ----

function check(env: CniEnv, conf: Record<string, unknown>): void {
  const cfg: IpamConfig = parseIpamConfig(conf);
  const store = Store.forNetwork(cfg.dataDir, cfg.name);
  const a = attachmentOf(env);
  if (conf.prevResult === undefined || conf.prevResult === null) {
    // host-local's CHECK: the attachment holds some address.
    if (store.heldBy(a).length === 0) {
      throw new CniError(Code.checkFailed, `no address is allocated to ${attachmentText(a)} in ${store.dir}`);
    }
    return;
  }
  const prev = parseResult(conf.prevResult, 'prevResult');
  let ours = 0;
  for (const [i, ipc] of prev.ips.entries()) {
    const cidr = parseCidr(ipc.address);
    if (!cidr) throw new CniError(Code.decode, `prevResult.ips[${i}].address: invalid CIDR ${JSON.stringify(ipc.address)}`);
    // Only addresses from our subnets are ours to vouch for.
    if (!cfg.rangeSets.some((set) => subnetFor(set, cidr.ip))) continue;
    ours++;
    const ip = formatIp(cidr.ip);
    const { ok, owner } = holder(store, ip, a);
    if (!ok) {
      throw new CniError(
        Code.checkFailed,
        `address ${ip} of prevResult is not allocated to ${attachmentText(a)}` +
          (owner ? `: it is allocated to ${attachmentText(owner)}` : `: ${store.ipPath(ip)} does not exist`),
      );
    }
  }
  if (ours === 0) {
    throw new CniError(Code.checkFailed, `prevResult holds no address from the ipam ranges of network ${cfg.name}`);
  }
}

// ---- GC ----

async function gc(conf: Record<string, unknown>): Promise<void> {
  const { dataDir, name } = parseIpamLocation(conf);
  const valid = validAttachments(conf);
  const store = Store.forNetwork(dataDir, name);
  if (!store.exists()) return;
  const { errors } = await withLock(store.dir, () => collect(store, valid));
  if (errors.length) {
    throw new CniError(Code.io, `GC of ${store.dir} failed ${errors.length} time(s): ${errors.join('; ')}`, errors.join('\n'));
  }
}

// ---- STATUS ----

function status(conf: Record<string, unknown>): void {
  const cfg = parseIpamConfig(conf);
  const store = Store.forNetwork(cfg.dataDir, cfg.name);
  try {
    store.probeWritable();
  } catch (err) {
    throw new CniError(Code.notAvailable, `vnet-ipam data directory ${store.dir} is not usable: ${(err as Error).message}`, '', {
      cause: err,
    });
  }
}

/** File system failures that escaped as plain errors become CNI I/O errors (code 5). */
function asIoError(err: unknown): unknown {
  if (err instanceof CniError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.syscall === 'string') {
    if (OUT_OF_RESOURCES.has(e.code)) return asCniError(err); // code 11: the node may recover
    return new CniError(Code.io, `vnet-ipam: ${e.message}`, '', { cause: err });
  }
  return err;
}
