// DEL: the mode's DEL plan (the veth, and for bridge mode the bridge's neighbour entries for the
// pod) and the IPAM release. Succeeds on repeats, with no netns, no prevResult, nothing
// allocated, and a config edited since ADD (see config/netconf.ts); always tries to release the
// address. The pod's netns is never opened: everything DEL removes is named from the attachment,
// and the pod's addresses come from prevResult or, without one, where the mode finds them.
import type { CniEnv } from '../cni/env.js';
import { Code } from '../cni/errors.js';
import { parseResult } from '../cni/result.js';
import type { NetConf } from '../config/netconf.js';
import type { Addr } from '../net/values.js';
import { ALREADY_GONE } from '../net/ip.js';
import { execute } from '../plan/execute.js';
import { typedIpam } from '../plan/input.js';
import { modeOf } from '../plan/modes.js';
import { log, stepDone } from '../log.js';
import { callIpam, hasIpam } from './ipam.js';

export async function del(env: CniEnv, conf: NetConf): Promise<void> {
  for (const why of conf.ignored) log.warn(`DEL ignores a field in error: ${why}`);
  const mode = modeOf(conf.mode);
  const attachment = { containerId: env.containerId, ifname: env.ifname };
  if (!hasIpam(conf)) log.warn('No usable ipam section: no address to release');
  // Independent work, done side by side: the kernel takes tens of milliseconds to tear a veth
  // down, time in which the address is released. Both run whatever the other's outcome.
  const [link, ipam] = await Promise.allSettled([
    (async () => {
      const lookUp = mode.podIpsLookUp(conf.name, attachment, conf.bridgeConf);
      const podIps = lookUp ? await podAddrs(conf, lookUp) : [];
      const plan = mode.delPlan({ network: conf.name, attachment, bridge: conf.bridgeConf, podIps });
      await execute(plan, undefined, { tolerate: ALREADY_GONE });
      stepDone('veth gone');
    })(),
    hasIpam(conf) ? callIpam(env, conf, 'DEL').then(() => stepDone('IPAM')) : undefined,
  ]);
  for (const r of [link, ipam]) if (r.status === 'rejected') throw r.reason;
}

/** The pod's addresses from prevResult; a prevResult in error is ignored (DEL must go on). */
async function podAddrs(conf: NetConf, lookUp: () => Promise<Addr[]>): Promise<Addr[]> {
  if (conf.prevResult !== undefined) {
    try {
      return typedIpam(parseResult(conf.prevResult, 'prevResult', Code.invalidConfig), 'prevResult', Code.invalidConfig).ips.map((i) => i.cidr);
    } catch (err) {
      log.warn(`DEL ignores prevResult: ${(err as Error).message}`);
    }
  }
  return lookUp();
}
