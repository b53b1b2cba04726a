// The per-network lock around every read-modify-write of the store: an atomic mkdir of
// `<network dir>/.lock`, holding one marker file named for its holder, whose mtime the holder
// refreshes every second while it holds it.
//
// - A holder SIGKILLed mid-ADD must not block the next ADD for long: a lock not refreshed for
//   LOCK_STALE_MS (2 s) is taken over (its marker and directory removed, then taken as usual).
// - A burst of concurrent ADDs (100 processes) must get through without timeouts and without
//   burning the CPU the holder needs. A critical section takes a few milliseconds, so waiters
//   poll: a delay of 5 ms growing by 1.5× to at most 50 ms, each randomised to 0.5-1.5× so waiters
//   spread out, until a 30 s deadline (CNI error 11, "try again later"). Measured on 2 CPUs with
//   100 simultaneous ADDs: this finishes in ~3 s where waking every waiter on each release (a
//   directory watch) took 8-11 s: 99 processes woken twice per hand-over starve the holder.
// - A lost lock (someone took it over while we held it: our marker is gone) is surfaced as a
//   CniError from `assertHeld()` and when the critical section ends, never thrown from a timer.
//   Claiming an address is an exclusive link() anyway: no address is handed out twice even
//   then; the lock guards the round-robin cursor and the index.
// The takeover of a stale lock has the window every mkdir lock has (proper-lockfile's too): two
// waiters judging the same stale lock at once may both remove it, one of them then a fresh one.
// Its consequence is the lost-lock error above for the first holder, not a double allocation.
//
// Nothing under the data directory is trusted (see store.ts): a `.lock` that is a symbolic link
// or not a directory is refused at once, naming it (CNI error 5), rather than waited on. The
// caller checks the network directory itself (Store.exists / ensureDir).
import { closeSync, constants, lstatSync, lutimesSync, openSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, Code } from '../cni/errors.js';
import { isErrno } from '../fsutil.js';
import { randomHex } from '../hash.js';
import { makeDir, UnsafePath } from './safefs.js';

export const LOCK_DIR = '.lock';
export const LOCK_STALE_MS = 2000;
export const LOCK_UPDATE_MS = 1000;
export const LOCK_TIMEOUT_MS = 30_000;
export const RETRY_MIN_MS = 5;
export const RETRY_MAX_MS = 50;
export const RETRY_FACTOR = 1.5;

export interface HeldLock {
  /** Throws CniError if the lock was lost (taken over) since it was taken. */
  assertHeld(): void;
}

export interface LockOptions {
  timeoutMs?: number;
  /** Called when the directory to lock does not exist; should create it. */
  createDir?: () => void | Promise<void>;
}

/** Runs `fn` holding the lock of `dir`. */
export async function withLock<T>(dir: string, fn: (lock: HeldLock) => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = join(dir, LOCK_DIR);
  const marker = join(lock, `${process.pid}-${randomHex(6)}`);
  await acquire(dir, lock, marker, opts);
  let lost: string | undefined;
  const held: HeldLock = {
    assertHeld() {
      if (lost) throw new CniError(Code.io, `lost the lock on ${dir} while holding it (${lost}); another process may have changed the allocations meanwhile`);
    },
  };
  // Refreshed while held, so that nobody takes it for stale; a missing marker means it was taken
  // over. Only while an asynchronous `fn` waits: a synchronous one holds the lock without a pause,
  // when no timer could fire anyway, and a process's first timer costs ~0.3 ms to set up. (Nor may
  // a timer be made while the build's warm-up runs: scripts/build.mjs refuses that.)
  let refresh: NodeJS.Timeout | undefined;
  let result: T;
  try {
    const r = fn(held);
    if (r instanceof Promise) {
      refresh = setInterval(() => refreshLock(lock, marker, (why) => (lost ??= why)), LOCK_UPDATE_MS);
      refresh.unref();
    }
    result = await r;
  } finally {
    clearInterval(refresh);
    try {
      unlinkSync(marker);
      rmdirSync(lock);
    } catch (err) {
      // Our marker gone means someone took the lock over; anything else leaves a lock that goes stale.
      if (isErrno(err, 'ENOENT')) lost ??= `its marker ${marker} is gone`;
    }
  }
  held.assertHeld();
  return result;
}

function refreshLock(lock: string, marker: string, lose: (why: string) => void): void {
  try {
    lstatSync(marker);
    const now = new Date();
    lutimesSync(lock, now, now);
  } catch (err) {
    lose(`its marker ${marker} is gone: ${(err as Error).message}`);
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

/** Removes the lock if its holder stopped refreshing it; whether it was stale. Refuses a link or a file. */
function takeOverIfStale(lock: string): boolean {
  let st;
  try {
    st = lstatSync(lock);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return true; // released meanwhile
    throw err;
  }
  if (st.isSymbolicLink()) throw new UnsafePath(lock, 'is a symbolic link, not a lock directory');
  if (!st.isDirectory()) throw new UnsafePath(lock, 'is not a directory, so not a lock');
  if (Date.now() - st.mtimeMs <= LOCK_STALE_MS) return false;
  try {
    for (const f of readdirSync(lock)) unlinkSync(join(lock, f));
    rmdirSync(lock);
  } catch {
    // Someone else is taking it over, or its holder came back: either way, try again.
  }
  return true;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
