// File system helpers shared by the IPAM store and the log.
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** Whether an error is a system error with one of these codes (ENOENT, EEXIST, …). */
export const isErrno = (err: unknown, ...codes: string[]) =>
  codes.includes((err as NodeJS.ErrnoException | undefined)?.code ?? '');

/**
 * `mkdir -p`, in at most two mkdir calls per level. Not node's `recursive: true`, which loops
 * forever, at full CPU, when a level cannot be created but says ENOENT rather than why: mkdir
 * under /proc does (ENOENT for /proc/x, EEXIST for /proc, again and again).
 */
export function mkdirp(dir: string, mode: number): void {
  const isDir = () => statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
  try {
    mkdirSync(dir, { mode });
    return;
  } catch (err) {
    if (isErrno(err, 'EEXIST') && isDir()) return;
    const parent = dirname(dir);
    if (!isErrno(err, 'ENOENT') || parent === dir) throw err;
    mkdirp(parent, mode);
  }
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    if (!(isErrno(err, 'EEXIST') && isDir())) throw err;
  }
}
