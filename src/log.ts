// The step log, in the spirit of /var/log/azure-vnet.log: one line per step, prefixed with the
// time, the pid and the component. stdout is the protocol, so nothing here ever goes there.
import { closeSync, constants, fstatSync, openSync, renameSync, writeSync } from 'node:fs';
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
 * database (/etc/localtime and its links, 0.15-0.4 ms measured) for one timestamp.
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
  try {
    if (fd === undefined) {
      const path = process.env.VNET_LOG_FILE || file || '/var/log/vnet.log';
      mkdirp(dirname(path), 0o755);
      // 0600 (the umask can only take bits away), and never through a symlink planted at the name.
      fd = openLog(path);
    }
    writeSync(fd, line);
  } catch {
    // A log that cannot be written must not fail the operation it describes.
    fd = -1;
  }
}

/** The log rotates past this size: it becomes <file>.1 (one generation kept), and a new file starts. */
export const LOG_MAX_BYTES = 10 * 1024 * 1024;

function openLog(path: string): number {
  // 0600 (the umask can only take bits away), and never through a symlink planted at the name.
  const open = () => openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  const f = open();
  if (fstatSync(f).size < LOG_MAX_BYTES) return f;
  // Processes logging at once may each rotate: rename is atomic and replaces a link rather than
  // following it, and a writer still holding the old file just finishes its lines in <file>.1.
  closeSync(f);
  renameSync(path, `${path}.1`);
  return open();
}

/**
 * One entry is one line: a newline or any control character from outside text (CNI_ARGS, a
 * path, a plugin's message) is written as \xNN, so nobody can forge a line of the log.
 */
// eslint-disable-next-line no-control-regex
export const escapeControls = (s: string) => s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

// Where a call's time went, for its last line: each step's end in ms since the process started.
// process.uptime, not performance.now: the `performance` global loads perf_hooks (~0.5 ms) for a clock.
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
