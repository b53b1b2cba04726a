// Bridge mode, as kubenet runs it (seed 000): the node holds a Linux bridge (`cbr0`) with the pod
// range's gateway address; each pod's host veth is a port of it, the pod keeps its subnet route
// and reaches everything else through the gateway, which is the node. The bridge and its
// address are shared: ensured by every ADD (created when missing, accepted when present, never
// undone); the veth and the bridge's permanent neighbour entry for the pod belong to the pod.
//
// Azure's layout (seed 001), with `uplink`: the bridge (`azure0`) takes the NIC's MAC, the NIC
// becomes its port and its addresses and routes (default included) move onto the bridge, once,
// by the first ADD; later ADDs find it done (node facts, read before planning). The pods are then
// on the VNet's L2 and route via the VNet's gateway. Should the move fail half-way, the NIC gets
// its addresses and routes back; once done it is never undone (the node's connectivity is on it).
import { CniError, Code } from '../cni/errors.js';
import type { Result, Route } from '../cni/result.js';
import { POD_NETNS_REF, type IpCmd } from '../net/command.js';
import { hostRoute, toCidr, type Addr, type Cidr, type IfName } from '../net/values.js';
import type { AddInput, DelInput, PodIp } from './input.js';
import { DEFAULT4, forwardingStep, podAddressStep, podIpv4 } from './pod.js';
import { bridgeMac, containerMac, hostVethMac, hostVethName, vethAlias } from './names.js';
import type { Expect, Plan, Step } from './plan.js';
import type { NodeFacts, UplinkRoute } from '../net/facts.js';
import { NFT_TABLE, addPod, delPod, ensureMasquerade, masqNames } from '../net/nft.js';

function podIp(input: AddInput): PodIp & { gateway: Addr } {
  const ip = podIpv4(input, 'bridge');
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
  const up = uplinkFacts(input);
  // Pinned: to the uplink's MAC when there is one (as Azure does), else one of our own.
  const brMac = up?.mac ?? bridgeMac(network, br);

  const steps: Step[] = [
    {
      say: `Ensuring bridge ${br} (created once per node with the pinned MAC ${brMac}; shared by every pod, never removed)`,
      side: 'host',
      lifecycle: 'shared',
      ip: [...(input.facts?.bridgeExists ? [] : [['link', 'add', 'name', br, 'address', brMac, 'type', 'bridge'] as IpCmd]), ['link', 'set', 'dev', br, 'up']],
      // Another ADD may have made it a moment ago: that is what "ensured" means.
      tolerate: /File exists/,
      expect: [{ kind: 'link', side: 'host', name: br, up: true }],
    },
  ];
  if (up) steps.push(...moveUplink(br, up));
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
    podAddressStep(ifname, cidr, mac, mtu, `: the pod is on ${br}'s subnet`),
  );
  const routes = podRoutes(input, gateway, up?.addrs.find((a) => a.network === cidr.network) ?? gateway);
  steps.push({
    say: `Adding routes ${routes.map((r) => `${r.dst.prefix === 0 ? 'default' : r.dst.text} via ${r.gw.ip}`).join(', ')}`,
    side: 'container',
    lifecycle: 'attachment',
    ip: routes.map((r) => (r.dst.prefix === 0 ? ['route', 'add', 'default', 'via', r.gw.ip, 'dev', ifname] : ['route', 'add', r.dst.text, 'via', r.gw.ip, 'dev', ifname])),
    expect: routes.map((r) => ({ kind: 'route', side: 'container', dst: r.dst, dev: ifname, gw: r.gw.ip })),
  });
  if (input.bridge.ipMasq) {
    const exclude = input.bridge.ipMasqExclude ?? [cidr];
    steps.push(
      {
        say: `Ensuring masquerade for network ${network}: pod traffic to anything outside ${exclude.map((c) => c.network).join(', ')} leaves with the node's address (nftables table ${NFT_TABLE})`,
        side: 'host',
        lifecycle: 'shared',
        nft: ensureMasquerade(network, exclude),
      },
      {
        say: `Masquerading ${cidr.ip}: an element of set ${masqNames(network).pods}, tagged ${veth}`,
        side: 'host',
        lifecycle: 'attachment',
        nft: addPod(network, cidr, veth),
        nftUndo: delPod(network, cidr),
        expect: [{ kind: 'masq', side: 'host', network, ip: cidr.ip }],
      },
    );
  }
  if (input.bridge.isGateway) steps.push(forwardingStep(': the node routes for its pods'));
  return { netnsPath: input.netnsPath, steps };
}

/**
 * The uplink's move onto the bridge, in two processes (off the NIC, then onto the bridge), with a
 * restore of the NIC should either fail; or, when a former ADD did it, only what CHECK expects.
 */
function moveUplink(br: IfName, up: UplinkFacts): Step[] {
  const route = (op: 'add' | 'del', r: UplinkRoute, dev: IfName): IpCmd => [
    'route', op, r.dst.prefix === 0 ? 'default' : r.dst.text, ...(r.gw ? (['via', r.gw.ip] as const) : []), 'dev', dev,
    ...(r.metric !== undefined ? (['metric', r.metric] as const) : []),
  ];
  const expect: Expect[] = [
    { kind: 'link', side: 'host', name: up.name, up: true, master: br },
    ...up.addrs.map((a): Expect => ({ kind: 'addr', side: 'host', dev: br, address: a })),
  ];
  if (up.master === br) {
    return [{ say: `Uplink ${up.name} is already a port of ${br}, its addresses and routes on ${br} (moved by an earlier ADD)`, side: 'host', lifecycle: 'shared', expect }];
  }
  const restore: IpCmd[] = [
    ['link', 'set', 'dev', up.name, 'nomaster'],
    ...up.addrs.map((a): IpCmd => ['addr', 'del', a.text, 'dev', br]),
    ...up.addrs.map((a): IpCmd => ['addr', 'add', a.text, 'dev', up.name]),
    ['link', 'set', 'dev', up.name, 'up'],
    ...up.routes.map((r) => route('add', r, up.name)),
  ];
  const what = [...up.addrs.map((a) => a.text), ...up.routes.map((r) => `route ${r.dst.prefix === 0 ? 'default' : r.dst.text}${r.gw ? ` via ${r.gw.ip}` : ''}`)].join(', ');
  return [
    {
      say: `Moving uplink ${up.name} onto ${br} (1/2): taking ${what || 'nothing'} off ${up.name} and making it a port of ${br}`,
      side: 'host',
      lifecycle: 'shared',
      alone: true,
      // First ADDs at once all see the NIC unmoved: whatever another one took off already is done.
      tolerate: /No such process|Cannot assign requested address|Address not found/,
      ip: [
        ...up.routes.map((r) => route('del', r, up.name)),
        ...up.addrs.map((a): IpCmd => ['addr', 'del', a.text, 'dev', up.name]),
        ['link', 'set', 'dev', up.name, 'master', br, 'up'],
      ],
      restore,
    },
    {
      say: `Moving uplink ${up.name} onto ${br} (2/2): putting ${what || 'nothing'} on ${br}; the node keeps its connectivity`,
      side: 'host',
      lifecycle: 'shared',
      alone: true,
      tolerate: /File exists|Address already assigned/,
      ip: [...up.addrs.map((a): IpCmd => ['addr', 'add', a.text, 'dev', br]), ...up.routes.map((r) => route('add', r, br))],
      restore,
      expect,
    },
  ];
}

type UplinkFacts = NonNullable<NodeFacts['uplink']>;

function uplinkFacts(input: AddInput): UplinkFacts | undefined {
  if (!input.bridge.uplink) return undefined;
  const up = input.facts?.uplink;
  if (!up) throw new CniError(Code.internal, `bridge mode with uplink ${input.bridge.uplink} was planned without reading the node`);
  return up;
}

/** The pod's IPv4 routes: the default via the gateway, IPAM's (via their gw or the gateway), ipsToRouteViaHost via the node. */
function podRoutes(input: AddInput, gateway: Addr, node: Addr): { dst: Cidr; gw: Addr }[] {
  const out: { dst: Cidr; gw: Addr }[] = [{ dst: DEFAULT4, gw: gateway }];
  const add = (dst: Cidr, gw: Addr) => {
    if (dst.family === 4 && !out.some((r) => r.dst.text === dst.text)) out.push({ dst, gw });
  };
  for (const r of input.routes) add(r.dst, r.gw?.family === 4 ? r.gw : gateway);
  // The node: the gateway itself with isGateway, the node's address on the bridge with an uplink.
  for (const ip of input.ipsToRouteViaHost) add(hostRoute(ip), node);
  return out;
}

export function bridgeResult(input: AddInput): Result {
  const { network, attachment, ifname } = input;
  const br = input.bridge.name;
  const { cidr, gateway } = podIp(input);
  return {
    interfaces: [
      { name: br, mac: uplinkFacts(input)?.mac ?? bridgeMac(network, br) },
      { name: hostVethName(network, attachment), mac: hostVethMac(network, attachment) },
      { name: ifname, mac: containerMac(network, attachment), sandbox: input.netnsPath, mtu: input.mtu },
    ],
    ips: [{ address: cidr.text, gateway: gateway.ip, interface: 2 }],
    routes: podRoutes(input, gateway, uplinkFacts(input)?.addrs.find((a) => a.network === cidr.network) ?? gateway).map((r): Route => ({ dst: r.dst.text, gw: r.gw.ip })),
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
      ...(d.bridge.ipMasq && d.podIps.some((a) => a.family === 4)
        ? [
            {
              say: `Removing ${d.podIps.filter((a) => a.family === 4).map((a) => a.ip).join(', ')} from the masquerade set ${masqNames(d.network).pods}`,
              side: 'host' as const,
              lifecycle: 'attachment' as const,
              nft: d.podIps.filter((a) => a.family === 4).flatMap((a) => delPod(d.network, a)),
              tolerate: /No such file or directory/,
            },
          ]
        : []),
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

