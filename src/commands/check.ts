// CHECK: rebuild the plan ADD ran from prevResult and compare it with the live state; then
// IPAM CHECK. The first difference is the error.
import { existsSync } from 'node:fs';
import type { CniEnv } from '../cni/env.js';
import { CniError, Code } from '../cni/errors.js';
import { parseResult } from '../cni/result.js';
import type { NetConf } from '../config/netconf.js';
import { checkPlan } from '../plan/check.js';
import { POD_GATEWAY } from '../plan/names.js';
import { transparentAddPlan } from '../plan/transparent.js';
import { callIpam } from './ipam.js';

export async function check(env: CniEnv, conf: NetConf): Promise<void> {
  if (conf.prevResult === undefined) throw new CniError(Code.invalidConfig, 'CHECK needs prevResult: none in the network config');
  const prev = parseResult(conf.prevResult, 'prevResult');
  const netns = env.netns!;
  const idx = prev.interfaces.findIndex((i) => i.name === env.ifname && i.sandbox);
  const ip = prev.ips.find((i) => !i.address.includes(':') && (idx < 0 || i.interface === undefined || i.interface === idx));
  if (!ip) throw new CniError(Code.invalidConfig, `prevResult has no IPv4 address for ${env.ifname}`);
  if (!existsSync(netns)) throw new CniError(Code.unknownContainer, `container network namespace ${netns} does not exist`);

  const plan = transparentAddPlan({
    network: conf.name,
    containerId: env.containerId,
    ifname: env.ifname,
    netns,
    address: ip.address,
    routes: prev.routes.filter((r) => r.gw === POD_GATEWAY),
    // 0: unknown (a config without mtu and a prevResult older than 1.1.0), so not compared.
    mtu: conf.mtu ?? prev.interfaces[idx]?.mtu ?? 0,
    ipsToRouteViaHost: conf.ipsToRouteViaHost,
  });
  await checkPlan(plan);
  await callIpam(env, conf, 'CHECK');
}
