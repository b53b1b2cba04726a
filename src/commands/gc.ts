// GC (spec 1.1.0): remove what attachments not in cni.dev/valid-attachments left on the node
// (compared by the veth name each valid attachment would have): the mode reads what the network
// owns, plan/gc.ts turns the strays into steps, and they all run whatever fails; then IPAM frees
// the addresses. Every failure is reported, in one error.
import { CniError, Code } from '../errors.js';
import { ALREADY_GONE } from '../net/ip.js';
import { executeAll } from '../plan/execute.js';
import { gcPlan } from '../plan/gc.js';
import { modeOf } from '../plan/modes.js';
import { hostVethName } from '../plan/names.js';
import { log } from '../log.js';
import { callIpam } from './ipam.js';
import { hasIpam, type GcRequest } from './request.js';

export async function gc(req: GcRequest): Promise<void> {
  const { conf } = req;
  for (const why of conf.ignored) log.warn(`GC ignores a field in error: ${why}`);
  const valid = new Set<string>(req.valid.map((a) => hostVethName(conf.name, a)));
  const owned = await modeOf(conf.mode).owned(conf);
  const { plan, unremovable } = gcPlan(conf, owned, valid);
  // A DEL racing this GC may have removed some already: that is what was wanted.
  const problems = [...owned.unread, ...unremovable, ...(await executeAll(plan, ALREADY_GONE))];
  if (hasIpam(conf)) {
    try {
      await callIpam(req, conf, 'GC');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length) throw new CniError(Code.io, `GC failed ${problems.length} time(s): ${problems.join('; ')}`);
}
