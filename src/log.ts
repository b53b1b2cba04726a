// The step log, in the spirit of /var/log/azure-vnet.log: one line per step, prefixed with the
// time, the pid and the component. stdout is the protocol, so nothing here ever goes there.
import { closeSync, constants, fchmodSync, fstatSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { mkdirp } from './fsutil.js';

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3, off: 4 } as const;
export type LogLevel = keyof typeof LEVELS;

// Nothing is read from the environment at load time: the this-cpu build loads modules while it
// makes its V8 startup snapshot, long before the process that runs.
let fd: number | undefined;
let file: string | undefined;
let level: LogLevel = 'info';
let component = 'vnet';

/** Set once the config is known. VNET_LOG_FILE, if set, wins over the config's logFile. */
export function configureLog(opts: { file?: string; level?: LogLevel; component?: string }): void {
  if (opts.file) file = opts.file;
  if (opts.level) level = opts.level;
  if (opts.component) component = opts.component;
}

/**
 * The time in UTC, marked Z: the node's local zone would cost every call a load of the time-zone
 * database (/etc/localtime and its links) for one timestamp.
 */
function stamp(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}Z`;
}

function write(at: LogLevel, msg: string): void {
  if (LEVELS[at] < LEVELS[level]) return;
  const line = `${stamp()} [${process.pid}] [${component}] ${at === 'info' ? '' : at.toUpperCase() + ' '}${escapeControls(msg)}\n`;
  if (process.env.VNET_LOG_STDERR === '1') process.stderr.write(line);
  if (fd === -1) return;
  const path = process.env.VNET_LOG_FILE || file || '/var/log/vnet.log';
  try {
    if (fd === undefined) {
      mkdirp(dirname(path), 0o755);
      fd = openLog(path);
    }
    writeSync(fd, line);
  } catch (err) {
    // A log that cannot be used must not fail the operation it describes; stderr says why, once.
    if (fd === undefined) process.stderr.write(`${component}: not logging to ${JSON.stringify(path)}: ${(err as Error).message}\n`);
    fd = -1;
  }
}

/** The log rotates past this size: it becomes <file>.1 (one generation kept), and a new file starts. */
export const LOG_MAX_BYTES = 10 * 1024 * 1024;

/** The first line of every log the plugin creates; a file without it is never written to. */
export const LOG_HEADER = '# vnet-cni log: written only by vnet and vnet-ipam, one line per step\n';

/** A log's name: absolute, ending in .log (no loader, cron or sudo file has such a name). */
export const isLogName = (path: string) => path.startsWith('/') && path.endsWith('.log') && !path.endsWith('/.log');

/**
 * The log is a file the plugin made: created here (0600, O_EXCL) with LOG_HEADER as its first
 * line, or, existing, a regular file of ours (same owner, 0600, one link) that starts with it.
 * Never through a symlink (O_NOFOLLOW), never blocking on a FIFO (O_NONBLOCK), never another
 * existing file, whatever the config names: its lines quote config values.
 */
function openLog(path: string): number {
  if (!isLogName(path)) throw new Error('a log is an absolute path ending in .log');
  const flags = constants.O_RDWR | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  const create = () => {
    const f = openSync(path, flags | constants.O_CREAT | constants.O_EXCL, 0o600);
    fchmodSync(f, 0o600); // exactly: a umask that took more bits would make it fail notOurs later
    writeSync(f, LOG_HEADER);
    return f;
  };
  let f: number;
  try {
    return create();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    f = openSync(path, flags);
  }
  let problem = notOurs(f);
  // Another call has just created it and not yet written the header (two writes back to back,
  // but a loaded node, or a VM under emulation, may pause the creator between them): wait for
  // it, up to HEADER_WAIT_MS. A file long without it will not get it (its creator was killed
  // between the two): refused at once, saying what to do. The wall clock only tells "long": a
  // clock stepped forward between create and check must not pass for a dead creator.
  const since = process.hrtime.bigint();
  while (problem === HEADER_PENDING) {
    const made = fstatSync(f).mtimeMs;
    if (Date.now() - made > HEADER_STALE_MS || Number(process.hrtime.bigint() - since) / 1e6 > HEADER_WAIT_MS) {
      closeSync(f);
      throw new Error(`it has no header line, empty or cut short since ${new Date(made).toISOString()} (its creator stopped before writing it?): remove it to log again`);
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    problem = notOurs(f);
  }
  if (problem) {
    closeSync(f);
    throw new Error(`it exists and is not a log vnet made (${problem})`);
  }
  if (fstatSync(f).size < LOG_MAX_BYTES) return f;
  // Processes logging at once may each rotate: rename is atomic and replaces a link rather than
  // following it, and a writer still holding the old file just finishes its lines in <file>.1.
  closeSync(f);
  renameSync(path, `${path}.1`);
  try {
    return create();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return openLog(path); // another process rotated first and made the new one
  }
}

/** How long a call waits for the header of a log another call has just created. */
const HEADER_WAIT_MS = 10_000;
/** A log this old without its header will never get it: no call waits for it. */
const HEADER_STALE_MS = 60_000;
/** notOurs: what the file holds so far is the start of the header (or nothing). */
const HEADER_PENDING = 'its header not yet written';

/** Why the open file is not a log this plugin made, or nothing. */
function notOurs(f: number): string | undefined {
  const st = fstatSync(f);
  if (!st.isFile()) return 'not a regular file';
  if (st.uid !== process.getuid!()) return `owned by uid ${st.uid}`;
  if ((st.mode & 0o777) !== 0o600) return `mode ${(st.mode & 0o777).toString(8)}, not 600`;
  if (st.nlink !== 1) return `${st.nlink} links`;
  const head = Buffer.alloc(LOG_HEADER.length);
  const n = readSync(f, head, 0, head.length, 0);
  const text = head.toString('utf8', 0, n);
  if (text === LOG_HEADER) return undefined;
  return LOG_HEADER.startsWith(text) ? HEADER_PENDING : 'no vnet log header';
}

/**
 * One entry is one line: a newline, any control character (C0, DEL, C1), a Unicode line or
 * paragraph separator, or a bidirectional override from outside text (CNI_ARGS, a path, a config
 * value, a plugin's message) is written as \xNN or \uNNNN, so nobody can forge or hide a line.
 */
export const escapeControls = (s: string) =>
  // eslint-disable-next-line no-control-regex
  s.replace(/[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });

// Where a call's time went, for its last line: each step's end in ms since the process started.
// process.uptime, not performance.now: the `performance` global loads all of perf_hooks for a clock.
const steps: [string, number][] = [];

/** Marks the end of a step (the first mark ends the runtime's own start-up). */
export function stepDone(name: string): void {
  steps.push([name, process.uptime() * 1000]);
}

/** ms since the first mark, and each step's share: "start-up 22.1 ms, then config 1.4, IPAM 3.7". */
export function timing(): { total: number; text: string } {
  const now = process.uptime() * 1000;
  const first = steps[0];
  if (!first) return { total: 0, text: '' };
  const parts = steps.slice(1).map(([name, t], i) => `${name} ${(t - steps[i]![1]).toFixed(1)}`);
  const last = steps[steps.length - 1]![1];
  if (now - last >= 0.05) parts.push(`the rest ${(now - last).toFixed(1)}`);
  return { total: now - first[1], text: `${first[0]} ${first[1].toFixed(1)} ms, then ${parts.join(', ')}` };
}

export const log = {
  debug: (msg: string) => write('debug', msg),
  info: (msg: string) => write('info', msg),
  warn: (msg: string) => write('warn', msg),
  error: (msg: string) => write('error', msg),
};
