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
import { CniError, Code } from '../errors.js';
import type { Result, Route } from '../cni/result.js';
import { POD_NETNS_REF, type IpCmd } from '../net/command.js';
import { hostRoute, toCidr, type Addr, type Cidr, type IfName } from '../net/values.js';
import type { AddInput, DelInput, PodIp } from './input.js';
import { DEFAULT, addrAdd, familiesOf, forwardingStep, neighText, podAddressStep, podIps, routeCmd, routeText } from './pod.js';
import { bridgeMac, hostVethMac, hostVethName, vethAlias } from './names.js';
import type { Expect, Plan, Step } from './plan.js';
import type { NodeFacts, UplinkRoute } from '../net/facts.js';
import { masqDelSteps, masqSteps } from './masq.js';
import { L2_TABLE, addPodMac, clearPodMac, delPodMac, ensureL2, l2Names } from '../net/nft.js';
import type { Family } from '../net/address.js';

/** The pod's addresses, each with the gateway bridge mode routes it through. */
function podIpsWithGateways(input: AddInput): (PodIp & { gateway: Addr })[] {
  return podIps(input, 'bridge').map((ip) => {
    if (!ip.gateway) throw new CniError(Code.invalidConfig, `bridge mode needs a gateway: IPAM gave ${ip.cidr.text} without one (set ipam.ranges[…].gateway)`);
    return { ...ip, gateway: ip.gateway };
  });
}

export function bridgeAddPlan(input: AddInput): Plan {
  const { ifname, mtu, network, attachment } = input;
  const br = input.bridge.name;
  const ips = podIpsWithGateways(input);
  const cidrs = ips.map((i) => i.cidr);
  const families = familiesOf(ips);
  const veth = hostVethName(network, attachment);
  const vethMac = hostVethMac(network, attachment);
  const mac = input.podMac;
  const up = uplinkFacts(input);
  // Pinned: to the uplink's MAC when there is one (as Azure does), else one of our own.
  const brMac = up?.mac ?? bridgeMac(network, br);

  const steps: Step[] = [
    {
      say: `Ensuring bridge ${br} (created once per node with the pinned MAC ${brMac}; shared by every pod, never removed)${input.bridge.promisc ? ', in promiscuous mode (promiscMode)' : ''}`,
      side: 'node',
      lifecycle: 'shared',
      ip: [
        ...(input.facts?.bridgeExists ? [] : [['link', 'add', 'name', br, 'address', brMac, 'type', 'bridge'] as IpCmd]),
        ['link', 'set', 'dev', br, 'up', ...(input.bridge.promisc ? (['promisc', 'on'] as const) : [])],
      ],
      // Another ADD may have made it a moment ago: that is what "ensured" means.
      tolerate: /File exists/,
      expect: [{ kind: 'link', side: 'node', name: br, up: true }],
    },
  ];
  if (up) steps.push(...moveUplink(br, up));
  if (input.bridge.isGateway) {
    const gwCidrs = ips.map((i) => toCidr(`${i.gateway.ip}/${i.cidr.prefix}`)!);
    steps.push({
      say: `Ensuring ${br} holds the pods' gateway${gwCidrs.length > 1 ? 's' : ''} ${gwCidrs.map((c) => c.text).join(', ')}: the node is every pod's next hop`,
      side: 'node',
      lifecycle: 'shared',
      ip: gwCidrs.map((c) => addrAdd(c, br, 'replace')),
      expect: gwCidrs.map((address) => ({ kind: 'addr', side: 'node', dev: br, address })),
    });
  }
  const port: IpCmd[] = [['link', 'set', 'dev', veth, 'master', br, 'up', 'alias', vethAlias(network, attachment, mac)]];
  if (input.bridge.hairpin) port.push(['link', 'set', 'dev', veth, 'type', 'bridge_slave', 'hairpin', 'on']);
  const routes = podRoutes(input, ips, up);
  steps.push(
    {
      say: `Creating veth pair ${veth} (node side, MAC ${vethMac}) and ${ifname} (inside ${input.netnsPath}, MAC ${mac}), MTU ${mtu}`,
      side: 'node',
      lifecycle: 'attachment',
      ip: [['link', 'add', 'name', veth, 'mtu', mtu, 'address', vethMac, 'type', 'veth', 'peer', 'name', ifname, 'mtu', mtu, 'address', mac, 'netns', POD_NETNS_REF]],
      undo: [['link', 'del', 'dev', veth]],
      expect: [{ kind: 'link', side: 'node', name: veth, mac: vethMac, up: true, mtu, master: br }],
    },
    {
      say: `Attaching ${veth} to ${br}${input.bridge.hairpin ? ' with hairpin on (a pod can reach itself through a service)' : ''} and setting it up`,
      side: 'node',
      lifecycle: 'attachment',
      ip: port,
    },
    {
      say: `Adding ${neighText(cidrs)} ${cidrs.map((c) => `${c.ip} -> ${mac}`).join(', ')} on ${br}: the node never has to ask where the pod is`,
      side: 'node',
      lifecycle: 'attachment',
      ip: cidrs.map((c): IpCmd => ['neigh', 'replace', c.ip, 'lladdr', mac, 'dev', br, 'nud', 'permanent']),
      undo: cidrs.map((c): IpCmd => ['neigh', 'del', c.ip, 'dev', br]),
      expect: cidrs.map((c) => ({ kind: 'neigh', side: 'node', dev: br, ip: c.ip, mac })),
    },
    ...(up
      ? [
          // A former holder of the address whose DEL never came may have left its mapping (see net/nft.ts).
          ...cidrs.map((c) => ({
            say: `Clearing any MAC DNAT rule left for ${c.ip} by a former holder of the address`,
            side: 'node' as const,
            lifecycle: 'attachment' as const,
            nft: clearPodMac(network, c),
            alone: true,
            tolerate: /No such file or directory/,
          })),
          // Next to the pod's rule, so that both go in one nft transaction (execute.ts).
          l2Step(network, up),
          {
            say: `Adding MAC DNAT rule${cidrs.length > 1 ? 's' : ''} for ${cidrs.map((c) => c.ip).join(', ')}: frames arriving on ${up.name} for ${cidrs.length > 1 ? 'them' : 'it'} take the pod's MAC ${mac} (elements of ${families.map((f) => l2Names(network).map[f]).join(', ')} in nftables table ${L2_TABLE}, tagged ${veth})`,
            side: 'node' as const,
            lifecycle: 'attachment' as const,
            nft: cidrs.flatMap((c) => addPodMac(network, c, mac, veth)),
            nftUndo: cidrs.flatMap((c) => delPodMac(network, c, mac)),
            expect: cidrs.map((c) => ({ kind: 'l2' as const, side: 'node' as const, network, ip: c.ip, mac })),
          },
        ]
      : []),
    podAddressStep(ifname, cidrs, mac, mtu, `: the pod is on ${br}'s subnet${cidrs.length > 1 ? 's' : ''}`),
    {
      say: `Adding routes ${routes.map((r) => routeText(r.dst, r.gw)).join(', ')}`,
      side: 'pod',
      lifecycle: 'attachment',
      ip: routes.map((r) => routeCmd('add', r.dst, r.gw, ifname)),
      expect: routes.map((r) => ({ kind: 'route', side: 'pod', dst: r.dst, dev: ifname, gw: r.gw.ip })),
    },
  );
  steps.push(...masqSteps(network, input.masq, cidrs, families, veth));
  // Azure's layout: the pods' own traffic is bridged, but a published port (portmap's DNAT, chained
  // in conf/) turns around on the bridge, which is forwarding.
  if (input.bridge.isGateway || up) steps.push(forwardingStep(families, up ? ": published ports (portmap's DNAT) turn around on the bridge" : ': the node routes for its pods'));
  return { netnsPath: input.netnsPath, steps };
}

/**
 * Azure's L2 rules for the uplink (see net/nft.ts): ensured by every ADD, as Azure adds them when
 * it connects the NIC, and never removed by DEL (the node's traffic depends on them).
 */
function l2Step(network: string, up: UplinkFacts): Step {
  return {
    say: `Ensuring Azure's L2 rules on uplink ${up.name} (nftables table ${L2_TABLE}): the SNAT rule for egress traffic on ${up.name} (frames leave with its MAC ${up.mac}: Azure's fabric accepts no other), the DNAT rule for ingress ARP traffic on ${up.name} (ARP replies go to every port), the map of MAC DNAT rules for frames arriving for a pod, ARP requests for this node's pods kept off ${up.name} (the pod answers on the bridge, not the fabric), and no broadcast or multicast back out ${up.name} (its hairpin is for what kube-proxy DNATs)`,
    side: 'node',
    lifecycle: 'shared',
    nft: ensureL2(network, up.name, up.mac),
  };
}

/**
 * The uplink's move onto the bridge, in ONE `ip` process (off the NIC, a port of the bridge, onto
 * the bridge): a plugin killed at any moment leaves the NIC as it was or the move complete, since
 * the process it started goes on and finishes the batch on its own. Should a command fail, the
 * restore puts the NIC back as it was. When a former ADD did the move, only what CHECK expects.
 */
function moveUplink(br: IfName, up: UplinkFacts): Step[] {
  const route = (op: 'add' | 'del', r: UplinkRoute, dev: IfName): IpCmd => [
    ...routeCmd(op, r.dst, r.gw, dev, r.metric),
    ...(op === 'add' && r.proto ? (['proto', r.proto] as const) : []),
    ...(op === 'add' && r.src ? (['src', r.src.ip] as const) : []),
  ];
  const expect: Expect[] = [
    { kind: 'link', side: 'node', name: up.name, up: true, master: br },
    ...up.addrs.map((a): Expect => ({ kind: 'addr', side: 'node', dev: br, address: a })),
  ];
  if (up.master === br) {
    return [{ say: `Uplink ${up.name} is already a port of ${br}, its addresses and routes on ${br} (moved by an earlier ADD)`, side: 'node', lifecycle: 'shared', expect }];
  }
  // The routes leave the bridge explicitly: deleting an IPv6 address, unlike an IPv4 one, leaves
  // the routes through it, and the uplink's own would then be "File exists".
  const restore: IpCmd[] = [
    ['link', 'set', 'dev', up.name, 'nomaster'],
    ...up.routes.map((r) => route('del', r, br)),
    ...up.addrs.map((a): IpCmd => ['addr', 'del', a.text, 'dev', br]),
    // As the NIC had them: without the `nodad` they carry on the bridge.
    ...up.addrs.map((a): IpCmd => ['addr', 'add', a.text, 'dev', up.name]),
    ['link', 'set', 'dev', up.name, 'up'],
    ...up.routes.map((r) => route('add', r, up.name)),
  ];
  const what = [...up.addrs.map((a) => a.text), ...up.routes.map((r) => `route ${routeText(r.dst, r.gw)}${r.src ? ` src ${r.src.ip}` : ''}`)].join(', ');
  return [
    {
      say: `Moving uplink ${up.name} onto ${br}: taking ${what || 'nothing'} off ${up.name}, making it a port of ${br} with hairpin on, and putting the same on ${br}, in one ip process; the node keeps its connectivity`,
      side: 'node',
      lifecycle: 'shared',
      alone: true,
      // First ADDs at once all see the NIC unmoved: whatever another one did already is done.
      tolerate: /No such process|Cannot assign requested address|address not found|File exists|address already assigned/i,
      ip: [
        ...up.routes.map((r) => route('del', r, up.name)),
        ...up.addrs.map((a): IpCmd => ['addr', 'del', a.text, 'dev', up.name]),
        ['link', 'set', 'dev', up.name, 'master', br, 'up'],
        // As Azure (network_linux.go, "External interface hairpin on"): a frame from the VNet that
        // kube-proxy DNATs, under br_netfilter, to a pod on another node goes back out the uplink.
        ['link', 'set', 'dev', up.name, 'type', 'bridge_slave', 'hairpin', 'on'],
        ...up.addrs.map((a) => addrAdd(a, br)),
        ...up.routes.map((r) => route('add', r, br)),
      ],
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

/**
 * The pod's routes, per family it has: the default via the family's gateway (its first address's),
 * IPAM's (via their gw, or the gateway), ipsToRouteViaHost via the node: the gateway itself with
 * isGateway, the node's address in the pod's subnet on the bridge with an uplink.
 */
function podRoutes(input: AddInput, ips: readonly (PodIp & { gateway: Addr })[], up: UplinkFacts | undefined): { dst: Cidr; gw: Addr }[] {
  const gateway = (f: Family) => ips.find((i) => i.cidr.family === f)?.gateway;
  const node = (f: Family) => {
    const ip = ips.find((i) => i.cidr.family === f);
    return ip && (up?.addrs.find((a) => a.network === ip.cidr.network) ?? ip.gateway);
  };
  const out: { dst: Cidr; gw: Addr }[] = familiesOf(ips).map((f) => ({ dst: DEFAULT[f], gw: gateway(f)! }));
  const add = (dst: Cidr, gw: Addr | undefined) => {
    if (gw && !out.some((r) => r.dst.text === dst.text)) out.push({ dst, gw });
  };
  for (const r of input.routes) add(r.dst, r.gw?.family === r.dst.family ? r.gw : gateway(r.dst.family));
  for (const ip of input.ipsToRouteViaHost) add(hostRoute(ip), node(ip.family));
  return out;
}

export function bridgeResult(input: AddInput): Result {
  const { network, attachment, ifname } = input;
  const br = input.bridge.name;
  const ips = podIpsWithGateways(input);
  return {
    interfaces: [
      { name: br, mac: uplinkFacts(input)?.mac ?? bridgeMac(network, br) },
      { name: hostVethName(network, attachment), mac: hostVethMac(network, attachment) },
      { name: ifname, mac: input.podMac, sandbox: input.netnsPath, mtu: input.mtu },
    ],
    ips: ips.map((i) => ({ address: i.cidr.text, gateway: i.gateway.ip, interface: 2 })),
    routes: podRoutes(input, ips, uplinkFacts(input)).map((r): Route => ({ dst: r.dst.text, gw: r.gw.ip })),
    dns: {},
  };
}

/**
 * DEL: the masquerade elements, the bridge's neighbour entries for the pod, then the veth (its
 * bridge port goes with it). The neighbour entries are DEL's record of the pod's addresses when
 * there is no prevResult, so they go after the elements that need those addresses (a DEL killed
 * in between finds them again); the veth, named from the attachment, goes last (`doneWhenGone`):
 * the DEL is done once it is gone from the node, without waiting out the kernel's teardown.
 */
export function bridgeDelPlan(d: DelInput): Plan {
  const veth = hostVethName(d.network, d.attachment);
  const br = d.bridge.name;
  return {
    netnsPath: '',
    steps: [
      ...masqDelSteps(d.network, d.masq, d.podIps),
      ...(d.bridge.uplink && d.podIps.length
        ? [
            {
              say: `Deleting the MAC DNAT rule${d.podIps.length > 1 ? 's' : ''} for ${d.podIps.map((a) => a.ip).join(', ')} (nftables table ${L2_TABLE})`,
              side: 'node' as const,
              lifecycle: 'attachment' as const,
              nft: d.podIps.flatMap((a) => delPodMac(d.network, a, d.podMac)),
            },
          ]
        : []),
      ...(d.podIps.length
        ? [
            {
              say: `Deleting the ${neighText(d.podIps)} ${d.podIps.map((a) => a.ip).join(', ')} on ${br}`,
              side: 'node' as const,
              lifecycle: 'attachment' as const,
              ip: d.podIps.map((a): IpCmd => ['neigh', 'del', a.ip, 'dev', br]),
            },
          ]
        : []),
      {
        say: `Deleting veth pair ${veth} (its port on ${br} goes with it)`,
        side: 'node',
        lifecycle: 'attachment',
        ip: [['link', 'del', 'dev', veth]],
        doneWhenGone: veth,
      },
    ],
  };
}

