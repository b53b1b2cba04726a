// The on-disk store of one network: `<dataDir>/<network>/`, in host-local's format.
//
//   10.220.2.11            one file per allocated address, named by the address (IPv6 in Go's
//   fd00::b                canonical form), holding "<containerID>\r\n<ifname>", no newline
//   last_reserved_ip.0     the last address handed out from range set 0 (round-robin cursor)
//   lock                   host-local's flock file (created for fidelity; we lock with .lock/)
//
// and our additions, all dot-names that host-local-style readers and GC skip:
//
//   .lock/                 proper-lockfile's lock (a directory, see lock.ts)
//   .by-container/<containerID>:<ifname>
//                          the index: JSON {containerID, ifname, ips} naming the addresses an
//                          attachment holds (or is about to), so DEL never scans the directory
//   .tmp-*                 files being written; renamed or linked into place, never read
//
// Crash safety. An address file is written under a temp name, fsynced, then link()ed to its
// final name: link() fails with EEXIST when the name is taken, which makes it the exclusive
// create, and a reader never sees a half-written address file. The index is written (temp +
// rename) *before* the address files it names and removed *after* them, so every address file
// is covered by its owner's index at all times; an index may name more than the attachment holds
// (a crash between the two steps) and every reader checks the address file's owner before
// trusting an entry. We fsync files, not directories: the order matters against a killed
// process, and after a power loss every container is gone anyway.
//
// Data written by the real host-local has no index. The first locked operation that finds no
// `.by-container/` directory indexes whatever is there (one scan, once per network) and then
// creates the directory, atomically, by renaming a fully written temp directory into place. From
// then on, the existence of `.by-container/` means "every address file here is indexed", and a
// DEL without an index entry knows, without scanning, that there is nothing to release. Running
// the real host-local on the same directory afterwards is not supported (its flock does not
// exclude our lock either).
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Attachment } from '../config/attachments.js';
import { isErrno, mkdirp } from '../fsutil.js';
import { canonicalIp, parseIp, type IP } from './range.js';

export type { Attachment };

export interface Allocation extends Attachment {
  ip: string;
}

interface IndexEntry {
  containerID: string;
  ifname: string;
  ips: string[];
}

export const INDEX_DIR = '.by-container';
export const LOCK_FILE = 'lock';
export const LAST_RESERVED = 'last_reserved_ip.';
const TMP_PREFIX = '.tmp-';

export const sameAttachment = (a: Attachment, b: Attachment) => a.containerId === b.containerId && a.ifname === b.ifname;

/** The content of an address file, as host-local writes it. */
export const ownerText = (a: Attachment) => `${a.containerId}\r\n${a.ifname}`;

/** Parses an address file. host-local trims it; very old host-local wrote the container ID only. */
export function parseOwner(text: string): Attachment | undefined {
  const t = text.trim();
  if (!t) return undefined;
  const [containerId = '', ifname = ''] = t.split('\r\n');
  return { containerId: containerId.trim(), ifname: ifname.trim() };
}

/** The index file name of an attachment. Container IDs cannot hold ':', so it is unambiguous. */
export function indexName(a: Attachment): string {
  const name = `${a.containerId}:${a.ifname}`;
  // Keep within NAME_MAX (255 bytes); the content says who it is anyway.
  if (Buffer.byteLength(name) <= 200) return name;
  return `~${createHash('sha256').update(name).digest('hex')}`;
}

function tmpName(): string {
  return `${TMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Reads a file, or undefined if it does not exist (or, with `alsoDir`, is a directory). */
function readIfExists(path: string, alsoDir = false): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || (alsoDir && isErrno(err, 'EISDIR'))) return undefined;
    throw err;
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/** Creates `path` (it must not exist), writes `data` and fsyncs it; removes it again on failure. */
function writeSynced(path: string, data: string): void {
  const fd = openSync(path, 'wx', 0o644);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkQuiet(path);
    throw err;
  }
  closeSync(fd);
}


/** Writes a temp file in `dir` (fsynced if `sync`) and renames it to `name`: readers see the old or the new content. */
function replaceFile(dir: string, name: string, data: string, sync: boolean): void {
  const tmp = join(dir, tmpName());
  if (sync) writeSynced(tmp, data);
  else writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
  try {
    renameSync(tmp, join(dir, name));
  } catch (err) {
    unlinkQuiet(tmp);
    throw err;
  }
}

// The store works with synchronous file system calls. A vnet-ipam process does one thing at a
// time, and each call here is a few microseconds of kernel work: the promise API would add a
// thread-pool round trip (and, on the first call, the start of the pool's threads) to every one.
export class Store {
  readonly indexDir: string;

  constructor(readonly dir: string) {
    this.indexDir = join(dir, INDEX_DIR);
  }

  static forNetwork(dataDir: string, network: string): Store {
    return new Store(join(dataDir, network));
  }

  ipPath(ip: string): string {
    return join(this.dir, ip);
  }

  /** Creates the network directory and host-local's `lock` file if missing. */
  ensureDir(): void {
    mkdirp(this.dir, 0o755);
    writeFileSync(join(this.dir, LOCK_FILE), '', { flag: 'a', mode: 0o750 });
  }

  exists(): boolean {
    try {
      statSync(this.dir);
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
      throw err;
    }
  }

  // ---- address files ----

  /**
   * Writes "<containerID>\r\n<ifname>" to a fresh temp file in the network directory and fsyncs
   * it, ready to be linked into place by `claim`. Needs no lock. Creates the directory if needed.
   */
  prepare(a: Attachment): string {
    const path = join(this.dir, tmpName());
    try {
      writeSynced(path, ownerText(a));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      this.ensureDir();
      writeSynced(path, ownerText(a));
    }
    return path;
  }

  /** Links a prepared temp file to the address's name: false if the address is taken. */
  claim(tmp: string, ip: string): boolean {
    try {
      linkSync(tmp, this.ipPath(ip));
      return true;
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false;
      throw err;
    }
  }

  /** Whether an address file exists (a cheap probe; `claim` is the authority). */
  taken(ip: string): boolean {
    return lstatSync(this.ipPath(ip), { throwIfNoEntry: false }) !== undefined;
  }

  /** Who holds an address, or undefined if nobody does (or the file says nothing). */
  owner(ip: string): Attachment | undefined {
    const text = readIfExists(this.ipPath(ip), true);
    return text === undefined ? undefined : parseOwner(text);
  }

  /** Removes an address file if (and only if) this attachment holds it. */
  release(ip: string, a: Attachment): boolean {
    const owner = this.owner(ip);
    if (!owner || !sameAttachment(owner, a)) return false;
    unlinkQuiet(this.ipPath(ip));
    return true;
  }

  unlinkQuiet(path: string): void {
    unlinkQuiet(path);
  }

  // ---- round-robin cursor ----

  lastReserved(set: number): IP | undefined {
    const text = readIfExists(join(this.dir, LAST_RESERVED + set));
    return text === undefined ? undefined : parseIp(text.trim());
  }

  /** Atomically replaces last_reserved_ip.<set>. Only a hint for round-robin: not fsynced. */
  setLastReserved(set: number, ip: string): void {
    replaceFile(this.dir, LAST_RESERVED + set, ip, false);
  }

  // ---- the index ----

  indexPath(a: Attachment): string {
    return join(this.indexDir, indexName(a));
  }

  indexed(): boolean {
    return statSync(this.indexDir, { throwIfNoEntry: false })?.isDirectory() ?? false;
  }

  /** The addresses an attachment's index names (unverified), or undefined without an index entry. */
  readIndex(a: Attachment): string[] | undefined {
    const text = readIfExists(this.indexPath(a));
    if (text === undefined) return undefined;
    const entry = parseIndex(text);
    return entry && sameAttachment({ containerId: entry.containerID, ifname: entry.ifname }, a) ? entry.ips : [];
  }

  /** Writes an attachment's index entry atomically (temp, fsync, rename). */
  writeIndex(a: Attachment, ips: string[], dir = this.indexDir): void {
    const entry: IndexEntry = { containerID: a.containerId, ifname: a.ifname, ips };
    replaceFile(dir, indexName(a), JSON.stringify(entry) + '\n', true);
  }

  removeIndex(a: Attachment): void {
    unlinkQuiet(this.indexPath(a));
  }

  /** Every index entry, with its file name. Unreadable or foreign entries come back as undefined. */
  listIndex(): { name: string; entry: IndexEntry | undefined }[] {
    const out: { name: string; entry: IndexEntry | undefined }[] = [];
    for (const name of readdirQuiet(this.indexDir)) {
      if (name.startsWith('.')) continue;
      const text = readIfExists(join(this.indexDir, name));
      if (text !== undefined) out.push({ name, entry: parseIndex(text) });
    }
    return out;
  }

  /**
   * The addresses an attachment really holds: its index entries whose address file names it.
   * Without an index entry: nothing if the directory is indexed, else (host-local's data, never
   * indexed, and read without the lock) a scan. `indexed`: the caller knows it is.
   */
  heldBy(a: Attachment, indexed = false): string[] {
    const listed = this.readIndex(a);
    if (listed === undefined) {
      if (indexed || this.indexed()) return [];
      return this.list()
        .filter((x) => sameAttachment(x, a))
        .map((x) => x.ip);
    }
    return listed.filter((ip) => {
      const owner = this.owner(ip);
      return owner !== undefined && sameAttachment(owner, a);
    });
  }

  /**
   * Makes sure every address file is indexed (see the header): indexes a host-local directory
   * once. Call under the lock.
   */
  ensureIndexed(): void {
    if (this.indexed()) return;
    const byOwner = new Map<string, { a: Attachment; ips: string[] }>();
    for (const x of this.list()) {
      const key = indexName(x);
      const e = byOwner.get(key) ?? { a: { containerId: x.containerId, ifname: x.ifname }, ips: [] };
      e.ips.push(x.ip);
      byOwner.set(key, e);
    }
    const tmpDir = join(this.dir, tmpName());
    mkdirSync(tmpDir, { mode: 0o755 });
    try {
      for (const { a, ips } of byOwner.values()) this.writeIndex(a, ips, tmpDir);
      renameSync(tmpDir, this.indexDir);
    } catch (err) {
      rmSync(tmpDir, { recursive: true, force: true });
      // Someone indexed it meanwhile (possible only if the lock was broken): theirs is as good.
      if (isErrno(err, 'ENOTEMPTY', 'EEXIST') && this.indexed()) return;
      throw err;
    }
  }

  // ---- scanning ----

  /** Names of the directory's entries that are addresses (host-local's allocation files). */
  addressNames(): string[] {
    return readdirQuiet(this.dir).filter((n) => !n.startsWith('.') && canonicalIp(n) !== undefined);
  }

  /** Every allocation in the directory (a scan; for GC, `vnet state` and the one-time indexing). */
  list(): Allocation[] {
    const out: Allocation[] = [];
    for (const ip of this.addressNames()) {
      const owner = this.owner(ip);
      if (owner) out.push({ ip, ...owner });
    }
    return out;
  }

  /** Removes a temp file or a temp directory (an interrupted indexing). */
  removeTemp(path: string): void {
    rmSync(path, { recursive: true, force: true });
  }

  /** Temp files older than `ageMs` (left by a crash), for GC to sweep. */
  staleTemps(ageMs: number): string[] {
    const out: string[] = [];
    for (const dir of [this.dir, this.indexDir]) {
      for (const n of readdirQuiet(dir)) {
        if (!n.startsWith(TMP_PREFIX)) continue;
        const path = join(dir, n);
        const st = lstatSync(path, { throwIfNoEntry: false });
        if (st && st.mtimeMs < Date.now() - ageMs) out.push(path);
      }
    }
    return out;
  }

  /** Checks that the directory can be created and written: creates it and a probe file. */
  probeWritable(): void {
    this.ensureDir();
    const probe = join(this.dir, tmpName());
    writeFileSync(probe, '', { flag: 'wx' });
    unlinkSync(probe);
    accessSync(this.dir, constants.R_OK | constants.W_OK | constants.X_OK);
  }
}

/** A directory's names, or none if it does not exist. */
function readdirQuiet(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

function parseIndex(text: string): IndexEntry | undefined {
  try {
    const v = JSON.parse(text) as Partial<IndexEntry>;
    if (typeof v.containerID !== 'string' || typeof v.ifname !== 'string' || !Array.isArray(v.ips)) return undefined;
    return { containerID: v.containerID, ifname: v.ifname, ips: v.ips.filter((ip): ip is string => typeof ip === 'string' && canonicalIp(ip) === ip) };
  } catch {
    return undefined;
  }
}
