// Transparent mode, as AKS runs it: no bridge. The node owns a host route per pod address (/32,
// /128) through the pod's host veth (MAC aa:aa:aa:aa:aa:aa, proxy ARP on, a permanent neighbour
// entry per pod IPv6 address); the pod holds its addresses with their subnets' prefixes but no
// subnet route, and reaches everything through a link-local gateway per family (169.254.1.1, fe80::1234:5678:9abc), whose MAC is a permanent
// neighbour entry: every packet leaves through the node, in both families.
import type { Result, Route } from '../cni/result.js';
import type { Family } from '../net/address.js';
import { POD_NETNS_REF } from '../net/command.js';
import { hostRoute, type Cidr } from '../net/values.js';
import type { AddInput, DelInput } from './input.js';
import { DEFAULT, familiesOf, forwardingStep, neighText, podAddressStep, podIps, routeCmd, routeText } from './pod.js';
import { HOST_VETH_MAC, POD_GATEWAY, hostVethName, vethAlias } from './names.js';
import { masqDelSteps, masqSteps } from './masq.js';
import type { Expect, Plan, Step } from './plan.js';

export function transparentAddPlan(input: AddInput): Plan {
  const { ifname, mtu, network, attachment } = input;
  const ips = podIps(input, 'transparent');
  const cidrs = ips.map((i) => i.cidr);
  const families = familiesOf(ips);
  const veth = hostVethName(network, attachment);
  const mac = input.podMac;
  const hostRoutes = cidrs.map(hostRoute);
  const alias = vethAlias(network, attachment, mac);
  const gws = families.map((f) => POD_GATEWAY[f]);
  // The kernel's subnet route for each address (none for a /32 or /128).
  const subnets = cidrs.filter((c) => c.prefix < (c.family === 4 ? 32 : 128));
  const routes = podRoutes(input, families);

  const steps: Step[] = [
    {
      say: `Creating veth pair ${veth} (node side, MAC ${HOST_VETH_MAC}) and ${ifname} (inside ${input.netnsPath}, MAC ${mac}), MTU ${mtu}`,
      side: 'node',
      lifecycle: 'attachment',
      ip: [['link', 'add', 'name', veth, 'mtu', mtu, 'address', HOST_VETH_MAC, 'type', 'veth', 'peer', 'name', ifname, 'mtu', mtu, 'address', mac, 'netns', POD_NETNS_REF]],
      undo: [['link', 'del', 'dev', veth]],
      expect: [{ kind: 'link', side: 'node', name: veth, mac: HOST_VETH_MAC, up: true, mtu }],
    },
    {
      // The alias names the attachment, so GC can tell this network's veths from others'.
      say: `Setting link ${veth} up, alias ${alias}`,
      side: 'node',
      lifecycle: 'attachment',
      ip: [['link', 'set', 'dev', veth, 'up', 'alias', alias]],
    },
    {
      say: `Adding host route${hostRoutes.length > 1 ? 's' : ''} ${hostRoutes.map((r) => r.text).join(', ')} dev ${veth}: the node reaches the pod straight through its veth`,
      side: 'node',
      lifecycle: 'attachment',
      ip: hostRoutes.map((r) => routeCmd('add', r, undefined, veth)),
      expect: hostRoutes.map((dst) => ({ kind: 'route', side: 'node', dst, dev: veth })),
    },
  ];
  const v6 = cidrs.filter((c) => c.family === 6);
  if (v6.length) {
    // The node would have to solicit the pod from its veth's link-local address, which is still in
    // duplicate address detection for a second or two after ADD: a permanent entry needs none.
    steps.push({
      say: `Adding ${neighText(v6)} ${v6.map((c) => `${c.ip} -> ${mac}`).join(', ')} on ${veth}: the node reaches the pod's IPv6 address without neighbour discovery`,
      side: 'node',
      lifecycle: 'attachment',
      ip: v6.map((c) => ['neigh', 'add', c.ip, 'lladdr', mac, 'dev', veth, 'nud', 'permanent']),
      expect: v6.map((c) => ({ kind: 'neigh', side: 'node', dev: veth, ip: c.ip, mac })),
    });
  }
  if (families.includes(4)) {
    steps.push({
      say: `Enabling proxy ARP on ${veth}: the node answers the pod's ARP for ${POD_GATEWAY[4].ip}`,
      side: 'node',
      lifecycle: 'attachment',
      sysctl: [[`net.ipv4.conf.${veth}.proxy_arp`, '1']],
      expect: [{ kind: 'sysctl', side: 'node', key: `net.ipv4.conf.${veth}.proxy_arp`, value: '1' }],
    });
  }
  steps.push(podAddressStep(ifname, cidrs, mac, mtu, ''));
  if (subnets.length) {
    steps.push({
      say: `Removing the kernel's subnet route${subnets.length > 1 ? 's' : ''} ${subnets.map((c) => c.network).join(', ')} dev ${ifname}: even same-subnet traffic goes via the gateway`,
      side: 'pod',
      lifecycle: 'attachment',
      ip: subnets.map((c) => ['route', 'del', c.network, 'dev', ifname]),
    });
  }
  steps.push(
    {
      // IPv4 needs an on-link route to its gateway; IPv6 reaches a link-local next hop on the device named.
      say: `Adding routes ${[...(families.includes(4) ? [`${POD_GATEWAY[4].ip} dev ${ifname} scope link`] : []), ...routes.map((r) => routeText(r, POD_GATEWAY[r.family]))].join(', ')}`,
      side: 'pod',
      lifecycle: 'attachment',
      ip: [
        ...(families.includes(4) ? [['route', 'add', POD_GATEWAY[4].ip, 'dev', ifname, 'scope', 'link'] as const] : []),
        ...routes.map((r) => routeCmd('add', r, POD_GATEWAY[r.family], ifname)),
      ],
      expect: [
        ...(families.includes(4) ? [{ kind: 'route', side: 'pod', dst: hostRoute(POD_GATEWAY[4]), dev: ifname, scope: 'link' } as Expect] : []),
        ...routes.map((dst): Expect => ({ kind: 'route', side: 'pod', dst, dev: ifname, gw: POD_GATEWAY[dst.family].ip })),
      ],
    },
    {
      say: `Adding ${neighText(gws)} ${gws.map((g) => `${g.ip} -> ${HOST_VETH_MAC}`).join(', ')} on ${ifname}: the gateway is the host veth`,
      side: 'pod',
      lifecycle: 'attachment',
      ip: gws.map((g) => ['neigh', 'add', g.ip, 'lladdr', HOST_VETH_MAC, 'dev', ifname, 'nud', 'permanent']),
      expect: gws.map((g) => ({ kind: 'neigh', side: 'pod', dev: ifname, ip: g.ip, mac: HOST_VETH_MAC })),
    },
  );
  steps.push(...masqSteps(network, input.masq, cidrs, families, veth), forwardingStep(families, ''));
  return { netnsPath: input.netnsPath, steps };
}

/**
 * Every route the pod gets, each via its family's link-local gateway: the default route of each
 * family the pod has, then IPAM's routes and ipsToRouteViaHost of those families.
 */
function podRoutes(input: AddInput, families: readonly Family[]): Cidr[] {
  const routes: Cidr[] = families.map((f) => DEFAULT[f]);
  const add = (dst: Cidr) => {
    if (families.includes(dst.family) && !routes.some((r) => r.text === dst.text)) routes.push(dst);
  };
  for (const r of input.routes) add(r.dst);
  for (const ip of input.ipsToRouteViaHost) add(hostRoute(ip));
  return routes;
}

export function transparentResult(input: AddInput): Result {
  const { network, attachment, ifname } = input;
  const ips = podIps(input, 'transparent');
  return {
    interfaces: [
      { name: hostVethName(network, attachment), mac: HOST_VETH_MAC },
      { name: ifname, mac: input.podMac, sandbox: input.netnsPath, mtu: input.mtu },
    ],
    ips: ips.map((i) => ({ address: i.cidr.text, gateway: POD_GATEWAY[i.cidr.family].ip, interface: 1 })),
    routes: podRoutes(input, familiesOf(ips)).map((dst): Route => ({ dst: dst.text, gw: POD_GATEWAY[dst.family].ip })),
    dns: {},
  };
}

/** DEL: the host veth goes, and with it the container end and the host routes through it. */
export function transparentDelPlan({ network, attachment, masq, podIps }: DelInput): Plan {
  const veth = hostVethName(network, attachment);
  return {
    netnsPath: '',
    steps: [
      {
        say: `Deleting veth pair ${veth} (its peer and its host routes go with it)`,
        side: 'node',
        lifecycle: 'attachment',
        ip: [['link', 'del', 'dev', veth]],
        doneWhenGone: veth,
      },
      ...masqDelSteps(network, masq, podIps),
    ],
  };
}

