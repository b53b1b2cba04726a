// The lab's hands: processes run by argv (never a shell), inside a namespace when asked.
import { execFileSync } from 'node:child_process';
import { runProcess, type Ran } from '../../src/proc.js';

export type { Ran };

/** Runs argv and returns its stdout; throws on a non-zero exit (execFileSync's error carries stdout and stderr). */
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

/** Runs argv with env and stdin, asynchronously (many CNI calls run at once in the soak): the plugin's own runner. */
export const run = (argv: readonly string[], env: Record<string, string>, stdin: string): Promise<Ran> => runProcess([...argv], stdin, { env });
