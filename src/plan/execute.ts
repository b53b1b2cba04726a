// Runs a plan: consecutive `ip` commands of one side go to one process (the node's `ip -batch -`,
// or the pod's through nsenter), sysctls are written in-process, every step is logged. If a step
// fails, rollback undoes, in reverse, the per-attachment steps this call completed, and only
// those: a step that failed (say `link add` finding the name taken by a running pod's veth) made
// nothing and undoes nothing, and shared steps are never undone.
import { CniError, Code } from '../errors.js';
import { crashPoint } from '../crash.js';
import { batchLine, type IpCmd } from '../net/command.js';
import { ipRun, ipRunAll, writeSysctl, type Batches } from '../net/ip.js';
import { nftRun } from '../net/nft.js';
import type { PodNetns } from '../net/netns.js';
import { log } from '../log.js';
import type { Plan, Side, Step } from './plan.js';

interface ExecuteOptions {
  /** Treat an `ip` failure that matches this as done (DEL of something already gone). */
  tolerate?: RegExp;
  /** `ip` processes started ahead (ADD): the first batch of each side takes its own. */
  batches?: Batches;
}

interface Pending {
  side: Side;
  cmds: IpCmd[];
  /** the step of each command */
  owners: Step[];
}

export async function execute(plan: Plan, pod: PodNetns | undefined, opts: ExecuteOptions = {}): Promise<void> {
  const done: Step[] = [];
  // Commands still to run per step; a step is done when it reaches 0 and its sysctls are set.
  const left = new Map<Step, number>(plan.steps.map((s) => [s, s.ip?.length ?? 0]));
  const finish = (s: Step) => {
    if (left.get(s) === 0 && !done.includes(s)) done.push(s);
  };
  let pending: Pending | undefined;
  const nftDone = new Set<Step>();
  // The step whose command is running or failed: its `restore` runs if the call fails there.
  let current: Step | undefined;

  const flush = async () => {
    while (pending?.cmds.length) {
      const p = pending;
      const first = (current = p.owners[0]!);
      crashPoint(`before the ${p.side} commands: ${first.say}`);
      const last = p.owners[p.owners.length - 1]!;
      const where = { ...(p.side === 'pod' ? { pod } : { fd3: pod?.fd }), batches: opts.batches, doneWhenGone: last.doneWhenGone };
      if (first.restore && first.alone && p.side === 'node' && p.cmds.every((c) => batchLine(c) !== undefined)) {
        await runWhole(p, first, opts);
        left.set(first, 0);
        finish(first);
        pending = undefined;
        return;
      }
      const failure = await ipRun(p.cmds, where);
      const ran = failure ? failure.index : p.cmds.length;
      for (const s of p.owners.slice(0, ran)) {
        left.set(s, left.get(s)! - 1);
        finish(s);
      }
      crashPoint(`after the ${p.side} commands: ${p.owners[0]!.say}`);
      if (!failure) {
        pending = undefined;
        return;
      }
      const step = (current = p.owners[failure.index]!);
      if (!(step.tolerate ?? opts.tolerate)?.test(failure.message)) {
        throw new CniError(Code.datapath, `${step.say}: failed: ${failure.message}`, `ip ${p.cmds[failure.index]!.join(' ')}`);
      }
      log.info(`  (already done: ${failure.message})`);
      left.set(step, left.get(step)! - 1);
      finish(step);
      pending = { ...p, cmds: p.cmds.slice(failure.index + 1), owners: p.owners.slice(failure.index + 1) };
    }
    pending = undefined;
    current = undefined;
  };

  try {
    for (const [i, step] of plan.steps.entries()) {
      log.info(step.say);
      if (step.sysctl) {
        await flush();
        for (const [key, value] of step.sysctl) writeSysctl(key, value);
      }
      if (step.nft) {
        await flush();
        // Consecutive nft steps run as one transaction (one process): all of them or none; a
        // step marked `alone` is a transaction of its own (its failure may be tolerated).
        const group = [step];
        for (let j = i + 1; !step.alone && plan.steps[j]?.nft && !plan.steps[j]!.ip && !plan.steps[j]!.sysctl && !plan.steps[j]!.alone; j++) group.push(plan.steps[j]!);
        if (!nftDone.has(step)) {
          current = step;
          crashPoint(`before the nftables script: ${step.say}`);
          const failure = await nftRun(group.flatMap((s) => s.nft!));
          if (failure && !(step.tolerate ?? opts.tolerate)?.test(failure)) {
            throw new CniError(Code.datapath, `${group.map((s) => s.say).join('; ')}: failed: ${failure}`, group.flatMap((s) => s.nft!).join('; '));
          }
          // Done (and so rolled back on a later failure) from here on, the whole transaction.
          for (const s of group) {
            nftDone.add(s);
            finish(s);
          }
          current = undefined;
          crashPoint('after the nftables script');
        }
      }
      if (step.ip?.length) {
        if (pending && (pending.side !== step.side || step.alone)) await flush();
        pending ??= { side: step.side, cmds: [], owners: [] };
        pending.cmds.push(...step.ip);
        pending.owners.push(...step.ip.map(() => step));
      }
      if (step.alone || step.doneWhenGone) await flush();
      finish(step);
    }
    await flush();
  } catch (err) {
    if (current?.restore) await restore(current);
    await rollback(done);
    throw err;
  }
}

/**
 * A shared step with a restore (the uplink's move) runs in ONE process whatever fails (-force):
 * a tolerated failure must not split it into two processes, between which a plugin killed would
 * leave the NIC half moved; the process it started finishes the batch on its own.
 */
async function runWhole(p: Pending, step: Step, opts: ExecuteOptions): Promise<void> {
  const failures = await ipRunAll(p.cmds);
  crashPoint(`after the node commands: ${step.say}`);
  for (const f of failures) {
    if (!(step.tolerate ?? opts.tolerate)?.test(f.message)) {
      throw new CniError(Code.datapath, `${step.say}: failed: ${f.message}`, `ip ${p.cmds[f.index]?.join(' ') ?? ''}`);
    }
    log.info(`  (already done: ${f.message})`);
  }
}

/** Puts back what a shared step was changing when it failed (an uplink half moved), whatever fails. */
async function restore(step: Step): Promise<void> {
  log.warn(`Restoring what "${step.say}" was changing: ${step.restore!.map((c) => `ip ${c.join(' ')}`).join('; ')}`);
  const failures = await ipRunAll(step.restore!).catch((e: Error) => [{ message: e.message }]);
  for (const f of failures) log.info(`  (restore: ${f.message})`);
}

/** Undoes the completed per-attachment steps in reverse. Logged, not thrown: the first failure wins. */
async function rollback(done: Step[]): Promise<void> {
  const mine = [...done].reverse().filter((s) => s.lifecycle === 'attachment');
  const nftUndo = mine.flatMap((s) => s.nftUndo ?? []);
  if (nftUndo.length) {
    log.warn(`Rolling back what this call made: nft ${nftUndo.join('; ')}`);
    const failure = await nftRun(nftUndo).catch((e: Error) => e.message);
    if (failure) log.error(`Rollback failed: ${failure}`);
  }
  const undo = mine.flatMap((s) => s.undo ?? []);
  if (!undo.length) return;
  log.warn(`Rolling back what this call made: ${undo.map((c) => `ip ${c.join(' ')}`).join('; ')}`);
  const failures = await ipRunAll(undo).catch((e: Error) => [{ message: e.message }]);
  for (const f of failures) log.error(`Rollback failed: ${f.message}`);
}

/**
 * Runs every step whatever fails (GC): each step's `ip` commands in one `-force` process, its
 * nft script as one transaction. Returns every failure that `tolerate` does not excuse.
 */
export async function executeAll(plan: Plan, tolerate: RegExp): Promise<string[]> {
  const problems: string[] = [];
  for (const step of plan.steps) {
    log.info(step.say);
    try {
      if (step.ip?.length) {
        for (const f of await ipRunAll(step.ip)) if (!tolerate.test(f.message)) problems.push(`ip ${step.ip[f.index]?.join(' ') ?? ''}: ${f.message}`);
      }
      if (step.nft) {
        const failure = await nftRun(step.nft);
        if (failure && !tolerate.test(failure)) problems.push(`${step.say}: ${failure}`);
      }
    } catch (err) {
      problems.push(`${step.say}: ${(err as Error).message}`);
    }
  }
  return problems;
}
