// What the human commands share: a usage error (exit 2) and reading a .conf or .conflist file.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { Stdin } from '../config/netconf.js';

export class UsageError extends Error {}

/** The largest config file the commands read: libcni's own files are a few KiB. */
const MAX_CONF_BYTES = 1024 * 1024;

/**
 * The text of a config file: a regular file of at most MAX_CONF_BYTES, opened without blocking
 * (a FIFO must not hang the command) and read no further than that (/dev/zero must not fill
 * memory). Throws an Error whose message says what the file is instead.
 */
export function readConfText(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new Error('a directory, not a file');
    if (!st.isFile()) throw new Error('not a regular file (a device, FIFO or socket)');
    if (st.size > MAX_CONF_BYTES) throw new Error(`${st.size} bytes, more than a config file's ${MAX_CONF_BYTES}`);
    const buf = Buffer.alloc(Math.min(st.size, MAX_CONF_BYTES) + 1);
    let n = 0;
    for (let got; n < buf.length && (got = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += got;
    if (n > MAX_CONF_BYTES) throw new Error(`more than a config file's ${MAX_CONF_BYTES} bytes`);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** Reads a .conf or .conflist; for a list, the first plugin of type vnet with name and version, as the plugin's stdin. */
export function readNetConf(file: string): Stdin & { json: Record<string, unknown> } {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readConfText(file)) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const asStdin = (obj: Record<string, unknown>) => ({ text: JSON.stringify(obj), json: obj });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`cannot read ${file}: not a JSON object`);
  if (!Array.isArray(json.plugins)) return asStdin(json);
  const plugins = json.plugins as Record<string, unknown>[];
  const mine = plugins.find((p) => p.type === 'vnet') ?? plugins[0];
  if (!mine) throw new UsageError(`${file} has an empty plugin list`);
  // As libcni: the list's name and cniVersion win over any the plugin carries.
  return asStdin({ ...mine, cniVersion: json.cniVersion, name: json.name });
}
