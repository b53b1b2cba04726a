// The per-network lock around every read-modify-write of the store, with proper-lockfile: an
// atomic mkdir of `<network dir>/.lock`, whose mtime the holder refreshes while it holds it.
//
// Tuning, for two goals:
// - A holder SIGKILLed mid-ADD must not block the next ADD for long. proper-lockfile's smallest
//   `stale` is 2000 ms and its `update` is clamped to [1000, stale/2]: the holder touches the lock
//   every second, and a lock untouched for 2 s is taken over. One wrinkle: on its first lock in a
//   process, proper-lockfile probes the file system's mtime precision by setting the mtime up to
//   1 s *into the future*, which would stretch a takeover to 3 s; our fs shim sets that probe's
//   mtime to now instead (the probe still sees the precision). So a crashed holder costs ≤ ~2 s.
// - A burst of concurrent ADDs (100 processes) must all get through, without lock timeouts and
//   without long back-off gaps. A critical section takes a few milliseconds, so waiters poll
//   often: a delay of 5 ms growing by 1.5× to at most 50 ms, each randomised to 0.5-1.5× so
//   waiters spread out, until a 30 s deadline (then CNI error 11, "try again later"). With many
//   waiters, one of them polls within a millisecond or two of a release; polling faster only
//   steals CPU from the holder (measured: 100 simultaneous ADDs on 2 CPUs finish in ~2 s with
//   these numbers, ~3 s with 2-25 ms). We run the retry loop ourselves (retries: 0 in
//   proper-lockfile) so the bound is a time, not a count.
// If the lock is compromised (its mtime could not be refreshed in time and someone else took it
// over), proper-lockfile calls onCompromised from a timer; by default that throws out of nowhere.
// We record it and surface it as a CniError from `assertHeld()` and when the critical section
// ends. Note that the lock guards the round-robin cursor and the index; no address can be handed
// out twice even without it, since claiming an address is an exclusive link().
//
// Nothing under the data directory is trusted (see store.ts): a `.lock` that is a symbolic link
// or not a directory is refused at once, naming it (CNI error 5), rather than waited on until the
// deadline (a link's target never goes stale, and a dangling link can never be taken over). The
// fs shim below lstats, never stats, sets times with lutimes, and creates `.lock` 0700 whatever
// the umask. The caller checks the network directory itself (Store.exists / ensureDir).
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CniError, Code } from '../cni/errors.js';
import { makeDir, UnsafePath } from './safefs.js';

// proper-lockfile installs signal handlers (signal-exit) when it loads, which a V8 startup
// snapshot cannot hold: load it on first use, never at the top level.
type Lockfile = typeof import('proper-lockfile');
let lockfileModule: Promise<Lockfile> | undefined;
const loadLockfile = () => (lockfileModule ??= import('proper-lockfile').then((m) => (m.default ?? m) as Lockfile));

export const LOCK_DIR = '.lock';
export const LOCK_STALE_MS = 2000;
export const LOCK_UPDATE_MS = 1000;
export const LOCK_TIMEOUT_MS = 30_000;
export const RETRY_MIN_MS = 5;
export const RETRY_MAX_MS = 50;
export const RETRY_FACTOR = 1.5;

export interface HeldLock {
  /** Throws CniError if the lock was lost (compromised) since it was taken. */
  assertHeld(): void;
}

export interface LockOptions {
  timeoutMs?: number;
  /** Called when the directory to lock does not exist; should create it. */
  createDir?: () => void | Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const errno = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** Runs `fn` holding the lock of `dir`. */
export async function withLock<T>(dir: string, fn: (lock: HeldLock) => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  let compromised: Error | undefined;
  const lostError = () =>
    new CniError(
      Code.io,
      `lost the lock on ${dir} while holding it (${compromised?.message}); another process may have changed the allocations meanwhile`,
      '',
      { cause: compromised },
    );
  const held: HeldLock = {
    assertHeld() {
      if (compromised) throw lostError();
    },
  };
  const release = await acquire(dir, opts, (err) => {
    compromised = err;
  });
  let result: T;
  try {
    result = await fn(held);
  } finally {
    // A failed release leaves a lock that goes stale within LOCK_STALE_MS; nothing to report.
    await release().catch(() => undefined);
  }
  held.assertHeld();
  return result;
}

async function acquire(dir: string, opts: LockOptions, onCompromised: (err: Error) => void): Promise<() => Promise<void>> {
  const timeoutMs = opts.timeoutMs ?? LOCK_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let delay = RETRY_MIN_MS;
  let created = false;
  const lockfile = await loadLockfile();
  for (;;) {
    try {
      return await lockfile.lock(join(dir, 'lock'), {
        lockfilePath: join(dir, LOCK_DIR),
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        fs: lockFs,
        onCompromised,
      });
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT' && opts.createDir && !created) {
        created = true;
        await opts.createDir();
        continue;
      }
      if (err instanceof UnsafePath) throw err;
      if (code !== 'ELOCKED') {
        throw new CniError(Code.io, `cannot lock ${dir}: ${(err as Error).message}`, '', { cause: err });
      }
      if (Date.now() >= deadline) {
        throw new CniError(
          Code.tryAgain,
          `timed out after ${timeoutMs / 1000}s waiting for the lock ${join(dir, LOCK_DIR)}; try again later`,
        );
      }
      await sleep(delay / 2 + Math.random() * delay);
      delay = Math.min(delay * RETRY_FACTOR, RETRY_MAX_MS);
    }
  }
}

// The fs proper-lockfile uses: node's synchronous calls behind its callback interface (as
// proper-lockfile's own lockSync does), so that taking and releasing the lock costs a few
// system calls and no trip through libuv's thread pool; and the mtime-precision probe right
// after taking a lock (a utimes into the future) is clamped to now; and nothing is followed if
// it is a link. See the header.
const justCreated = new Set<string>();
type Cb = (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void;
function sync<R>(cb: Cb, f: () => R): void {
  let ret: R;
  try {
    ret = f();
  } catch (err) {
    cb(err as NodeJS.ErrnoException);
    return;
  }
  cb(null, ret);
}
const lockFs = {
  mkdir(path: string, cb: Cb) {
    sync(cb, () => {
      makeDir(path);
      justCreated.add(path);
    });
  },
  // proper-lockfile stats the lock when mkdir says EEXIST (is it stale?) and while holding it (is
  // it still ours?). A link or a non-directory there is not a lock anyone holds: refuse it.
  stat(path: string, cb: Cb) {
    justCreated.delete(path);
    sync(cb, () => {
      const st = nodeFs.lstatSync(path);
      if (st.isSymbolicLink()) throw new UnsafePath(path, 'is a symbolic link, not a lock directory');
      if (!st.isDirectory()) throw new UnsafePath(path, 'is not a directory, so not a lock');
      return st;
    });
  },
  utimes(path: string, atime: Date, mtime: Date, cb: Cb) {
    if (justCreated.delete(path)) {
      let t = Math.min(mtime.getTime(), Date.now());
      if (t % 1000 === 0) t -= 1; // keep it off the second, so the probe still tells ms from s
      const d = new Date(t);
      sync(cb, () => nodeFs.lutimesSync(path, d, d));
      return;
    }
    sync(cb, () => nodeFs.lutimesSync(path, atime, mtime));
  },
  rmdir(path: string, cb: Cb) {
    sync(cb, () => nodeFs.rmdirSync(path));
  },
  rmdirSync(path: string) {
    nodeFs.rmdirSync(path);
  },
  realpath(path: string, cb: Cb) {
    sync(cb, () => nodeFs.realpathSync(path));
  },
};
