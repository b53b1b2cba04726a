// Transparent mode, as AKS runs it: no bridge. The node owns a /32 route per pod through the
// pod's host veth (MAC aa:aa:aa:aa:aa:aa, proxy ARP on); the pod holds its address with the
// subnet's prefix but no subnet route, and reaches everything through the link-local gateway
// 169.254.1.1, whose MAC is a permanent neighbour entry: every packet leaves through the node.
import type { Result, Route } from '../cni/result.js';
import { POD_NETNS_REF } from '../net/command.js';
import { hostRoute, type Cidr } from '../net/values.js';
import type { AddInput, DelInput } from './input.js';
import { DEFAULT4, forwardingStep, podAddressStep, podIpv4 } from './pod.js';
import { HOST_VETH_MAC, POD_GATEWAY, containerMac, hostVethName, vethAlias } from './names.js';
import type { Plan, Step } from './plan.js';

const podIp = (input: AddInput) => podIpv4(input, 'transparent');

export function transparentAddPlan(input: AddInput): Plan {
  const { ifname, mtu, network, attachment } = input;
  const cidr = podIp(input).cidr;
  const veth = hostVethName(network, attachment);
  const mac = containerMac(network, attachment);
  const gw = POD_GATEWAY.ip;
  const host32 = hostRoute(cidr);
  const extra = podRoutes(input).filter((r) => r.prefix !== 0);
  const alias = vethAlias(network, attachment);

  const steps: Step[] = [
    {
      say: `Creating veth pair ${veth} (node side, MAC ${HOST_VETH_MAC}) and ${ifname} (inside ${input.netnsPath}, MAC ${mac}), MTU ${mtu}`,
      side: 'host',
      lifecycle: 'attachment',
      ip: [['link', 'add', 'name', veth, 'mtu', mtu, 'address', HOST_VETH_MAC, 'type', 'veth', 'peer', 'name', ifname, 'mtu', mtu, 'address', mac, 'netns', POD_NETNS_REF]],
      undo: [['link', 'del', 'dev', veth]],
      expect: [{ kind: 'link', side: 'host', name: veth, mac: HOST_VETH_MAC, up: true, mtu }],
    },
    {
      // The alias names the attachment, so GC can tell this network's veths from others'.
      say: `Setting link ${veth} up, alias ${alias}`,
      side: 'host',
      lifecycle: 'attachment',
      ip: [['link', 'set', 'dev', veth, 'up', 'alias', alias]],
    },
    {
      say: `Adding host route ${host32.text} dev ${veth}: the node reaches the pod straight through its veth`,
      side: 'host',
      lifecycle: 'attachment',
      ip: [['route', 'add', host32.text, 'dev', veth]],
      expect: [{ kind: 'route', side: 'host', dst: host32, dev: veth }],
    },
    {
      say: `Enabling proxy ARP on ${veth}: the node answers the pod's ARP for ${gw}`,
      side: 'host',
      lifecycle: 'attachment',
      sysctl: [[`net.ipv4.conf.${veth}.proxy_arp`, '1']],
      expect: [{ kind: 'sysctl', side: 'host', key: `net.ipv4.conf.${veth}.proxy_arp`, value: '1' }],
    },
    podAddressStep(ifname, cidr, mac, mtu, ''),
    {
      say: `Removing the kernel's subnet route ${cidr.network} dev ${ifname}: even same-subnet traffic goes via the gateway`,
      side: 'container',
      lifecycle: 'attachment',
      ip: [['route', 'del', cidr.network, 'dev', ifname]],
    },
    {
      say: `Adding route ${gw} dev ${ifname} scope link and default via ${gw}`,
      side: 'container',
      lifecycle: 'attachment',
      ip: [
        ['route', 'add', gw, 'dev', ifname, 'scope', 'link'],
        ['route', 'add', 'default', 'via', gw, 'dev', ifname],
      ],
      expect: [
        { kind: 'route', side: 'container', dst: hostRoute(POD_GATEWAY), dev: ifname, scope: 'link' },
        { kind: 'route', side: 'container', dst: DEFAULT4, dev: ifname, gw },
      ],
    },
    {
      say: `Adding static ARP entry ${gw} -> ${HOST_VETH_MAC} on ${ifname}: the gateway is the host veth`,
      side: 'container',
      lifecycle: 'attachment',
      ip: [['neigh', 'add', gw, 'lladdr', HOST_VETH_MAC, 'dev', ifname, 'nud', 'permanent']],
      expect: [{ kind: 'neigh', side: 'container', dev: ifname, ip: gw, mac: HOST_VETH_MAC }],
    },
  ];
  if (extra.length) {
    steps.push({
      say: `Adding routes ${extra.map((r) => r.text).join(', ')} via ${gw}`,
      side: 'container',
      lifecycle: 'attachment',
      ip: extra.map((r) => ['route', 'add', r.text, 'via', gw, 'dev', ifname]),
      expect: extra.map((r) => ({ kind: 'route', side: 'container', dst: r, dev: ifname, gw })),
    });
  }
  steps.push(forwardingStep(''));
  return { netnsPath: input.netnsPath, steps };
}

/** Every IPv4 route the pod gets, all via the link-local gateway; the default route first. */
function podRoutes(input: AddInput): Cidr[] {
  const routes: Cidr[] = [DEFAULT4];
  const add = (dst: Cidr) => {
    if (dst.family === 4 && !routes.some((r) => r.text === dst.text)) routes.push(dst);
  };
  for (const r of input.routes) add(r.dst);
  for (const ip of input.ipsToRouteViaHost) add(hostRoute(ip));
  return routes;
}

export function transparentResult(input: AddInput): Result {
  const { network, attachment, ifname } = input;
  return {
    interfaces: [
      { name: hostVethName(network, attachment), mac: HOST_VETH_MAC },
      { name: ifname, mac: containerMac(network, attachment), sandbox: input.netnsPath, mtu: input.mtu },
    ],
    ips: [{ address: podIp(input).cidr.text, gateway: POD_GATEWAY.ip, interface: 1 }],
    routes: podRoutes(input).map((dst): Route => ({ dst: dst.text, gw: POD_GATEWAY.ip })),
    dns: {},
  };
}

/** DEL: the host veth goes, and with it the container end and the /32 route through it. */
export function transparentDelPlan({ network, attachment }: DelInput): Plan {
  const veth = hostVethName(network, attachment);
  return {
    netnsPath: '',
    steps: [
      {
        say: `Deleting veth pair ${veth} (its peer and its /32 route go with it)`,
        side: 'host',
        lifecycle: 'attachment',
        ip: [['link', 'del', 'dev', veth]],
      },
    ],
  };
}
