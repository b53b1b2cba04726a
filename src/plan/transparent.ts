// Transparent mode, as AKS runs it: no bridge. The node owns a /32 route per pod through the
// pod's host veth (MAC aa:aa:aa:aa:aa:aa, proxy ARP on); the pod holds its address with the
// subnet's prefix but no subnet route, and reaches everything through the link-local gateway
// 169.254.1.1, whose MAC is a permanent neighbour entry: every packet leaves through the node.
import { CniError, Code } from '../cni/errors.js';
import type { Result, Route } from '../cni/result.js';
import { parseCidr4 } from '../net/cidr.js';
import { HOST_VETH_MAC, POD_GATEWAY, containerMac, hostVethName } from './names.js';
import type { Plan, Step } from './plan.js';

export interface Attachment {
  network: string;
  containerId: string;
  ifname: string;
}

export interface TransparentInput extends Attachment {
  netns: string;
  /** The pod address with the subnet's prefix, as IPAM gave it: "10.220.2.11/24". */
  address: string;
  /** IPAM routes; each goes via the link-local gateway, whatever gateway IPAM named. */
  routes: Route[];
  mtu: number;
  ipsToRouteViaHost: string[];
}

export function transparentAddPlan(input: TransparentInput): Plan {
  const { ifname, netns, mtu } = input;
  const cidr = parseCidr4(input.address);
  if (!cidr) {
    throw new CniError(Code.unsupportedField, `transparent mode supports IPv4 pod addresses only; IPAM gave ${input.address}`);
  }
  const veth = hostVethName(input.network, input.containerId, ifname);
  const mac = containerMac(input.network, input.containerId, ifname);
  const gw = POD_GATEWAY;
  const extraRoutes = podRoutes(input).filter((r) => r.dst !== '0.0.0.0/0');

  const steps: Step[] = [
    {
      say: `Creating veth pair ${veth} (node side, MAC ${HOST_VETH_MAC}) and ${ifname} (inside ${netns}, MAC ${mac}), MTU ${mtu}`,
      side: 'host',
      ip: [`link add ${veth} mtu ${mtu} address ${HOST_VETH_MAC} type veth peer name ${ifname} mtu ${mtu} address ${mac} netns ${netns}`],
      undo: [`link del ${veth}`],
      expect: [{ kind: 'link', side: 'host', name: veth, mac: HOST_VETH_MAC, up: true, mtu }],
    },
    {
      // The alias names the attachment, so GC can tell this network's veths from others'.
      say: `Setting link ${veth} up, alias ${vethAlias(input)}`,
      side: 'host',
      ip: [`link set ${veth} up alias ${vethAlias(input)}`],
    },
    {
      say: `Adding host route ${cidr.ip}/32 dev ${veth}: the node reaches the pod straight through its veth`,
      side: 'host',
      ip: [`route add ${cidr.ip}/32 dev ${veth}`],
      expect: [{ kind: 'route', side: 'host', dst: `${cidr.ip}/32`, dev: veth }],
    },
    {
      say: `Enabling proxy ARP on ${veth} (the node answers the pod's ARP for ${gw}) and IPv4 forwarding on the node`,
      side: 'host',
      sysctl: [
        [`net.ipv4.conf.${veth}.proxy_arp`, '1'],
        ['net.ipv4.ip_forward', '1'],
      ],
      expect: [
        { kind: 'sysctl', side: 'host', key: `net.ipv4.conf.${veth}.proxy_arp`, value: '1' },
        { kind: 'sysctl', side: 'host', key: 'net.ipv4.ip_forward', value: '1' },
      ],
    },
    {
      say: `Adding IP address ${input.address} to ${ifname} and setting ${ifname} and lo up`,
      side: 'container',
      ip: [`link set lo up`, `link set ${ifname} up`, `addr add ${input.address} dev ${ifname}`],
      expect: [
        { kind: 'link', side: 'container', name: ifname, mac, up: true, mtu },
        { kind: 'addr', side: 'container', dev: ifname, address: input.address },
      ],
    },
    {
      say: `Removing the kernel's subnet route ${cidr.network} dev ${ifname}: even same-subnet traffic goes via the gateway`,
      side: 'container',
      ip: [`route del ${cidr.network} dev ${ifname}`],
    },
    {
      say: `Adding route ${gw} dev ${ifname} scope link and default via ${gw}`,
      side: 'container',
      ip: [`route add ${gw} dev ${ifname} scope link`, `route add default via ${gw} dev ${ifname}`],
      expect: [
        { kind: 'route', side: 'container', dst: gw, dev: ifname, scope: 'link' },
        { kind: 'route', side: 'container', dst: 'default', dev: ifname, gw },
      ],
    },
    {
      say: `Adding static ARP entry ${gw} -> ${HOST_VETH_MAC} on ${ifname}: the gateway is the host veth`,
      side: 'container',
      ip: [`neigh add ${gw} lladdr ${HOST_VETH_MAC} dev ${ifname} nud permanent`],
      expect: [{ kind: 'neigh', side: 'container', dev: ifname, ip: gw, mac: HOST_VETH_MAC }],
    },
  ];
  if (extraRoutes.length) {
    steps.push({
      say: `Adding routes ${extraRoutes.map((r) => r.dst).join(', ')} via ${gw}`,
      side: 'container',
      ip: extraRoutes.map((r) => `route add ${r.dst} via ${gw} dev ${ifname}`),
      expect: extraRoutes.map((r) => ({ kind: 'route', side: 'container', dst: r.dst, dev: ifname, gw })),
    });
  }
  return { netns, steps };
}

/** Every route the pod gets, all via the link-local gateway; the default route always. */
function podRoutes(input: TransparentInput): Route[] {
  const routes: Route[] = [{ dst: '0.0.0.0/0', gw: POD_GATEWAY }];
  const add = (dst: string) => {
    if (!routes.some((r) => r.dst === dst)) routes.push({ dst, gw: POD_GATEWAY });
  };
  for (const r of input.routes) if (!r.dst.includes(':')) add(normaliseDst(r.dst));
  for (const ip of input.ipsToRouteViaHost) add(`${ip}/32`);
  return routes;
}

// `ip route` prints a host route without its /32, and a network as given.
function normaliseDst(dst: string): string {
  return dst.includes('/') ? dst : `${dst}/32`;
}

export function transparentResult(input: TransparentInput): Result {
  const veth = hostVethName(input.network, input.containerId, input.ifname);
  return {
    interfaces: [
      { name: veth, mac: HOST_VETH_MAC },
      { name: input.ifname, mac: containerMac(input.network, input.containerId, input.ifname), sandbox: input.netns, mtu: input.mtu },
    ],
    ips: [{ address: input.address, gateway: POD_GATEWAY, interface: 1 }],
    routes: podRoutes(input),
    dns: {},
  };
}

/** The host veth's alias: which attachment it belongs to. */
export function vethAlias(a: Attachment): string {
  return `${ALIAS_PREFIX}${a.network}:${a.containerId}:${a.ifname}`;
}
export const ALIAS_PREFIX = 'vnet:';

/** DEL: the host veth goes, and with it the container end and the /32 route through it. */
export function transparentDelPlan(a: Attachment, netns = ''): Plan {
  const veth = hostVethName(a.network, a.containerId, a.ifname);
  return {
    netns,
    steps: [{ say: `Deleting veth pair ${veth} (its peer and its /32 route go with it)`, side: 'host', ip: [`link del ${veth}`] }],
  };
}
