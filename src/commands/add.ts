// ADD: open the pod's namespace, ask IPAM for an address, build the mode's plan, run it. On any
// failure after IPAM answered, the plan rolls back what it made and the address goes back to
// IPAM: a failed ADD leaves nothing behind. An attachment that is already wired is refused
// before anything happens, so a repeated ADD never touches the running pod.
import { CniError, Code } from '../errors.js';
import type { Result } from '../cni/result.js';
import { crashPoint } from '../crash.js';
import { attachmentText } from '../ipam/allocator.js';
import { Batches, nodeHasLink } from '../net/ip.js';
import { execute } from '../plan/execute.js';
import { addInput, typedIpam } from '../plan/input.js';
import { modeOf } from '../plan/modes.js';
import { hostVethName } from '../plan/names.js';
import { log, stepDone } from '../log.js';
import { callIpam, ipamResult } from './ipam.js';
import type { AddRequest } from './request.js';

export async function add(req: AddRequest): Promise<Result> {
  const { conf, attachment, pod } = req;
  const veth = hostVethName(conf.name, attachment);
  if (nodeHasLink(veth)) {
    throw new CniError(
      Code.alreadyAttached,
      `${attachmentText(attachment)} is already attached to network ${conf.name} (its host veth ${veth} exists); DEL it first. Nothing was changed`,
    );
  }
  const mode = modeOf(conf.mode);
  log.info(`Read network configuration: network ${conf.name}, mode ${conf.mode}, IPAM ${conf.ipam.type}`);
  // The node's and the pod's ip processes start now and wait for their commands: their start-up
  // overlaps IPAM's work instead of following it.
  const batches = new Batches(pod);
  stepDone('ip processes');

  // The node's facts (and the MTU, when the config names none) are read while IPAM allocates; a
  // node fact in error fails the ADD before any plan runs.
  const [allocated, observed] = await Promise.allSettled([callIpam(req, conf, 'ADD'), mode.observe(conf.bridge, conf.mtu === undefined)]);
  if (allocated.status === 'rejected') {
    await batches.end();
    throw allocated.reason;
  }
  stepDone('IPAM');
  try {
    crashPoint('after IPAM ADD');
    const ipam = ipamResult(allocated.value, conf.ipam.type);
    const typed = typedIpam(ipam, `result of IPAM plugin ${conf.ipam.type}:`, Code.decode);
    log.info(`Plugin ${conf.ipam.type} returned ${typed.ips.map((i) => i.cidr.text).join(', ') || 'no address'}`);
    if (observed.status === 'rejected') throw observed.reason;
    // Both sides' processes must be running before the first change: a node batch run alone
    // (the pod's could not start) would leave a veth that the rollback, out of processes too, could not remove.
    batches.check();
    const input = addInput(conf, attachment, pod.path, typed, observed.value, conf.mtu ?? observed.value.mtu ?? 1500);
    await execute(mode.addPlan(input), pod, { batches });
    stepDone('plan');
    return { ...mode.result(input), dns: ipam.dns };
  } catch (err) {
    log.warn(`ADD failed, releasing the address: ${(err as Error).message}`);
    await callIpam(req, conf, 'DEL').catch((e: Error) => log.error(`IPAM DEL during rollback failed: ${e.message}`));
    throw err;
  } finally {
    await batches.end();
  }
}
