// Runs a plan: consecutive `ip` lines of one side go to one `ip -batch -` process (the node's,
// or the container's through nsenter), sysctls are written in-process, every step is logged.
// If anything fails, the steps already taken are undone in reverse and the error names the step.
import { CniError, Code } from '../cni/errors.js';
import { ipBatch, writeSysctl } from '../net/ip.js';
import { log } from '../log.js';
import type { Plan, Side, Step } from './plan.js';

interface Batch {
  side: Side;
  lines: string[];
  /** The step each line belongs to. */
  owners: Step[];
}

export interface ExecuteOptions {
  /** Treat an `ip` failure that matches this as done (DEL of something already gone). */
  tolerate?: RegExp;
}

export async function execute(plan: Plan, opts: ExecuteOptions = {}): Promise<void> {
  const started: Step[] = [];
  let batch: Batch | undefined;

  const flush = async () => {
    if (!batch) return;
    const b = batch;
    batch = undefined;
    const failure = await ipBatch(b.lines, b.side === 'container' ? plan.netns : undefined);
    if (!failure) return;
    if (opts.tolerate?.test(failure.message)) {
      log.info(`  (already done: ${failure.message})`);
      // ip stopped at the tolerated line: run what came after it.
      const rest = { ...b, lines: b.lines.slice(failure.line + 1), owners: b.owners.slice(failure.line + 1) };
      if (rest.lines.length) {
        batch = rest;
        await flush();
      }
      return;
    }
    const step = b.owners[failure.line] ?? b.owners[0]!;
    throw new CniError(Code.datapath, `${step.say}: failed: ${failure.message}`, `ip ${b.lines[failure.line] ?? ''}`);
  };

  try {
    for (const step of plan.steps) {
      log.info(step.say);
      started.push(step);
      if (step.sysctl) {
        await flush();
        for (const [key, value] of step.sysctl) writeSysctl(key, value);
      }
      if (step.ip?.length) {
        if (batch && batch.side !== step.side) await flush();
        batch ??= { side: step.side, lines: [], owners: [] };
        batch.lines.push(...step.ip);
        batch.owners.push(...step.ip.map(() => step));
      }
    }
    await flush();
  } catch (err) {
    await rollback(started);
    throw err;
  }
}

/** Undoes the started steps in reverse. Errors are logged, not thrown: the first failure wins. */
export async function rollback(started: Step[]): Promise<void> {
  const undo = [...started].reverse().flatMap((s) => s.undo ?? []);
  if (!undo.length) return;
  log.warn(`Rolling back: ${undo.map((l) => `ip ${l}`).join('; ')}`);
  try {
    await ipBatch(undo, undefined, true);
  } catch (err) {
    log.error(`Rollback failed: ${(err as Error).message}`);
  }
}
