// The pod's network namespace, opened once. CNI_NETNS is a path the runtime hands us; we open
// it, make sure it is a network namespace and not our own (the node's), and from then on the
// children get the opened descriptor as their fd 3 (`/proc/self/fd/3`), never the path text.
import { closeSync, fstatSync, openSync, readlinkSync, statSync } from 'node:fs';
import { CniError, Code } from '../cni/errors.js';
import { isErrno } from '../fsutil.js';

export interface PodNetns {
  /** the path as the runtime gave it: for the log and the result's `sandbox`, never for a child */
  path: string;
  fd: number;
}

const kind = (st: { isDirectory(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }) =>
  st.isDirectory() ? 'a directory' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isFIFO() || st.isSocket() ? 'a pipe or socket' : 'a file';

export function openPodNetns(path: string): PodNetns {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) {
      throw new CniError(Code.unknownContainer, `container network namespace ${JSON.stringify(path)} does not exist`);
    }
    throw new CniError(Code.invalidEnv, `CNI_NETNS ${JSON.stringify(path)} cannot be opened: ${(err as Error).message}`);
  }
  // Namespaces live on nsfs, one file system: a namespace file (a runtime's bind mount, or
  // /proc/<pid>/ns/net) has the device of our own /proc/self/ns/net; a file, a directory or
  // /dev/null does not. Another kind of namespace (mnt, pid) on the same device is refused by
  // the kernel at the first command that uses it, before anything is made.
  const st = fstatSync(fd);
  const own = statSync('/proc/self/ns/net');
  const problem =
    st.dev !== own.dev
      ? `is not a network namespace (it is ${kind(st)}${kind(st) === 'a file' ? ` ${JSON.stringify(readlinkSync(`/proc/self/fd/${fd}`))}` : ''})`
      : st.ino === own.ino
        ? "is the plugin's own network namespace, the node's: refusing to wire the node as a pod"
        : undefined;
  if (problem) {
    closeSync(fd);
    throw new CniError(Code.invalidEnv, `CNI_NETNS ${JSON.stringify(path)} ${problem}`);
  }
  return { path, fd };
}
