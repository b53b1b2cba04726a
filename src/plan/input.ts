// What a mode's plan is built from: the attachment, the pod's namespace path, and IPAM's answer
// turned into typed values. An IPAM result (a delegated plugin's stdout) and a prevResult are
// outside text: every address, gateway and route is parsed strictly here, or the call fails
// with `code` naming the field, before any plan exists.
import type { Attachment } from '../config/attachments.js';
import type { Result } from '../cni/result.js';
import type { NodeFacts } from '../net/facts.js';
import { addrOf, cidrOf, dstOf, type Addr, type Cidr, type IfName } from '../net/values.js';

export interface PodIp {
  cidr: Cidr;
  gateway?: Addr;
}
export interface PodRoute {
  dst: Cidr;
  gw?: Addr;
}

/** The bridge-mode fields of the config, typed. */
export interface BridgeConf {
  name: IfName;
  isGateway: boolean;
  hairpin: boolean;
  /** The bridge in promiscuous mode (the reference bridge's promiscMode). */
  promisc?: boolean;
  /** Azure's layout: this NIC is enslaved to the bridge and its addresses and routes move onto it. */
  uplink?: IfName;
  /** Masquerade traffic from the pods to anything outside ipMasqExclude (default: the pod subnet). */
  ipMasq: boolean;
  ipMasqExclude?: Cidr[];
}

export interface AddInput {
  network: string;
  bridge: BridgeConf;
  attachment: Attachment;
  ifname: IfName;
  /** The runtime's CNI_NETNS text: the result's sandbox, the log, explain. */
  netnsPath: string;
  ips: PodIp[];
  routes: PodRoute[];
  mtu: number;
  ipsToRouteViaHost: Addr[];
  /** What the mode observed on the node before planning (bridge mode). */
  facts?: NodeFacts;
}

/** What DEL knows: names, and the pod's addresses when prevResult had them. */
export interface DelInput {
  network: string;
  attachment: Attachment;
  bridge: BridgeConf;
  podIps: Addr[];
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
