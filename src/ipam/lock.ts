// The per-network lock around every read-modify-write of the store: an atomic mkdir of
// `<network dir>/.lock`, holding one marker file that names its holder: pid, the process's start
// time (/proc/<pid>/stat, in clock ticks since boot) and its pid namespace.
//
// - A lock is stale only when its holder is dead: no process with that pid, or one that started
//   at another time (the pid was reused). That is checked at once, so a holder SIGKILLed mid-ADD
//   blocks nobody, and a live holder keeps the lock however long it works (a GC freeing 65,000
//   addresses, a slow disk): no refresh, no timer. A holder in another pid namespace cannot be
//   looked up; its lock is stale once its marker is LOCK_FOREIGN_STALE_MS old. A lock directory
//   with no marker (its maker died between mkdir and marker) is stale after LOCK_STALE_MS.
// - A burst of concurrent ADDs (100 processes) must get through without timeouts and without
//   burning the CPU the holder needs. A critical section is short, so waiters poll: a delay of
//   5 ms growing by 1.5× to at most 50 ms, each randomised to 0.5-1.5× so waiters spread out,
//   until a 30 s deadline (CNI error 11, "try again later"). Waking every waiter on each release
//   (a directory watch) starves the holder instead.
// - A lost lock (someone removed our marker while we held it) is surfaced as a CniError from
//   `assertHeld()` and when the critical section ends. Claiming an address is an exclusive link()
//   anyway: no address is handed out twice even then; the lock guards the cursor and the index.
//
// Nothing under the data directory is trusted (see safefs.ts): a `.lock` that is a symbolic link
// or not a directory, or that holds a name other than a marker's, is refused at once, naming it
// (CNI error 5), rather than waited on or taken: whoever made it is not judged by these rules. A
// marker is only parsed, never followed. The caller checks the network directory itself.
import { closeSync, constants, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, Code } from '../errors.js';
import { isErrno } from '../fsutil.js';
import { randomHex } from '../hash.js';
import { makeDir, UnsafePath } from './safefs.js';

export const LOCK_DIR = '.lock';
/** A lock directory with no marker yet is stale past this: its maker died between mkdir and marker. */
export const LOCK_STALE_MS = 2000;
/** A holder in another pid namespace cannot be checked: its lock is stale past this. */
const LOCK_FOREIGN_STALE_MS = 60_000;
const LOCK_TIMEOUT_MS = 30_000;
const RETRY_MIN_MS = 5;
const RETRY_MAX_MS = 50;
const RETRY_FACTOR = 1.5;

export interface HeldLock {
  /** Throws CniError if the lock was lost (taken over) since it was taken. */
  assertHeld(): void;
}

interface LockOptions {
  timeoutMs?: number;
  /** Called when the directory to lock does not exist; should create it. */
  createDir?: () => void | Promise<void>;
}

/** Runs `fn` holding the lock of `dir`. */
export async function withLock<T>(dir: string, fn: (lock: HeldLock) => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = join(dir, LOCK_DIR);
  const marker = join(lock, `${holderName()}.${randomHex(6)}`);
  await acquire(dir, lock, marker, opts);
  let lost: string | undefined;
  const fail = () => {
    if (lost) throw new CniError(Code.io, `lost the lock on ${dir} while holding it (${lost}); another process may have changed the allocations meanwhile`);
  };
  const held: HeldLock = {
    assertHeld() {
      try {
        lstatSync(marker);
      } catch (err) {
        lost ??= `its marker ${marker} is gone: ${(err as Error).message}`;
      }
      fail();
    },
  };
  let result: T;
  try {
    result = await fn(held);
  } finally {
    try {
      unlinkSync(marker);
      rmdirSync(lock);
    } catch (err) {
      // Our marker gone means someone took the lock; anything else leaves a lock whose holder is dead.
      if (isErrno(err, 'ENOENT')) lost ??= `its marker ${marker} is gone`;
    }
  }
  fail();
  return result;
}

/**
 * This process as a marker names it: `<pid>.<start time>.<pid namespace>`. Not cached: the
 * this-cpu build runs a lock while it makes its snapshot, and a cached name would be the builder's.
 */
function holderName(): string {
  return `${process.pid}.${startTime(process.pid) ?? 0}.${pidNamespace('self') ?? 0}`;
}

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined if there is none. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function pidNamespace(pid: 'self'): string | undefined {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/pid`))?.[1];
  } catch {
    return undefined;
  }
}

async function acquire(dir: string, lock: string, marker: string, opts: LockOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? LOCK_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let created = false;
  let delay = RETRY_MIN_MS;
  for (;;) {
    try {
      makeDir(lock);
      closeSync(openSync(marker, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
      return;
    } catch (err) {
      if (isErrno(err, 'ENOENT') && opts.createDir && !created) {
        created = true;
        await opts.createDir();
        continue;
      }
      // Between our mkdir and our marker someone judged the lock stale (or, a bug): start over.
      if (isErrno(err, 'ENOENT')) continue;
      if (!isErrno(err, 'EEXIST')) throw new CniError(Code.io, `cannot lock ${dir}: ${(err as Error).message}`);
    }
    if (takeOverIfStale(lock)) continue;
    if (Date.now() >= deadline) {
      throw new CniError(Code.tryAgain, `timed out after ${timeoutMs / 1000}s waiting for the lock ${lock}; try again later`);
    }
    await sleep(Math.min(delay / 2 + Math.random() * delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * RETRY_FACTOR, RETRY_MAX_MS);
  }
}

/** Removes the lock if its holder is dead; whether it was (or it is gone). Refuses a link, a file, or a name that is no marker. */
function takeOverIfStale(lock: string): boolean {
  let st;
  let names: string[];
  try {
    st = lstatSync(lock);
    if (st.isSymbolicLink()) throw new UnsafePath(lock, 'is a symbolic link, not a lock directory');
    if (!st.isDirectory()) throw new UnsafePath(lock, 'is not a directory, so not a lock');
    names = readdirSync(lock);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return true; // released meanwhile
    throw err;
  }
  const stranger = names.find((name) => !MARKER.test(name));
  if (stranger !== undefined) throw new UnsafePath(join(lock, stranger), 'is not a lock marker (<pid>.<start time>.<pid namespace>.<hex>)');
  if (!names.every((name) => holderIsGone(join(lock, name), name))) return false;
  if (names.length === 0 && Date.now() - st.mtimeMs <= LOCK_STALE_MS) return false;
  try {
    for (const f of names) unlinkSync(join(lock, f));
    rmdirSync(lock);
  } catch (err) {
    // Someone else took it over, or a new holder came: either way, try again. Anything else (a
    // marker that is a directory, say) would fail the same way on every retry, with no sleep between.
    if (!isErrno(err, 'ENOENT', 'ENOTEMPTY')) throw new CniError(Code.io, `cannot clear the stale lock ${lock}: ${(err as Error).message}`);
  }
  return true;
}

const MARKER = /^(\d+)\.(\d+)\.(\d+)\.[0-9a-f]+$/;

/** Whether the holder a marker names is dead (see the header); judged by age when it cannot be looked up. */
function holderIsGone(path: string, name: string): boolean {
  const [, pid, start, ns] = MARKER.exec(name)!;
  if (ns !== (pidNamespace('self') ?? '0')) {
    try {
      return Date.now() - lstatSync(path).mtimeMs > LOCK_FOREIGN_STALE_MS;
    } catch {
      return true; // removed meanwhile
    }
  }
  const started = startTime(Number(pid));
  return started === undefined || started !== start;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
