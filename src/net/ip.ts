// The iproute2 driver: one `ip -batch -` process per side (the node, or the container through
// `nsenter --net=PATH`), and state read back with `ip -json`. Never a shell: argv arrays only.
import { runProcess as run } from '../proc.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { CniError, Code, firstLine } from '../cni/errors.js';

/** The argv that runs `ip ARGS` on the node (netns undefined) or inside a container's netns. */
export function ipArgv(args: string[], netns?: string): string[] {
  return netns ? ['nsenter', `--net=${netns}`, 'ip', ...args] : ['ip', ...args];
}

export interface BatchFailure {
  /** 0-based index of the batch line that failed. */
  line: number;
  message: string;
}

/**
 * Runs batch lines with `ip -batch -`. Without `force` ip stops at the first failing line, which
 * is then reported; with it every line runs and failures are ignored (used to undo).
 */
export async function ipBatch(lines: string[], netns?: string, force = false): Promise<BatchFailure | undefined> {
  if (!lines.length) return undefined;
  const argv = ipArgv([...(force ? ['-force'] : []), '-batch', '-'], netns);
  const { code, stderr } = await run(argv, lines.join('\n') + '\n');
  if (code === 0 || force) return undefined;
  const m = /Command failed -:(\d+)/.exec(stderr);
  const line = m ? Number(m[1]) - 1 : 0;
  const message = stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join('; ') || `ip exited ${code}`;
  return { line, message };
}

/** Runs read-only `ip -json` commands in one process; one parsed array per command. */
export async function ipJson(commands: string[], netns?: string): Promise<unknown[][]> {
  const argv = ipArgv(['-json', '-force', '-batch', '-'], netns);
  const { code, stdout, stderr } = await run(argv, commands.join('\n') + '\n');
  const out = stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown[]);
  if (out.length !== commands.length) {
    throw new CniError(Code.io, `reading network state${netns ? ` in ${netns}` : ''} failed (exit ${code}): ${firstLine(stderr)}`);
  }
  return out;
}

/** Reads a sysctl of the caller's own network namespace (the node's). */
export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Writes a sysctl in the node's namespace, in-process: no `sysctl` process on the ADD path. */
export function writeSysctl(key: string, value: string): void {
  if (readSysctl(key) === value) return;
  try {
    writeFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, value);
  } catch (err) {
    throw new CniError(Code.datapath, `cannot set sysctl ${key}=${value}: ${(err as Error).message}`);
  }
}

/** The name of the interface holding the default IPv4 route, from /proc/net/route (no process). */
export function defaultRouteInterface(): string | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (dest === '00000000' && mask === '00000000' && iface) return iface;
  }
  return undefined;
}

/** MTU of a link in the node's namespace (one `ip` process). */
export async function linkMtu(name: string): Promise<number | undefined> {
  const [links] = await ipJson(['link show']);
  const link = (links as { ifname?: string; mtu?: number }[]).find((l) => l.ifname === name);
  return link?.mtu;
}
