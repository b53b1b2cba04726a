// CHECK: rebuild the plan ADD ran from prevResult and compare it with the live state; then
// IPAM CHECK. The first difference is the error. prevResult is outside text: it is parsed as
// strictly as an IPAM result, and a bad one is a config error (7).
import type { CniEnv } from '../cni/env.js';
import { CniError, Code } from '../cni/errors.js';
import { parseResult } from '../cni/result.js';
import type { NetConf } from '../config/netconf.js';
import { openPodNetns } from '../net/netns.js';
import { checkPlan } from '../plan/check.js';
import { typedIpam } from '../plan/input.js';
import { modeOf } from '../plan/modes.js';
import { callIpam, hasIpam } from './ipam.js';
import { stepDone } from '../log.js';

export async function check(env: CniEnv, conf: NetConf): Promise<void> {
  if (conf.prevResult === undefined) throw new CniError(Code.invalidConfig, 'CHECK needs prevResult: none in the network config');
  const prev = parseResult(conf.prevResult, 'prevResult', Code.invalidConfig);
  const typed = typedIpam(prev, 'prevResult', Code.invalidConfig);
  const idx = prev.interfaces.findIndex((i) => i.name === env.ifname && i.sandbox);
  // This attachment's addresses, and the routes ADD made (all via the gateway; later chained
  // plugins may have added others, which are not ours to check).
  const ips = typed.ips.filter((_, i) => idx < 0 || prev.ips[i]!.interface === undefined || prev.ips[i]!.interface === idx);
  if (!ips.length) throw new CniError(Code.invalidConfig, `prevResult has no address for ${env.ifname}`);
  const pod = openPodNetns(env.netns!);

  const mode = modeOf(conf.mode);
  const plan = mode.addPlan({
    network: conf.name,
    bridge: conf.bridgeConf,
    attachment: { containerId: env.containerId, ifname: env.ifname },
    ifname: env.ifname,
    netnsPath: pod.path,
    ips,
    // ADD's routes all go via a gateway of the pod's (one per family); a chained plugin's other routes are not ours.
    routes: typed.routes.filter((r) => ips.some((i) => i.gateway && i.gateway.ip === r.gw?.ip)),
    // 0: unknown (a config without mtu and a prevResult older than 1.1.0), so not compared.
    mtu: conf.mtu ?? prev.interfaces[idx]?.mtu ?? 0,
    ipsToRouteViaHost: conf.ipsToRouteViaHost,
    facts: await mode.observe(conf.bridgeConf, false),
  });
  await checkPlan(plan, pod);
  stepDone('compare');
  if (hasIpam(conf)) await callIpam(env, conf, 'CHECK');
}
