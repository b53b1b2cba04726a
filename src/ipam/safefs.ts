// The file system calls of the store (store.ts) and of its lock (lock.ts), which run as root and
// treat everything under the data directory as hostile: nothing there is followed if it is a
// symbolic link (directories are checked with lstat, files opened with O_NOFOLLOW, new files
// created with O_CREAT|O_EXCL), and what we create is private, whatever the umask: files 0600,
// directories 0700 (set with fchmod after the create, since the umask may have taken bits away).
// Synchronous, like the store: see the note above its class.
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { CniError, Code } from '../errors.js';
import { isErrno } from '../fsutil.js';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

/** Something under the data directory that is not what the store made: a planted link, a file where a directory belongs, … */
export class UnsafePath extends CniError {
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(Code.io, `${path} ${what}; vnet-ipam follows no symbolic link and uses nothing it did not make under its data directory (remove it)`);
  }
}

const kind = (st: Stats) =>
  st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'a special file';

/** Whether `path` is a directory (never following a link): false if nothing is there; throws UnsafePath if something else is. */
export function isDirectory(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return false;
  if (!st.isDirectory()) throw new UnsafePath(path, `is ${kind(st)}, not a directory`);
  return true;
}

/** Whether `path` is a regular file (never following a link): false if nothing is there; throws UnsafePath if something else is. */
export function isRegularFile(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return false;
  if (!st.isFile()) throw new UnsafePath(path, `is ${kind(st)}, not a regular file`);
  return true;
}

/** Creates the directory `path` (it must not exist: EEXIST otherwise), mode 0700 whatever the umask. */
export function makeDir(path: string): void {
  mkdirSync(path, { mode: DIR_MODE });
  try {
    const fd = openSync(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      fchmodSync(fd, DIR_MODE);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    removeQuietly(path, true);
    throw err;
  }
}

/** Makes sure `path` is a directory: creates it (0700) if missing; throws UnsafePath if it is a link or not a directory. */
export function ensureDirectory(path: string): void {
  if (isDirectory(path)) return;
  try {
    makeDir(path);
  } catch (err) {
    // Created meanwhile by someone else: fine if it is a directory.
    if (!(isErrno(err, 'EEXIST') && isDirectory(path))) throw err;
  }
}

/**
 * Creates the file `path` (it must not exist, and a link there counts as existing: EEXIST),
 * mode 0600 whatever the umask, and writes `data`. On any failure (ENOSPC in the write or the
 * close) the file is removed again.
 */
export function createFile(path: string, data: string): void {
  const fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, FILE_MODE);
  try {
    fchmodSync(fd, FILE_MODE);
    const buf = Buffer.from(data);
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // The write's error is the one to report.
    }
    removeQuietly(path);
    throw err;
  }
  try {
    closeSync(fd);
  } catch (err) {
    removeQuietly(path);
    throw err;
  }
}

/**
 * The text of the regular file `path`, read without following a link; undefined if nothing is
 * there (or a directory is, with `dirIsAbsent`). Throws UnsafePath for a link or anything else
 * that is not a regular file. O_NONBLOCK: a planted FIFO must not hang us (no effect on files).
 */
export function readFile(path: string, dirIsAbsent = false): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    if (isErrno(err, 'ELOOP')) throw new UnsafePath(path, 'is a symbolic link');
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      if (dirIsAbsent && st.isDirectory()) return undefined;
      throw new UnsafePath(path, `is ${kind(st)}, not a regular file`);
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Removes a file (or, with `dir`, an empty directory), ignoring every error: for clean-up on a path that is already failing. */
export function removeQuietly(path: string, dir = false): void {
  try {
    if (dir) rmdirSync(path);
    else unlinkSync(path);
  } catch {
    // Nothing more to do; a leftover temp is swept later (see store.ts).
  }
}
