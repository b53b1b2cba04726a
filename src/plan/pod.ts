// What every mode does alike inside the pod, and the pod's IPv4 address as a mode needs it.
import { CniError, Code } from '../cni/errors.js';
import type { Cidr, IfName, Mac } from '../net/values.js';
import { toDst } from '../net/values.js';
import type { AddInput, PodIp } from './input.js';
import type { Step } from './plan.js';

export const DEFAULT4 = toDst('0.0.0.0/0')!;
export const LO = 'lo' as IfName;

/** The pod's IPv4 address: the modes wire IPv4 only (so far). */
export function podIpv4(input: AddInput, mode: string): PodIp {
  const ip = input.ips.find((i) => i.cidr.family === 4);
  if (!ip) throw new CniError(Code.unsupportedField, `${mode} mode needs an IPv4 address; IPAM gave ${input.ips.map((i) => i.cidr.text).join(', ') || 'none'}`);
  return ip;
}

/**
 * IPv4 forwarding on the node: node-wide and shared, so last in a plan (an ADD failing earlier
 * leaves it as it was) and never undone.
 */
export function forwardingStep(why: string): Step {
  return {
    say: `Enabling IPv4 forwarding on the node (node-wide; it stays on)${why}`,
    side: 'host',
    lifecycle: 'shared',
    sysctl: [['net.ipv4.ip_forward', '1']],
    expect: [{ kind: 'sysctl', side: 'host', key: 'net.ipv4.ip_forward', value: '1' }],
  };
}

/** lo and the pod's interface up, the address on it (with its subnet's prefix). */
export function podAddressStep(ifname: IfName, cidr: Cidr, mac: Mac, mtu: number, why: string): Step {
  return {
    say: `Adding IP address ${cidr.text} to ${ifname} and setting ${ifname} and lo up${why}`,
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
  };
}
