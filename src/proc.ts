// Runs a program with stdin and collects its output, or starts it early and feeds it later.
// argv only, never a shell.
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { CniError, Code, OUT_OF_RESOURCES } from './errors.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  /** The signal that ended the program, if one did (code is then 128). */
  signal?: NodeJS.Signals;
}

/**
 * The system tools the plugin runs (ip, nsenter, nft), found in the system's own directories, not
 * on the caller's PATH: a root plugin does not run whatever `ip` a PATH entry offers, and an
 * absolute path spares execvp's walk over every PATH entry, in every child. Looked up once.
 */
const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];
const found = new Map<string, string>();
export function tool(name: 'ip' | 'nsenter' | 'nft'): string {
  let path = found.get(name);
  if (!path) {
    path = SYSTEM_DIRS.map((d) => `${d}/${name}`).find((p) => isExecutable(p));
    if (!path) throw new CniError(Code.io, `${name} is not installed: none of ${SYSTEM_DIRS.map((d) => `${d}/${name}`).join(', ')} (apt-get install ${name === 'nft' ? 'nftables' : name === 'ip' ? 'iproute2' : 'util-linux'})`);
    found.set(name, path);
  }
  return path;
}
/** A regular file this process may run (through a symlink too). */
export function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Counts the processes this invocation started, for the log and the benchmark. */
export const processCount = { n: 0 };

export interface Started {
  /** Writes stdin, closes it, and waits for the program to end. Once. */
  finish(stdin: string): Promise<Ran>;
  /** Why the program could not be started (known a tick after the start), or nothing. */
  startError(): CniError | undefined;
}

/**
 * Starts a program that waits for its stdin: its start-up (exec, dynamic linking, argument
 * parsing) then overlaps whatever the caller does before it has the input ready.
 * `fd3`: a descriptor the child gets as its fd 3 (the pod's opened network namespace).
 */
export function startProcess(argv: string[], opts: { env?: NodeJS.ProcessEnv; fd3?: number } = {}): Started {
  processCount.n++;
  const stdio: ('pipe' | number)[] = ['pipe', 'pipe', 'pipe'];
  if (opts.fd3 !== undefined) stdio.push(opts.fd3);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let spawnError: CniError | undefined;
  const child = spawn(argv[0]!, argv.slice(1), { env: opts.env, stdio });
  const ended = new Promise<Ran>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      // Out of descriptors or processes: the node may recover; anything else is a missing tool.
      const code = e.code && OUT_OF_RESOURCES.has(e.code) ? Code.tryAgain : Code.io;
      spawnError = new CniError(code, `cannot run ${argv[0]}: ${e.message}${code === Code.tryAgain ? ' (the node is out of resources; try again later)' : ''}`);
      reject(spawnError);
    });
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString() + (signal ? `(killed by ${signal})` : ''),
        ...(signal ? { signal } : {}),
      }),
    );
  });
  // With EMFILE node makes no pipes at all: the 'error' above is then all there is.
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  child.stdin?.on('error', () => {}); // a program may exit without reading its stdin
  ended.catch(() => {}); // reported by finish(), if it is ever called
  return {
    finish(stdin: string) {
      if (!spawnError) child.stdin?.end(stdin);
      return ended;
    },
    startError: () => spawnError,
  };
}

/** Runs a program with stdin and collects its output. */
export function runProcess(argv: string[], stdin: string, opts: { env?: NodeJS.ProcessEnv; fd3?: number } = {}): Promise<Ran> {
  return startProcess(argv, opts).finish(stdin);
}
