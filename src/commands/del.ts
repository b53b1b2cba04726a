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
  let first: unknown;
  try {
    await execute(transparentDelPlan(attachment, env.netns), { tolerate: /Cannot find device|does not exist/ });
  } catch (err) {
    first = err;
  }
  if (conf.ipam) {
    try {
      await callIpam(env, conf, 'DEL');
    } catch (err) {
      first ??= err;
    }
  } else {
    log.warn('No ipam section: no address to release');
  }
  if (first) throw first;
}
