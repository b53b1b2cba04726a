// DEL: remove the veth (its peer and /32 route go with it) and release the address. Succeeds on
// repeats, with no netns, no prevResult, nothing allocated, and a config edited since ADD (see
// config/netconf.ts); always tries to release the address. The pod's netns is never opened:
// everything DEL removes is named from the attachment alone.
import type { CniEnv } from '../cni/env.js';
import type { NetConf } from '../config/netconf.js';
import { execute } from '../plan/execute.js';
import { modeOf } from '../plan/modes.js';
import { log } from '../log.js';
import { callIpam, hasIpam } from './ipam.js';

export async function del(env: CniEnv, conf: NetConf): Promise<void> {
  for (const why of conf.ignored) log.warn(`DEL ignores a field in error: ${why}`);
  const plan = modeOf(conf.mode).delPlan(conf.name, { containerId: env.containerId, ifname: env.ifname });
  if (!hasIpam(conf)) log.warn('No usable ipam section: no address to release');
  // Independent work, done side by side: the kernel takes tens of milliseconds to tear a veth
  // down, time in which the address is released. Both run whatever the other's outcome.
  const [link, ipam] = await Promise.allSettled([
    execute(plan, undefined, { tolerate: /Cannot find device|does not exist/ }),
    hasIpam(conf) ? callIpam(env, conf, 'DEL') : undefined,
  ]);
  for (const r of [link, ipam]) if (r.status === 'rejected') throw r.reason;
}
