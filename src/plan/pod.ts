// What every mode does alike, per address family: the pod's addresses, the node's forwarding,
// the default route of a family, a route's command.
import { CniError, Code } from '../errors.js';
import type { Family } from '../net/address.js';
import type { IpCmd } from '../net/command.js';
import type { Addr, Cidr, IfName, Mac } from '../net/values.js';
import { toDst } from '../net/values.js';
import type { AddInput, PodIp } from './input.js';
import type { Step } from './plan.js';

export const DEFAULT = { 4: toDst('0.0.0.0/0')!, 6: toDst('::/0')! } as const;
const LO = 'lo' as IfName;
export const FAMILIES = [4, 6] as const;

/** The pod's addresses, IPv4 first: at least one, whatever the families. */
export function podIps(input: AddInput, mode: string): PodIp[] {
  if (!input.ips.length) throw new CniError(Code.unsupportedField, `${mode} mode needs an address; IPAM gave none`);
  const v6 = input.ips.find((i) => i.cidr.family === 6);
  // The kernel turns IPv6 off on a link below 1280 bytes (RFC 8200's minimum). 0: not known (CHECK).
  if (v6 && input.mtu && input.mtu < 1280) {
    throw new CniError(Code.invalidConfig, `mtu ${input.mtu} is below IPv6's minimum of 1280, and the pod has IPv6 address ${v6.cidr.text}`);
  }
  return [...input.ips].sort((a, b) => a.cidr.family - b.cidr.family);
}

/** The families the pod has addresses of, IPv4 first. */
export const familiesOf = (ips: readonly { cidr: Cidr }[]): Family[] => FAMILIES.filter((f) => ips.some((i) => i.cidr.family === f));

/** "IPv4", "IPv6" or "IPv4 and IPv6". */
const familyText = (fs: readonly Family[]) => fs.map((f) => `IPv${f}`).join(' and ');

/**
 * Forwarding on the node for the pod's families: node-wide and shared, so last in a plan (an ADD
 * failing earlier leaves it as it was) and never undone.
 */
export function forwardingStep(families: readonly Family[], why: string): Step {
  const sysctl = families.map((f): [`net.${string}`, string] => [f === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', '1']);
  return {
    say: `Enabling ${familyText(families)} forwarding on the node (node-wide; it stays on)${why}`,
    side: 'node',
    lifecycle: 'shared',
    sysctl,
    expect: sysctl.map(([key, value]) => ({ kind: 'sysctl', side: 'node', key, value })),
  };
}

/**
 * `addr add`, without duplicate address detection for IPv6 (`nodad`): the address is usable when
 * ADD returns, not a second later. Our addresses are IPAM's to make unique, not DAD's.
 */
export const addrAdd = (c: Cidr, dev: IfName, op: 'add' | 'replace' = 'add'): IpCmd =>
  c.family === 6 ? ['addr', op, c.text, 'dev', dev, 'nodad'] : ['addr', op, c.text, 'dev', dev];

/**
 * `route add|del DST [via GW] dev DEV [metric M]`, the default route spelled "default" as the seeds
 * show it, unless nothing else in the line tells ip it is IPv6 (then "::/0").
 */
export const routeCmd = (op: 'add' | 'del', dst: Cidr, gw: Addr | undefined, dev: IfName, metric?: number): IpCmd => [
  'route', op, dst.prefix === 0 && (gw || dst.family === 4) ? 'default' : dst.text, ...(gw ? (['via', gw.ip] as const) : []), 'dev', dev,
  ...(metric !== undefined ? (['metric', metric] as const) : []),
];

/** "static ARP entry" for one IPv4 address, as the seeds say; "static neighbour entries" otherwise. */
export const neighText = (ips: readonly Addr[]) =>
  ips.length === 1 && ips[0]!.family === 4 ? 'static ARP entry' : `static neighbour entr${ips.length > 1 ? 'ies' : 'y'}`;

/** How a route reads in a sentence. */
export const routeText = (dst: Cidr, gw?: Addr) => `${dst.prefix === 0 ? `default (IPv${dst.family})` : dst.text}${gw ? ` via ${gw.ip}` : ''}`;

/** lo and the pod's interface up, its addresses on it (each with its subnet's prefix). */
export function podAddressStep(ifname: IfName, cidrs: readonly Cidr[], mac: Mac, mtu: number, why: string): Step {
  return {
    say: `Adding IP address${cidrs.length > 1 ? 'es' : ''} ${cidrs.map((c) => c.text).join(', ')} to ${ifname} and setting ${ifname} and lo up${why}`,
    side: 'pod',
    lifecycle: 'attachment',
    ip: [['link', 'set', 'dev', LO, 'up'], ['link', 'set', 'dev', ifname, 'up'], ...cidrs.map((c) => addrAdd(c, ifname))],
    expect: [
      { kind: 'link', side: 'pod', name: ifname, mac, up: true, mtu },
      ...cidrs.map((address) => ({ kind: 'addr' as const, side: 'pod' as const, dev: ifname, address })),
    ],
  };
}
