// DEL: remove the veth (its peer and /32 route go with it) and release the address. Succeeds on
// repeats, with no netns, no prevResult, nothing allocated; always tries to release the address.
import type { CniEnv } from '../cni/env.js';
import type { NetConf } from '../config/netconf.js';
import { execute } from '../plan/execute.js';
import { transparentDelPlan } from '../plan/transparent.js';
import { log } from '../log.js';
import { callIpam } from './ipam.js';

export async function del(env: CniEnv, conf: NetConf): Promise<void> {
  const attachment = { network: conf.name, containerId: env.containerId, ifname: env.ifname };
  if (!conf.ipam) log.warn('No ipam section: no address to release');
  // Independent work, done side by side: the kernel takes tens of milliseconds to tear a veth
  // down, time in which the address is released. Both run whatever the other's outcome.
  const [link, ipam] = await Promise.allSettled([
    execute(transparentDelPlan(attachment, env.netns), { tolerate: /Cannot find device|does not exist/ }),
    conf.ipam ? callIpam(env, conf, 'DEL') : undefined,
  ]);
  for (const r of [link, ipam]) if (r.status === 'rejected') throw r.reason;
}
