// ADD: ask IPAM for an address, build the mode's plan, run it. On any failure the plan rolls
// itself back and the address goes back to IPAM: a failed ADD leaves nothing behind.
import { existsSync } from 'node:fs';
import type { CniEnv } from '../cni/env.js';
import { CniError, Code } from '../cni/errors.js';
import type { Result } from '../cni/result.js';
import type { NetConf } from '../config/netconf.js';
import { defaultRouteInterface, linkMtu } from '../net/ip.js';
import { execute } from '../plan/execute.js';
import { transparentAddPlan, transparentResult } from '../plan/transparent.js';
import { log } from '../log.js';
import { callIpam } from './ipam.js';

export async function add(env: CniEnv, conf: NetConf): Promise<Result> {
  const netns = env.netns!;
  // Checked before IPAM so that a bad path allocates nothing.
  if (!existsSync(netns)) throw new CniError(Code.unknownContainer, `container network namespace ${netns} does not exist`);
  if (!conf.ipam) throw new CniError(Code.invalidConfig, 'invalid network config: ipam: required for ADD');
  log.info(`Read network configuration: network ${conf.name}, mode ${conf.mode}, IPAM ${conf.ipam.type}`);

  // The MTU look-up (a process, when the config names no MTU) runs while IPAM allocates.
  const [mtuLookup, allocated] = await Promise.allSettled([conf.mtu ?? defaultMtu(), callIpam(env, conf, 'ADD')]);
  if (allocated.status === 'rejected') throw allocated.reason;
  const ipam = allocated.value!;
  log.info(`Plugin ${conf.ipam.type} returned ${ipam.ips.map((i) => i.address).join(', ') || 'no address'}`);
  try {
    if (mtuLookup.status === 'rejected') throw mtuLookup.reason;
    const mtu = mtuLookup.value;
    const ip = ipam.ips.find((i) => !i.address.includes(':'));
    if (!ip) throw new CniError(Code.unsupportedField, `IPAM ${conf.ipam.type} returned no IPv4 address; transparent mode needs one`);
    const input = {
      network: conf.name,
      containerId: env.containerId,
      ifname: env.ifname,
      netns,
      address: ip.address,
      routes: ipam.routes,
      mtu,
      ipsToRouteViaHost: conf.ipsToRouteViaHost,
    };
    await execute(transparentAddPlan(input));
    return { ...transparentResult(input), dns: ipam.dns };
  } catch (err) {
    log.warn(`ADD failed, releasing the address: ${(err as Error).message}`);
    await callIpam(env, conf, 'DEL').catch((e: Error) => log.error(`IPAM DEL during rollback failed: ${e.message}`));
    throw err;
  }
}

/** The MTU of the node's default-route interface, 1500 if it has none. */
async function defaultMtu(): Promise<number> {
  const dev = defaultRouteInterface();
  const mtu = dev ? await linkMtu(dev) : undefined;
  log.info(`MTU ${mtu ?? 1500}${dev ? ` (from ${dev}, the default route's interface)` : ' (no default route)'}`);
  return mtu ?? 1500;
}
