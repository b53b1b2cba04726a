// The on-disk store of one network, `<dataDir>/<network>/`: host-local's files, so that its data
// and readers keep working, plus our index (DEL never scans) and our temps in `.tmp/` (a crash
// never leaves a half-written address). The format, the write order that makes a SIGKILL at any
// step safe, and the safety rules (nothing under dataDir is trusted or followed) are in
// src/README.md, "The IPAM store on disk"; keep it in step with this file.
import { accessSync, constants, linkSync, lstatSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Attachment } from '../config/attachments.js';
import { isErrno, mkdirp } from '../fsutil.js';
import { randomHex, sha256Hex } from '../hash.js';
import { canonicalIp, parseIp, type IP } from '../net/address.js';
import { createFile, ensureDirectory, isDirectory, isRegularFile, makeDir, readFile, removeQuietly, UnsafePath } from './safefs.js';

export type { Attachment };

interface Allocation extends Attachment {
  ip: string;
}

interface IndexEntry {
  containerID: string;
  ifname: string;
  ips: string[];
}

const INDEX_DIR = '.by-container';
const TMP_DIR = '.tmp';
const LOCK_FILE = 'lock';
const LAST_RESERVED = 'last_reserved_ip.';
/** The boot id of the boot whose pods hold this directory's addresses. */
const BOOT_FILE = '.boot';
/** A temp older than this is left by a crash, whoever wrote it. */
const STALE_TEMP_MS = 10 * 60_000;

export const sameAttachment = (a: Attachment, b: Attachment) => a.containerId === b.containerId && a.ifname === b.ifname;

/** The content of an address file, as host-local writes it. */
const ownerText = (a: Attachment) => `${a.containerId}\r\n${a.ifname}`;

/** Parses an address file. host-local trims it; very old host-local wrote the container ID only. */
function parseOwner(text: string): Attachment | undefined {
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
  return `~${sha256Hex(name)}`;
}

/** A temp name in `.tmp/`: the writer's pid, so a sweep can tell a dead writer's temps. */
const tmpName = () => `${process.pid}-${randomHex(6)}`;

/** Whether the writer of a temp named `<pid>-…` is gone; false if the name holds no pid. */
function writerDead(name: string): boolean {
  const m = /^([1-9][0-9]{0,6})-/.exec(name);
  const pid = m ? Number(m[1]) : 0;
  if (!pid || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return isErrno(err, 'ESRCH'); // EPERM: alive, someone else's
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

// The store works with synchronous file system calls. A vnet-ipam process does one thing at a
// time, and each call here is a short piece of kernel work: the promise API would add a
// thread-pool round trip (and, on the first call, the start of the pool's threads) to every one.
export class Store {
  readonly indexDir: string;
  readonly tmpDir: string;
  // What this Store has checked (lstat) already: a Store lives for one call.
  private dirChecked = false;
  private indexChecked = false;
  private tmpChecked = false;
  private laidOut = false;

  constructor(readonly dir: string) {
    this.indexDir = join(dir, INDEX_DIR);
    this.tmpDir = join(dir, TMP_DIR);
  }

  static forNetwork(dataDir: string, network: string): Store {
    return new Store(join(dataDir, network));
  }

  ipPath(ip: string): string {
    return join(this.dir, ip);
  }

  /**
   * Whether the network directory exists; throws UnsafePath if it is a link or not a directory.
   * (The data directory above it is the admin's, and resolved normally.)
   */
  exists(): boolean {
    if (this.dirChecked) return true;
    try {
      this.dirChecked = isDirectory(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOTDIR')) return false; // the data directory is a file: nothing here
      throw err;
    }
    return this.dirChecked;
  }

  /**
   * Creates the network directory (0700), host-local's `lock` file (0600) and `.tmp/` (0700) if
   * missing, and checks them (no links) if not.
   */
  ensureDir(): void {
    if (this.laidOut) return;
    if (!this.exists()) {
      mkdirp(dirname(this.dir), 0o755);
      ensureDirectory(this.dir);
      this.dirChecked = true;
    }
    const lock = join(this.dir, LOCK_FILE);
    if (!isRegularFile(lock)) {
      try {
        createFile(lock, '');
      } catch (err) {
        if (!(isErrno(err, 'EEXIST') && isRegularFile(lock))) throw err;
      }
    }
    this.ensureTmpDir();
    this.laidOut = true;
  }

  private ensureTmpDir(): void {
    if (this.tmpChecked) return;
    ensureDirectory(this.tmpDir);
    this.tmpChecked = true;
  }

  // ---- address files ----

  /**
   * Writes "<containerID>\r\n<ifname>" to a fresh temp file in `.tmp/`, ready to be linked into
   * place by `claim`. Needs no lock. Creates (or checks) the directory first.
   */
  prepare(a: Attachment): string {
    this.ensureDir();
    const path = join(this.tmpDir, tmpName());
    createFile(path, ownerText(a));
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

  /** Whether an address file exists (a cheap probe; `claim` is the authority). A link counts. */
  taken(ip: string): boolean {
    return lstatSync(this.ipPath(ip), { throwIfNoEntry: false }) !== undefined;
  }

  /**
   * Who holds an address, or undefined if nobody does (or the file says nothing; a directory
   * holds nothing either). Throws UnsafePath if the address file is a link or a special file.
   */
  owner(ip: string): Attachment | undefined {
    if (!this.exists()) return undefined;
    const text = readFile(this.ipPath(ip), true);
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
    if (!this.exists()) return undefined;
    const text = readFile(join(this.dir, LAST_RESERVED + set));
    return text === undefined ? undefined : parseIp(text.trim());
  }

  /** Atomically replaces last_reserved_ip.<set>, only a hint for round-robin. */
  setLastReserved(set: number, ip: string): void {
    this.replaceFile(this.dir, LAST_RESERVED + set, ip);
  }

  /**
   * Writes a temp file in `.tmp/` and renames it to `dir/name`: readers see
   * the old or the new content. rename() replaces a link planted at `name`, never its target.
   */
  private replaceFile(dir: string, name: string, data: string): void {
    this.ensureTmpDir();
    const tmp = join(this.tmpDir, tmpName());
    createFile(tmp, data);
    try {
      renameSync(tmp, join(dir, name));
    } catch (err) {
      removeQuietly(tmp);
      throw err;
    }
  }

  /** When an address was handed out (its file's mtime, read without following a link), in ms. */
  allocatedAt(ip: string): number {
    return lstatSync(this.ipPath(ip)).mtimeMs;
  }

  // ---- the boot the allocations belong to ----

  /** The boot id stamped in `.boot` (see allocator.ts's releasePreviousBoot), or undefined. */
  bootStamp(): string | undefined {
    return readFile(join(this.dir, BOOT_FILE))?.trim();
  }

  setBootStamp(id: string): void {
    this.replaceFile(this.dir, BOOT_FILE, `${id}\n`);
  }

  // ---- the index ----

  indexPath(a: Attachment): string {
    return join(this.indexDir, indexName(a));
  }

  /** Whether `.by-container/` exists; throws UnsafePath if it (or the network directory) is a link or not a directory. */
  indexed(): boolean {
    if (this.indexChecked) return true;
    this.indexChecked = this.exists() && isDirectory(this.indexDir);
    return this.indexChecked;
  }

  /** The addresses an attachment's index names (unverified), or undefined without an index entry. */
  readIndex(a: Attachment): string[] | undefined {
    if (!this.indexed()) return undefined;
    const text = readFile(this.indexPath(a));
    if (text === undefined) return undefined;
    const entry = parseIndex(text);
    return entry && sameAttachment({ containerId: entry.containerID, ifname: entry.ifname }, a) ? entry.ips : [];
  }

  /** Writes an attachment's index entry atomically (temp, rename). */
  writeIndex(a: Attachment, ips: string[]): void {
    this.replaceFile(this.indexDir, indexName(a), indexText(a, ips));
  }

  removeIndex(a: Attachment): void {
    unlinkQuiet(this.indexPath(a));
  }

  /** Every index entry, with its file name. Unreadable or foreign entries (links too) come back as undefined. */
  listIndex(): { name: string; entry: IndexEntry | undefined }[] {
    const out: { name: string; entry: IndexEntry | undefined }[] = [];
    if (!this.indexed()) return out;
    for (const name of readdirQuiet(this.indexDir)) {
      if (name.startsWith('.')) continue;
      let text: string | undefined;
      try {
        text = readFile(join(this.indexDir, name));
      } catch (err) {
        if (!(err instanceof UnsafePath)) throw err;
        out.push({ name, entry: undefined });
        continue;
      }
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
   * Makes sure every address file is indexed: indexes a host-local directory once, then makes
   * `.by-container/` (see src/README.md). Call under the lock.
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
    this.ensureTmpDir();
    const tmpDir = join(this.tmpDir, tmpName());
    makeDir(tmpDir);
    try {
      // A fresh private directory: its entries need no temp names of their own.
      for (const [name, { a, ips }] of byOwner) createFile(join(tmpDir, name), indexText(a, ips));
      renameSync(tmpDir, this.indexDir);
    } catch (err) {
      rmSync(tmpDir, { recursive: true, force: true });
      // Someone indexed it meanwhile (possible only if the lock was broken): theirs is as good.
      if (isErrno(err, 'ENOTEMPTY', 'EEXIST') && this.indexed()) return;
      throw err;
    }
    this.indexChecked = true;
  }

  // ---- scanning ----

  /** Names of the directory's entries that are addresses (host-local's allocation files). */
  addressNames(): string[] {
    if (!this.exists()) return [];
    return readdirQuiet(this.dir).filter((n) => !n.startsWith('.') && canonicalIp(n) !== undefined);
  }

  /**
   * Every allocation in the directory (a scan; for GC, `vnet state` and the one-time indexing).
   * An address file that is a link (or not a regular file) is skipped, never read through.
   */
  list(): Allocation[] {
    const out: Allocation[] = [];
    for (const ip of this.addressNames()) {
      let owner: Attachment | undefined;
      try {
        owner = this.owner(ip);
      } catch (err) {
        if (err instanceof UnsafePath) continue;
        throw err;
      }
      if (owner) out.push({ ip, ...owner });
    }
    return out;
  }

  // ---- temp files ----

  /**
   * Removes the temps in `.tmp/` whose writer is dead or that are older than STALE_TEMP_MS.
   * Cheap: `.tmp/` holds only temps in flight. Call under the lock. Best effort, except that a
   * `.tmp` that is a link or not a directory is an error.
   */
  sweepTemps(): string[] {
    const swept: string[] = [];
    if (!this.exists() || !isDirectory(this.tmpDir)) return swept;
    this.tmpChecked = true;
    const old = Date.now() - STALE_TEMP_MS;
    let names: string[] = [];
    try {
      names = readdirSync(this.tmpDir);
    } catch {
      return swept;
    }
    for (const name of names) {
      const path = join(this.tmpDir, name);
      try {
        const st = lstatSync(path, { throwIfNoEntry: false });
        if (!st || !(writerDead(name) || st.mtimeMs < old)) continue;
        rmSync(path, { recursive: true, force: true }); // never follows a link
        swept.push(path);
      } catch {
        // Left for the next sweep.
      }
    }
    return swept;
  }

  /** Checks that the directory can be created and written: creates it and a probe file in `.tmp/`. */
  probeWritable(): void {
    this.ensureDir();
    const probe = join(this.tmpDir, tmpName());
    createFile(probe, '');
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

const indexText = (a: Attachment, ips: string[]) => JSON.stringify({ containerID: a.containerId, ifname: a.ifname, ips } satisfies IndexEntry) + '\n';

function parseIndex(text: string): IndexEntry | undefined {
  try {
    const v = JSON.parse(text) as Partial<IndexEntry>;
    if (typeof v.containerID !== 'string' || typeof v.ifname !== 'string' || !Array.isArray(v.ips)) return undefined;
    return { containerID: v.containerID, ifname: v.ifname, ips: v.ips.filter((ip): ip is string => typeof ip === 'string' && canonicalIp(ip) === ip) };
  } catch {
    return undefined;
  }
}
