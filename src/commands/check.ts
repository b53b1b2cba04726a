// CHECK: rebuild the plan ADD ran from prevResult and compare it with the live state; then
// IPAM CHECK. The first difference is the error. prevResult is outside text: it is parsed as
// strictly as an IPAM result, and a bad one is a config error (7).
import { CniError, Code } from '../errors.js';
import { checkPlan } from '../plan/check.js';
import { addInput, typedIpam } from '../plan/input.js';
import { modeOf } from '../plan/modes.js';
import { callIpam } from './ipam.js';
import { hasIpam, type CheckRequest } from './request.js';
import { stepDone } from '../log.js';

export async function check(req: CheckRequest): Promise<void> {
  const { conf, attachment, pod, prev } = req;
  const typed = typedIpam(prev, 'prevResult', Code.invalidConfig);
  const idx = prev.interfaces.findIndex((i) => i.name === attachment.ifname && i.sandbox);
  // This attachment's addresses, and the routes ADD made (all via the gateway; later chained
  // plugins may have added others, which are not ours to check).
  const ips = typed.ips.filter((_, i) => idx < 0 || prev.ips[i]!.interface === undefined || prev.ips[i]!.interface === idx);
  if (!ips.length) throw new CniError(Code.invalidConfig, `prevResult has no address for ${attachment.ifname}`);
  // ADD's routes all go via a gateway of the pod's (one per family); a chained plugin's other routes are not ours.
  const routes = typed.routes.filter((r) => ips.some((i) => i.gateway && i.gateway.ip === r.gw?.ip));
  const mode = modeOf(conf.mode);
  const facts = await mode.observe(conf.bridge, false);
  // mtu 0: unknown (a config without mtu and a prevResult older than 1.1.0), so not compared.
  const input = addInput(conf, attachment, pod.path, { ips, routes }, facts, conf.mtu ?? prev.interfaces[idx]?.mtu ?? 0);
  await checkPlan(mode.addPlan(input), pod);
  stepDone('compare');
  if (hasIpam(conf)) await callIpam(req, conf, 'CHECK');
}
