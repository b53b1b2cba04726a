// The pod's network namespace, opened once. CNI_NETNS is a path the runtime hands us; we open
// it, make sure it is a network namespace and not our own (the node's), and from then on the
// children get the opened descriptor as their fd 3 (`/proc/self/fd/3`), never the path text.
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { asCniError, CniError, Code, OUT_OF_RESOURCES } from '../errors.js';
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
    if (OUT_OF_RESOURCES.has((err as NodeJS.ErrnoException).code ?? '')) throw asCniError(err);
    throw new CniError(Code.invalidEnv, `CNI_NETNS ${JSON.stringify(path)} cannot be opened: ${(err as Error).message}`);
  }
  // Namespaces live on nsfs, one file system: a namespace file (a runtime's bind mount, or
  // /proc/<pid>/ns/net) has the device of our own /proc/self/ns/net; a file, a directory or
  // /dev/null does not. Another kind of namespace (pid, user, mnt) on the same device is told
  // apart by its type, before IPAM hands out an address for it.
  const st = fstatSync(fd);
  const own = statSync('/proc/self/ns/net');
  const type = st.dev === own.dev ? namespaceType(fd) : undefined;
  const problem =
    st.dev !== own.dev
      ? `is not a network namespace (it is ${kind(st)}${kind(st) === 'a file' ? ` ${JSON.stringify(readlinkSync(`/proc/self/fd/${fd}`))}` : ''})`
      : type !== undefined && type !== 'net'
        ? `is not a network namespace (it is a ${type} namespace)`
        : st.ino === own.ino
          ? "is the plugin's own network namespace, the node's: refusing to wire the node as a pod"
          : undefined;
  if (problem) {
    closeSync(fd);
    throw new CniError(Code.invalidEnv, `CNI_NETNS ${JSON.stringify(path)} ${problem}`);
  }
  return { path, fd };
}

/**
 * The type of the namespace open at fd (net, pid, user, mnt, …), or undefined if it cannot be
 * told (the kernel then refuses a wrong one at the first command, before anything is made).
 * /proc/<pid>/ns/<type> reads back as "<type>:[inode]"; a runtime's bind mount reads back as its
 * path, and the mount's root in mountinfo is then "<type>:[inode]" (found by the fd's mnt_id).
 */
function namespaceType(fd: number): string | undefined {
  const nsName = /^([a-z_]+):\[\d+\]$/;
  try {
    const direct = nsName.exec(readlinkSync(`/proc/self/fd/${fd}`));
    if (direct) return direct[1];
    const mnt = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1];
    if (!mnt) return undefined;
    for (const line of readFileSync('/proc/self/mountinfo', 'latin1').split('\n')) {
      const [id, , , root] = line.split(' ');
      if (id === mnt) return nsName.exec(root ?? '')?.[1];
    }
  } catch {
    // /proc not as expected: leave it to the kernel
  }
  return undefined;
}
