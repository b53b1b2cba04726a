// The lab's hands: processes run by argv (never a shell), inside a namespace when asked.
import { execFileSync, spawn } from 'node:child_process';

export function sh(argv: readonly string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Like sh, but a failure is an answer, not an exception. */
export function trySh(argv: readonly string[]): { ok: boolean; out: string } {
  try {
    return { ok: true, out: sh(argv) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

export const nsPath = (name: string) => `/var/run/netns/${name}`;
export const inNs = (ns: string, argv: readonly string[], input?: string) => sh(['nsenter', `--net=${nsPath(ns)}`, ...argv], input);
export const ipJson = (ns: string, args: readonly string[]): any[] => JSON.parse(inNs(ns, ['ip', '-json', ...args]) || '[]');
export const sysctl = (ns: string, key: string, value: string) => inNs(ns, ['sysctl', '-qw', `${key}=${value}`]);

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv with env and stdin, asynchronously (many CNI calls run at once in the soak). */
export function run(argv: readonly string[], env: Record<string, string>, stdin: string): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}
