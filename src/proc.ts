// Runs a program with stdin and collects its output. argv only, never a shell.
import { spawn } from 'node:child_process';
import { CniError, Code } from './cni/errors.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Counts the processes this invocation started, for the log and the benchmark. */
export const processCount = { n: 0 };

/** `fd3`: a descriptor the child gets as its fd 3 (the pod's opened network namespace). */
export function runProcess(argv: string[], stdin: string, opts: { env?: NodeJS.ProcessEnv; fd3?: number } = {}): Promise<Ran> {
  processCount.n++;
  return new Promise((resolve, reject) => {
    const stdio: ('pipe' | number)[] = ['pipe', 'pipe', 'pipe'];
    if (opts.fd3 !== undefined) stdio.push(opts.fd3);
    const child = spawn(argv[0]!, argv.slice(1), { env: opts.env, stdio });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new CniError(Code.io, `cannot run ${argv[0]}: ${e.message}`)));
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString() + (signal ? `(killed by ${signal})` : ''),
      }),
    );
    child.stdin!.on('error', () => {}); // a program may exit without reading its stdin
    child.stdin!.end(stdin);
  });
}
