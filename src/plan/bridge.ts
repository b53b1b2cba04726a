// Bridge mode, as kubenet runs it (seed 000): the node holds a Linux bridge (`cbr0`) with the pod
// range's gateway address; each pod's host veth is a port of it, the pod keeps its subnet route
// and reaches everything else through the gateway, which is the node. The bridge and its
// address are shared: ensured by every ADD (created when missing, accepted when present, never
// undone); the veth and the bridge's permanent neighbour entry for the pod belong to the pod.
// (Azure's `azure0` with the uplink moved onto it is not built yet: the config refuses `uplink`.)
import { CniError, Code } from '../cni/errors.js';
import type { Result, Route } from '../cni/result.js';
import type { Attachment } from '../config/attachments.js';
import { POD_NETNS_REF, type IpCmd } from '../net/command.js';
import { hostRoute, toCidr, toDst, type Addr, type Cidr, type IfName } from '../net/values.js';
import type { AddInput, DelInput, PodIp } from './input.js';
import { bridgeMac, containerMac, hostVethMac, hostVethName, vethAlias } from './names.js';
import type { Plan, Step } from './plan.js';

const DEFAULT4 = toDst('0.0.0.0/0')!;
const LO = 'lo' as IfName;

function podIp(input: AddInput): PodIp & { gateway: Addr } {
  const ip = input.ips.find((i) => i.cidr.family === 4);
  if (!ip) throw new CniError(Code.unsupportedField, `bridge mode needs an IPv4 address; IPAM gave ${input.ips.map((i) => i.cidr.text).join(', ') || 'none'}`);
  if (!ip.gateway) throw new CniError(Code.invalidConfig, `bridge mode needs a gateway: IPAM gave ${ip.cidr.text} without one (set ipam.ranges[…].gateway)`);
  return { ...ip, gateway: ip.gateway };
}

export function bridgeAddPlan(input: AddInput): Plan {
  const { ifname, mtu, network, attachment } = input;
  const br = input.bridge.name;
  const { cidr, gateway } = podIp(input);
  const veth = hostVethName(network, attachment);
  const vethMac = hostVethMac(network, attachment);
  const mac = containerMac(network, attachment);
  const gwCidr = toCidr(`${gateway.ip}/${cidr.prefix}`)!;
  const brMac = bridgeMac(network, br);

  const steps: Step[] = [
    {
      say: `Ensuring bridge ${br} (created once per node with the pinned MAC ${brMac}; shared by every pod, never removed)`,
      side: 'host',
      lifecycle: 'shared',
      ip: [['link', 'add', 'name', br, 'address', brMac, 'type', 'bridge'], ['link', 'set', 'dev', br, 'up']],
      // Another ADD may have made it a moment ago: that is what "ensured" means.
      tolerate: /File exists/,
      expect: [{ kind: 'link', side: 'host', name: br, up: true }],
    },
  ];
  if (input.bridge.isGateway) {
    steps.push({
      say: `Ensuring ${br} holds the pods' gateway ${gwCidr.text}: the node is every pod's next hop`,
      side: 'host',
      lifecycle: 'shared',
      ip: [['addr', 'replace', gwCidr.text, 'dev', br]],
      expect: [{ kind: 'addr', side: 'host', dev: br, address: gwCidr }],
    });
  }
  const port: IpCmd[] = [['link', 'set', 'dev', veth, 'master', br, 'up', 'alias', vethAlias(network, attachment)]];
  if (input.bridge.hairpin) port.push(['link', 'set', 'dev', veth, 'type', 'bridge_slave', 'hairpin', 'on']);
  steps.push(
    {
      say: `Creating veth pair ${veth} (node side, MAC ${vethMac}) and ${ifname} (inside ${input.netnsPath}, MAC ${mac}), MTU ${mtu}`,
      side: 'host',
      lifecycle: 'attachment',
      ip: [['link', 'add', 'name', veth, 'mtu', mtu, 'address', vethMac, 'type', 'veth', 'peer', 'name', ifname, 'mtu', mtu, 'address', mac, 'netns', POD_NETNS_REF]],
      undo: [['link', 'del', 'dev', veth]],
      expect: [{ kind: 'link', side: 'host', name: veth, mac: vethMac, up: true, mtu, master: br }],
    },
    {
      say: `Attaching ${veth} to ${br}${input.bridge.hairpin ? ' with hairpin on (a pod can reach itself through a service)' : ''} and setting it up`,
      side: 'host',
      lifecycle: 'attachment',
      ip: port,
    },
    {
      say: `Adding static ARP entry ${cidr.ip} -> ${mac} on ${br}: the node never has to ask where the pod is`,
      side: 'host',
      lifecycle: 'attachment',
      ip: [['neigh', 'replace', cidr.ip, 'lladdr', mac, 'dev', br, 'nud', 'permanent']],
      undo: [['neigh', 'del', cidr.ip, 'dev', br]],
      expect: [{ kind: 'neigh', side: 'host', dev: br, ip: cidr.ip, mac }],
    },
    {
      say: `Adding IP address ${cidr.text} to ${ifname} and setting ${ifname} and lo up: the pod is on ${br}'s subnet`,
      side: 'container',
      lifecycle: 'attachment',
      ip: [
        ['link', 'set', 'dev', LO, 'up'],
        ['link', 'set', 'dev', ifname, 'up'],
        ['addr', 'add', cidr.text, 'dev', ifname],
      ],
      expect: [
        { kind: 'link', side: 'container', name: ifname, mac, up: true, mtu },
        { kind: 'addr', side: 'container', dev: ifname, address: cidr },
      ],
    },
  );
  const routes = podRoutes(input, gateway);
  steps.push({
    say: `Adding routes ${routes.map((r) => r.dst.text).join(', ')} via ${gateway.ip}`,
    side: 'container',
    lifecycle: 'attachment',
    ip: routes.map((r) => (r.dst.prefix === 0 ? ['route', 'add', 'default', 'via', r.gw.ip, 'dev', ifname] : ['route', 'add', r.dst.text, 'via', r.gw.ip, 'dev', ifname])),
    expect: routes.map((r) => ({ kind: 'route', side: 'container', dst: r.dst, dev: ifname, gw: r.gw.ip })),
  });
  if (input.bridge.isGateway) {
    steps.push({
      say: 'Enabling IPv4 forwarding on the node (node-wide; it stays on): the node routes for its pods',
      side: 'host',
      lifecycle: 'shared',
      sysctl: [['net.ipv4.ip_forward', '1']],
      expect: [{ kind: 'sysctl', side: 'host', key: 'net.ipv4.ip_forward', value: '1' }],
    });
  }
  return { netnsPath: input.netnsPath, steps };
}

/** The pod's IPv4 routes: the default via the gateway, IPAM's (via their gw or the gateway), ipsToRouteViaHost via the node. */
function podRoutes(input: AddInput, gateway: Addr): { dst: Cidr; gw: Addr }[] {
  const out: { dst: Cidr; gw: Addr }[] = [{ dst: DEFAULT4, gw: gateway }];
  const add = (dst: Cidr, gw: Addr) => {
    if (dst.family === 4 && !out.some((r) => r.dst.text === dst.text)) out.push({ dst, gw });
  };
  for (const r of input.routes) add(r.dst, r.gw?.family === 4 ? r.gw : gateway);
  // With isGateway the gateway is the node itself; that is where node-local services listen.
  for (const ip of input.ipsToRouteViaHost) add(hostRoute(ip), gateway);
  return out;
}

export function bridgeResult(input: AddInput): Result {
  const { network, attachment, ifname } = input;
  const br = input.bridge.name;
  const { cidr, gateway } = podIp(input);
  return {
    interfaces: [
      { name: br, mac: bridgeMac(network, br) },
      { name: hostVethName(network, attachment), mac: hostVethMac(network, attachment) },
      { name: ifname, mac: containerMac(network, attachment), sandbox: input.netnsPath, mtu: input.mtu },
    ],
    ips: [{ address: cidr.text, gateway: gateway.ip, interface: 2 }],
    routes: podRoutes(input, gateway).map((r): Route => ({ dst: r.dst.text, gw: r.gw.ip })),
    dns: {},
  };
}

/** DEL: the veth (the bridge port goes with it) and the bridge's neighbour entries for the pod. */
export function bridgeDelPlan(d: DelInput): Plan {
  const veth = hostVethName(d.network, d.attachment);
  const br = d.bridge.name;
  return {
    netnsPath: '',
    steps: [
      {
        say: `Deleting veth pair ${veth} (its port on ${br} goes with it)`,
        side: 'host',
        lifecycle: 'attachment',
        ip: [['link', 'del', 'dev', veth]],
      },
      ...(d.podIps.length
        ? [
            {
              say: `Deleting the static ARP entries ${d.podIps.map((a) => a.ip).join(', ')} on ${br}`,
              side: 'host' as const,
              lifecycle: 'attachment' as const,
              ip: d.podIps.map((a): IpCmd => ['neigh', 'del', a.ip, 'dev', br]),
            },
          ]
        : []),
    ],
  };
}

export const bridgeNeighbourMac = (network: string, a: Attachment) => containerMac(network, a);
