// Allocation rules on top of the store: which address each range set hands out, what a release
// removes, what GC frees. Everything here runs under the network's lock (lock.ts), except
// `assignRequested`, which only looks at the config.
import { CniError, Code } from '../errors.js';
import { readFileSync } from 'node:fs';
import { crashPoint } from '../crash.js';
import { log } from '../log.js';
import type { RequestedIp } from './config.js';
import type { HeldLock } from './lock.js';
import { formatValue } from '../net/address.js';
import {
  candidates,
  rangeFor,
  rangeSetString,
  rangeString,
  reservedReason,
  subnetFor,
  type Range,
  type RangeSet,
} from './range.js';
import { indexName, sameAttachment, type Attachment, type Store } from './store.js';

/** One address handed out: from range set `set`, inside `range`. */
export interface Assigned {
  set: number;
  range: Range;
  /** Canonical text, which is also the file name. */
  ip: string;
}

export const attachmentText = (a: Attachment) => `container ${a.containerId} (ifname ${a.ifname})`;

const holderText = (owner: Attachment | undefined) => (owner ? attachmentText(owner) : 'another attachment');

/**
 * Places each requested address in the range set whose ranges hold it. Throws invalidConfig for
 * an address outside every range, a reserved one (network, broadcast, gateway) and two requested
 * addresses for one range set (each set gives one address).
 */
export function assignRequested(sets: RangeSet[], requested: RequestedIp[]): (RequestedIp & { range: Range })[] {
  const bySet: (RequestedIp & { range: Range })[] = [];
  for (const req of requested) {
    const text = `requested IP ${formatValue(req.ip.family, req.ip.value)} (${req.source})`;
    let found = -1;
    for (let s = 0; s < sets.length && found < 0; s++) {
      const range = rangeFor(sets[s]!, req.ip);
      if (!range) continue;
      found = s;
      const why = reservedReason(sets[s]!, range, req.ip.value);
      if (why) throw new CniError(Code.invalidConfig, `${text} is ${why}`);
      const other = bySet[s];
      if (other) {
        throw new CniError(
          Code.invalidConfig,
          `${text} and requested IP ${formatValue(other.ip.family, other.ip.value)} (${other.source}) are both in range set ${s} (${rangeSetString(sets[s]!)}); a range set gives one address`,
        );
      }
      bySet[s] = { ...req, range };
    }
    if (found < 0) {
      const inSubnet = sets.map((set) => subnetFor(set, req.ip)).find((r) => r !== undefined);
      const where = inSubnet
        ? `is in subnet of ${inSubnet.field} but outside its range ${rangeString(inSubnet)}`
        : `is not in any range (${sets.map(rangeSetString).join('; ')})`;
      throw new CniError(Code.invalidConfig, `${text} ${where}`);
    }
  }
  return bySet;
}

/** The next candidate of the iterator whose address file does not exist yet. */
function nextFree(store: Store, set: number, it: Iterator<{ range: Range; value: bigint }>): Assigned | undefined {
  for (let c = it.next(); !c.done; c = it.next()) {
    const ip = formatValue(c.value.range.family, c.value.value);
    if (!store.taken(ip)) return { set, range: c.value.range, ip };
  }
  return undefined;
}

const exhausted = (sets: RangeSet[], s: number) =>
  new CniError(
    Code.ipamExhausted,
    `no IP addresses available in range set: ${rangeSetString(sets[s]!)}`,
    `failed to allocate for range set ${s} (${sets[s]![0]!.field.replace(/\[0\]$/, '')})`,
  );

/**
 * Allocates one address per range set for an attachment, under the lock; `tmps[s]` is a prepared
 * address file (Store.prepare) for set s. Either every set gets its address and the cursors
 * move, or nothing on disk changes. The order of writes: src/README.md, "The IPAM store on disk".
 */
export function allocate(
  store: Store,
  sets: RangeSet[],
  requested: (RequestedIp & { range: Range })[],
  a: Attachment,
  tmps: string[],
  lock: HeldLock,
): Assigned[] {
  store.sweepTemps();
  store.ensureIndexed();
  releasePreviousBoot(store);
  const held = store.heldBy(a, true);
  if (held.length) {
    throw new CniError(
      Code.alreadyAttached,
      `${attachmentText(a)} already holds ${held.join(', ')}; duplicate allocation is not allowed`,
    );
  }

  // 1. Pick a free address per set, probing with lstat (cheap; link() below is the authority).
  //    The first failure, in set order, is the one reported.
  const iters: (Iterator<{ range: Range; value: bigint }> | undefined)[] = [];
  const picks = sets.map((set, s): Assigned => {
    const req = requested[s];
    if (req) {
      const ip = formatValue(req.ip.family, req.ip.value);
      if (store.taken(ip)) {
        throw new CniError(Code.addressInUse, `requested IP ${ip} is already allocated to ${holderText(store.owner(ip))}`);
      }
      return { set: s, range: req.range, ip };
    }
    const it = candidates(set, store.lastReserved(s));
    const pick = nextFree(store, s, it);
    if (!pick) throw exhausted(sets, s);
    iters[s] = it;
    return pick;
  });

  // 2. The index first, then 3. the address files; undo both on any failure.
  store.writeIndex(a, picks.map((p) => p.ip));
  const claimed: Assigned[] = [];
  try {
    crashPoint('vnet-ipam: the index entry written, no address file yet');
    for (let s = 0; s < sets.length; s++) {
      let pick = picks[s]!;
      while (!store.claim(tmps[s]!, pick.ip)) {
        // Taken between the probe and the link: only by someone not holding our lock.
        const it = iters[s];
        if (!it) {
          throw new CniError(Code.addressInUse, `requested IP ${pick.ip} is already allocated to ${holderText(store.owner(pick.ip))}`);
        }
        const next = nextFree(store, s, it);
        if (!next) throw exhausted(sets, s);
        pick = picks[s] = next;
        store.writeIndex(a, picks.map((p) => p.ip));
      }
      claimed.push(pick);
      crashPoint(`vnet-ipam: address file ${pick.ip} linked into place`);
    }
    // 4. The round-robin cursors, as host-local does, also for requested addresses.
    for (const p of picks) store.setLastReserved(p.set, p.ip);
    lock.assertHeld();
  } catch (err) {
    for (const p of claimed) {
      try {
        store.release(p.ip, a);
      } catch {
        // Best effort: the index still names it, so DEL or GC frees it.
      }
    }
    try {
      store.removeIndex(a);
    } catch {
      // Best effort, as above.
    }
    throw err;
  }
  return picks;
}

/**
 * Releases whatever the attachment holds (DEL), under the lock. Releasing nothing is fine.
 * Returns the addresses released.
 */
export function release(store: Store, a: Attachment): string[] {
  store.sweepTemps();
  store.ensureIndexed();
  const listed = store.readIndex(a);
  if (listed === undefined) return [];
  const released = listed.filter((ip) => store.release(ip, a));
  crashPoint('vnet-ipam: address files removed, the index entry not yet');
  store.removeIndex(a);
  return released;
}

interface GcOutcome {
  freed: string[];
  errors: string[];
}

/** This boot's id (a UUID the kernel makes at boot), read per call: never from a snapshot. */
function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
}

/**
 * No pod outlives a reboot, but files on disk do: host-local's best-known leak. The first ADD
 * of a new boot (the store stamped with another boot's id) releases every allocation of the old
 * one, as GC with no valid attachment would, then stamps this boot. A store with no stamp yet
 * (new, or made by an older vnet-ipam) is stamped and nothing is released: its allocations may be
 * this boot's. Runs under the lock.
 */
function releasePreviousBoot(store: Store): void {
  const boot = bootId();
  const stamped = store.bootStamp();
  if (stamped === boot) return;
  if (stamped !== undefined) {
    const out = collect(store, []);
    log.info(`a new boot since this network's addresses were handed out (boot ${stamped}, now ${boot}): released ${out.freed.length} of the previous boot${out.freed.length ? `: ${out.freed.join(', ')}` : ''}`);
    for (const e of out.errors) log.warn(`releasing the previous boot's addresses: ${e}`);
  }
  store.setBootStamp(boot);
}

/**
 * Frees every allocation whose attachment is not in `valid` (GC), under the lock: address files
 * first, then index entries (the order that keeps every address file indexed), then the temps in
 * `.tmp/` a crash left behind. Files that are not addresses (lock, last_reserved_ip.*, other
 * dot-files) are never touched, nor is an address file that is a link (reported: nothing under
 * dataDir is followed). Goes on after a failure and returns every error.
 */
export function collect(store: Store, valid: Attachment[]): GcOutcome {
  const keep = new Set(valid.map(indexName));
  // Very old host-local wrote only the container ID: such a file is kept if the container is.
  const keepContainers = new Set(valid.map((v) => v.containerId));
  const isValid = (a: Attachment) => (a.ifname === '' ? keepContainers.has(a.containerId) : keep.has(indexName(a)));
  const out: GcOutcome = { freed: [], errors: [] };
  const attempt = (what: string, f: () => void) => {
    try {
      f();
    } catch (err) {
      out.errors.push(`${what}: ${(err as Error).message}`);
    }
  };

  let names: string[] = [];
  attempt(`listing ${store.dir}`, () => {
    names = store.addressNames();
  });
  for (const ip of names) {
    attempt(`freeing ${ip}`, () => {
      const owner = store.owner(ip);
      if (owner && isValid(owner)) return;
      store.unlinkQuiet(store.ipPath(ip));
      out.freed.push(ip);
    });
  }
  let entries: ReturnType<Store['listIndex']> = [];
  attempt(`listing ${store.indexDir}`, () => {
    entries = store.listIndex();
  });
  for (const { name, entry } of entries) {
    const a = entry && { containerId: entry.containerID, ifname: entry.ifname };
    if (a && isValid(a) && indexName(a) === name) continue;
    attempt(`removing index entry ${name}`, () => store.unlinkQuiet(`${store.indexDir}/${name}`));
  }
  attempt(`sweeping ${store.tmpDir}`, () => store.sweepTemps());
  return out;
}

/** Whether an attachment holds an address (CHECK); returns who does if not. */
export function holder(store: Store, ip: string, a: Attachment): { ok: boolean; owner: Attachment | undefined } {
  const owner = store.owner(ip);
  return { ok: !!owner && sameAttachment(owner, a), owner };
}
