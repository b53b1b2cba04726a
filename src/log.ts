// The step log, in the spirit of /var/log/azure-vnet.log: one line per step, prefixed with the
// time, the pid and the component. stdout is the protocol, so nothing here ever goes there.
import { openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { mkdirp } from './fsutil.js';

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3, off: 4 } as const;
export type LogLevel = keyof typeof LEVELS;

// Nothing is read from the environment at load time: the native build loads modules while it
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

function stamp(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function write(at: LogLevel, msg: string): void {
  if (LEVELS[at] < LEVELS[level]) return;
  const line = `${stamp()} [${process.pid}] [${component}] ${at === 'info' ? '' : at.toUpperCase() + ' '}${msg}\n`;
  if (process.env.VNET_LOG_STDERR === '1') process.stderr.write(line);
  try {
    if (fd === undefined) {
      const path = process.env.VNET_LOG_FILE || file || '/var/log/vnet.log';
      mkdirp(dirname(path), 0o755);
      fd = openSync(path, 'a');
    }
    writeSync(fd, line);
  } catch {
    // A log that cannot be written must not fail the operation it describes.
    fd = -1;
  }
}

export const log = {
  debug: (msg: string) => write('debug', msg),
  info: (msg: string) => write('info', msg),
  warn: (msg: string) => write('warn', msg),
  error: (msg: string) => write('error', msg),
};
