// What a mode's plan is built from: the attachment, the pod's namespace path, and IPAM's answer
// turned into typed values. An IPAM result (a delegated plugin's stdout) and a prevResult are
// outside text: every address, gateway and route is parsed strictly here, or the call fails
// with `code` naming the field, before any plan exists.
import type { Attachment } from '../config/attachments.js';
import type { BridgeConf, MasqConf, NetConf } from '../config/netconf.js';
import type { Result } from '../cni/result.js';
import type { NodeFacts } from '../net/facts.js';
import { addrOf, cidrOf, dstOf, type Addr, type Cidr, type IfName, type Mac } from '../net/values.js';
import { containerMac } from './names.js';

export interface PodIp {
  cidr: Cidr;
  gateway?: Addr;
}
interface PodRoute {
  dst: Cidr;
  gw?: Addr;
}

export interface AddInput {
  network: string;
  attachment: Attachment;
  /** The attachment's interface name, typed (CNI_IFNAME's rules). */
  ifname: IfName;
  /** The runtime's CNI_NETNS text: the result's sandbox, the log, explain. */
  netnsPath: string;
  /** The pod's MAC: the runtime's (runtimeConfig.mac), else derived from the attachment. */
  podMac: Mac;
  bridge: BridgeConf;
  masq?: MasqConf;
  ips: PodIp[];
  routes: PodRoute[];
  mtu: number;
  ipsToRouteViaHost: Addr[];
  /** What the mode observed on the node before planning (bridge mode). */
  facts?: NodeFacts;
}

/** What DEL knows: names, and what the node marks as the pod's (its MAC, its addresses; never prevResult's). */
export interface DelInput {
  network: string;
  attachment: Attachment;
  podMac: Mac;
  bridge: BridgeConf;
  masq?: MasqConf;
  podIps: Addr[];
}

/** The one way a plan's input is made (ADD, CHECK, explain, the snapshot's warm-up): the config's part, then the call's. */
export function addInput(
  conf: NetConf,
  attachment: Attachment & { ifname: IfName },
  netnsPath: string,
  ipam: { ips: PodIp[]; routes: PodRoute[] },
  facts: NodeFacts | undefined,
  mtu: number,
): AddInput {
  const podMac = conf.podMac ?? containerMac(conf.name, attachment);
  return { network: conf.name, bridge: conf.bridge, masq: conf.masq, ipsToRouteViaHost: conf.ipsToRouteViaHost, attachment, ifname: attachment.ifname, netnsPath, podMac, ...ipam, mtu, facts };
}

export function delInput(conf: NetConf, attachment: Attachment, podMac: Mac, podIps: Addr[]): DelInput {
  return { network: conf.name, bridge: conf.bridge, masq: conf.masq, attachment, podMac, podIps };
}

/** IPAM's ips and routes, parsed strictly. `what`: "IPAM result" or "prevResult". */
export function typedIpam(r: Pick<Result, 'ips' | 'routes'>, what: string, code: number): { ips: PodIp[]; routes: PodRoute[] } {
  const ips = r.ips.map((ip, i) => ({
    cidr: cidrOf(`${what} ips[${i}].address`, ip.address, code),
    gateway: ip.gateway === undefined ? undefined : addrOf(`${what} ips[${i}].gateway`, ip.gateway, code),
  }));
  const routes = r.routes.map((rt, i) => ({
    dst: dstOf(`${what} routes[${i}].dst`, rt.dst, code),
    gw: rt.gw === undefined ? undefined : addrOf(`${what} routes[${i}].gw`, rt.gw, code),
  }));
  return { ips, routes };
}
