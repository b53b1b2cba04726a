// Runs a program with stdin and collects its output, or starts it early and feeds it later.
// argv only, never a shell.
import { spawn } from 'node:child_process';
import { CniError, Code } from './cni/errors.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Counts the processes this invocation started, for the log and the benchmark. */
export const processCount = { n: 0 };

export interface Started {
  /** Writes stdin, closes it, and waits for the program to end. Once. */
  finish(stdin: string): Promise<Ran>;
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
  let spawnError: Error | undefined;
  const child = spawn(argv[0]!, argv.slice(1), { env: opts.env, stdio });
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.stdin!.on('error', () => {}); // a program may exit without reading its stdin
  const ended = new Promise<Ran>((resolve, reject) => {
    child.on('error', (e) => {
      spawnError = e;
      reject(new CniError(Code.io, `cannot run ${argv[0]}: ${e.message}`));
    });
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString() + (signal ? `(killed by ${signal})` : ''),
      }),
    );
  });
  ended.catch(() => {}); // reported by finish(), if it is ever called
  return {
    finish(stdin: string) {
      if (!spawnError) child.stdin!.end(stdin);
      return ended;
    },
  };
}

/** Runs a program with stdin and collects its output. */
export function runProcess(argv: string[], stdin: string, opts: { env?: NodeJS.ProcessEnv; fd3?: number } = {}): Promise<Ran> {
  return startProcess(argv, opts).finish(stdin);
}
