// DEL: the mode's DEL plan (the veth, and for bridge mode the bridge's neighbour entries for the
// pod) and the IPAM release. Succeeds on repeats, with no netns, no prevResult, nothing
// allocated, and a config edited since ADD (see config/netconf.ts); always tries to release the
// address. The pod's netns is never opened: everything DEL removes is named from the attachment,
// and the pod's entries in shared tables are found by their owner marks (its MAC, its veth tag).
import { ALREADY_GONE } from '../net/ip.js';
import { execute } from '../plan/execute.js';
import { delInput } from '../plan/input.js';
import { modeOf } from '../plan/modes.js';
import { log, stepDone } from '../log.js';
import { callIpam } from './ipam.js';
import { hasIpam, type DelRequest } from './request.js';

export async function del(req: DelRequest): Promise<void> {
  const { conf, attachment } = req;
  for (const why of conf.ignored) log.warn(`DEL ignores a field in error: ${why}`);
  const mode = modeOf(conf.mode);
  if (!hasIpam(conf)) log.warn('No usable ipam section: no address to release');
  // Independent work, done side by side: the kernel takes tens of milliseconds to tear a veth
  // down, time in which the address is released. Both run whatever the other's outcome.
  const [link, ipam] = await Promise.allSettled([
    (async () => {
      // The pod's entries in tables the node shares (the bridge's neighbours, the masquerade
      // sets) are found by what marks them as this attachment's (its MAC, its veth's tag), never
      // by prevResult's addresses: a DEL retried after the address went to another pod must not
      // remove that pod's entries.
      const { podMac, podIps } = await mode.delLookUp(conf, attachment);
      const plan = mode.delPlan(delInput(conf, attachment, podMac, podIps));
      await execute(plan, undefined, { tolerate: ALREADY_GONE });
      stepDone('veth gone');
    })(),
    hasIpam(conf) ? callIpam(req, conf, 'DEL').then(() => stepDone('IPAM')) : undefined,
  ]);
  for (const r of [link, ipam]) if (r.status === 'rejected') throw r.reason;
}
