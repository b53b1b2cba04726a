// Fault injection for the crash tests: with VNET_TEST_CRASH_AT=N in its environment the plugin
// SIGKILLs itself at the N-th crash point it reaches; with VNET_TEST_FAIL_AT it throws a CniError
// there instead (a failure, not a kill, to prove a rollback or a restore): VNET_TEST_FAIL_AT=N
// fails at the N-th crash point reached, VNET_TEST_FAIL_AT=TEXT at the first whose description
// holds TEXT. Crash points sit at every boundary where state changes (before and after each
// process that changes the datapath, between the IPAM store's writes), so a test can stop a call
// at each of them in turn and prove that DEL, and the next ADD, still leave nothing behind, or
// that the failed call itself left nothing. Read at run time, never at snapshot time.
import v8 from 'node:v8';
import { CniError, Code } from './errors.js';
import { log } from './log.js';

let reached = 0;

export function crashPoint(where: string): void {
  // The snapshot build runs ADD's code once (a warm-up): the environment is not the run's.
  if (v8.startupSnapshot?.isBuildingSnapshot()) return;
  const fail = process.env.VNET_TEST_FAIL_AT;
  const at = process.env.VNET_TEST_CRASH_AT;
  if (!fail && !at) return;
  reached++;
  if (fail && (/^\d+$/.test(fail) ? Number(fail) === reached : where.includes(fail))) {
    log.warn(`VNET_TEST_FAIL_AT=${fail}: failing at crash point ${reached}, ${where}`);
    throw new CniError(Code.datapath, `test fault (VNET_TEST_FAIL_AT) at: ${where}`);
  }
  if (String(reached) !== at) return;
  log.warn(`VNET_TEST_CRASH_AT=${at}: killing myself at crash point ${reached}, ${where}`);
  process.kill(process.pid, 'SIGKILL');
}
