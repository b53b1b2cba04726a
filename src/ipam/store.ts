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
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { canonicalIp, parseIp, type IP } from './range.js';

export interface Attachment {
  containerId: string;
  ifname: string;
}

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

const isErrno = (err: unknown, ...codes: string[]) =>
  typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');

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

async function writeSynced(path: string, data: string, flag = 'wx'): Promise<void> {
  const fh = await fs.open(path, flag, 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

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
  async ensureDir(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o755 });
    await fs.writeFile(join(this.dir, LOCK_FILE), '', { flag: 'a', mode: 0o750 });
  }

  async exists(): Promise<boolean> {
    try {
      await fs.stat(this.dir);
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
  async prepare(a: Attachment): Promise<string> {
    const path = join(this.dir, tmpName());
    try {
      await writeSynced(path, ownerText(a));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      await this.ensureDir();
      await writeSynced(path, ownerText(a));
    }
    return path;
  }

  /** Links a prepared temp file to the address's name: false if the address is taken. */
  async claim(tmp: string, ip: string): Promise<boolean> {
    try {
      await fs.link(tmp, this.ipPath(ip));
      return true;
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false;
      throw err;
    }
  }

  /** Whether an address file exists (a cheap probe; `claim` is the authority). */
  async taken(ip: string): Promise<boolean> {
    try {
      await fs.lstat(this.ipPath(ip));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** Who holds an address, or undefined if nobody does (or the file says nothing). */
  async owner(ip: string): Promise<Attachment | undefined> {
    try {
      return parseOwner(await fs.readFile(this.ipPath(ip), 'utf8'));
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'EISDIR')) return undefined;
      throw err;
    }
  }

  /** Removes an address file if (and only if) this attachment holds it. */
  async release(ip: string, a: Attachment): Promise<boolean> {
    const owner = await this.owner(ip);
    if (!owner || !sameAttachment(owner, a)) return false;
    await this.unlinkQuiet(this.ipPath(ip));
    return true;
  }

  async unlinkQuiet(path: string): Promise<void> {
    try {
      await fs.unlink(path);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }

  // ---- round-robin cursor ----

  async lastReserved(set: number): Promise<IP | undefined> {
    try {
      return parseIp((await fs.readFile(join(this.dir, LAST_RESERVED + set), 'utf8')).trim());
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** Atomically replaces last_reserved_ip.<set>. Only a hint for round-robin: not fsynced. */
  async setLastReserved(set: number, ip: string): Promise<void> {
    const tmp = join(this.dir, tmpName());
    await fs.writeFile(tmp, ip, { flag: 'wx', mode: 0o644 });
    try {
      await fs.rename(tmp, join(this.dir, LAST_RESERVED + set));
    } catch (err) {
      await this.unlinkQuiet(tmp);
      throw err;
    }
  }

  // ---- the index ----

  indexPath(a: Attachment): string {
    return join(this.indexDir, indexName(a));
  }

  async indexed(): Promise<boolean> {
    try {
      return (await fs.stat(this.indexDir)).isDirectory();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** The addresses an attachment's index names (unverified), or undefined without an index entry. */
  async readIndex(a: Attachment): Promise<string[] | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.indexPath(a), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    const entry = parseIndex(text);
    return entry && sameAttachment({ containerId: entry.containerID, ifname: entry.ifname }, a) ? entry.ips : [];
  }

  /** Writes an attachment's index entry atomically (temp, fsync, rename). */
  async writeIndex(a: Attachment, ips: string[], dir = this.indexDir): Promise<void> {
    const entry: IndexEntry = { containerID: a.containerId, ifname: a.ifname, ips };
    const tmp = join(dir, tmpName());
    await writeSynced(tmp, JSON.stringify(entry) + '\n');
    try {
      await fs.rename(tmp, join(dir, indexName(a)));
    } catch (err) {
      await this.unlinkQuiet(tmp);
      throw err;
    }
  }

  async removeIndex(a: Attachment): Promise<void> {
    await this.unlinkQuiet(this.indexPath(a));
  }

  /** Every index entry, with its file name. Unreadable or foreign entries come back as undefined. */
  async listIndex(): Promise<{ name: string; entry: IndexEntry | undefined }[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.indexDir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const out: { name: string; entry: IndexEntry | undefined }[] = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      try {
        out.push({ name, entry: parseIndex(await fs.readFile(join(this.indexDir, name), 'utf8')) });
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    return out;
  }

  /**
   * The addresses an attachment really holds: its index entries whose address file names it.
   * Without an index entry: nothing if the directory is indexed, else (host-local's data, never
   * indexed, and read without the lock) a scan. `indexed`: the caller knows it is.
   */
  async heldBy(a: Attachment, indexed = false): Promise<string[]> {
    const listed = await this.readIndex(a);
    if (listed === undefined) {
      if (indexed || (await this.indexed())) return [];
      return (await this.list()).filter((x) => sameAttachment(x, a)).map((x) => x.ip);
    }
    const held: string[] = [];
    for (const ip of listed) {
      const owner = await this.owner(ip);
      if (owner && sameAttachment(owner, a)) held.push(ip);
    }
    return held;
  }

  /**
   * Makes sure every address file is indexed (see the header): indexes a host-local directory
   * once. Call under the lock.
   */
  async ensureIndexed(): Promise<void> {
    if (await this.indexed()) return;
    const byOwner = new Map<string, { a: Attachment; ips: string[] }>();
    for (const x of await this.list()) {
      const key = indexName(x);
      const e = byOwner.get(key) ?? { a: { containerId: x.containerId, ifname: x.ifname }, ips: [] };
      e.ips.push(x.ip);
      byOwner.set(key, e);
    }
    const tmpDir = join(this.dir, tmpName());
    await fs.mkdir(tmpDir, { mode: 0o755 });
    try {
      for (const { a, ips } of byOwner.values()) await this.writeIndex(a, ips, tmpDir);
      await fs.rename(tmpDir, this.indexDir);
    } catch (err) {
      await fs.rm(tmpDir, { recursive: true, force: true });
      // Someone indexed it meanwhile (possible only if the lock was broken): theirs is as good.
      if (isErrno(err, 'ENOTEMPTY', 'EEXIST') && (await this.indexed())) return;
      throw err;
    }
  }

  // ---- scanning ----

  /** Names of the directory's entries that are addresses (host-local's allocation files). */
  async addressNames(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    return names.filter((n) => !n.startsWith('.') && canonicalIp(n) !== undefined);
  }

  /** Every allocation in the directory (a scan; for GC, `vnet state` and the one-time indexing). */
  async list(): Promise<Allocation[]> {
    const out: Allocation[] = [];
    for (const ip of await this.addressNames()) {
      const owner = await this.owner(ip);
      if (owner) out.push({ ip, ...owner });
    }
    return out;
  }

  /** Removes a temp file or a temp directory (an interrupted indexing). */
  async removeTemp(path: string): Promise<void> {
    await fs.rm(path, { recursive: true, force: true });
  }

  /** Temp files older than `ageMs` (left by a crash), for GC to sweep. */
  async staleTemps(ageMs: number): Promise<string[]> {
    const out: string[] = [];
    for (const dir of [this.dir, this.indexDir]) {
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        throw err;
      }
      for (const n of names.filter((x) => x.startsWith(TMP_PREFIX))) {
        const path = join(dir, n);
        try {
          if ((await fs.lstat(path)).mtimeMs < Date.now() - ageMs) out.push(path);
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err;
        }
      }
    }
    return out;
  }

  /** Checks that the directory can be created and written: creates it and a probe file. */
  async probeWritable(): Promise<void> {
    await this.ensureDir();
    const probe = join(this.dir, tmpName());
    await fs.writeFile(probe, '', { flag: 'wx' });
    await fs.unlink(probe);
    await fs.access(this.dir, constants.R_OK | constants.W_OK | constants.X_OK);
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
