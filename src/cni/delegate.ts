// Delegation (SPEC.md section 4): find a plugin by type on CNI_PATH and run it with our stdin
// and environment, only CNI_COMMAND changed.
import { runProcess } from '../proc.js';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, Code, firstLine } from '../errors.js';
import type { Command } from './env.js';

export function findPlugin(type: string, path: string[]): string {
  if (type.includes('/')) throw new CniError(Code.invalidConfig, `invalid plugin type ${JSON.stringify(type)}: must be a plain name`);
  if (!path.length) throw new CniError(Code.invalidEnv, `cannot find plugin "${type}": CNI_PATH is empty`);
  for (const dir of path) {
    const file = join(dir, type);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(Code.invalidConfig, `failed to find plugin "${type}" in path [${path.join(' ')}]`);
}

/** True when `file` is this very executable (same inode), so its work can be done in-process. */
export function isSelf(file: string): boolean {
  try {
    const a = statSync(file);
    const b = statSync(process.execPath);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/**
 * Runs a plugin and returns its stdout (trimmed) when it exits 0. A plugin error comes back as a
 * CniError with the plugin's own code and message.
 */
export async function execPlugin(file: string, command: Command, stdin: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { code, stdout, stderr } = await runProcess([file], stdin, { env: { ...env, CNI_COMMAND: command } });
  const text = stdout.trim();
  if (code === 0) return text;
  let err: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  try {
    err = JSON.parse(text) as typeof err;
  } catch {
    err = undefined;
  }
  if (err && typeof err.code === 'number' && Number.isInteger(err.code) && typeof err.msg === 'string') {
    throw new CniError(err.code, err.msg, typeof err.details === 'string' ? err.details : '');
  }
  throw new CniError(Code.io, `plugin ${file} ${command} failed (exit ${code}): ${firstLine(stderr || text || 'no output').slice(0, 200)}`);
}
