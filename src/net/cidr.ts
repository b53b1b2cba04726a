// Small IPv4 helpers the plan builders need (the IPAM has its own, fuller range arithmetic).
import { isIPv4 } from 'node:net';

export function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** "10.220.2.11/24" → { ip: "10.220.2.11", prefix: 24, network: "10.220.2.0/24" }; undefined if not IPv4. */
export function parseCidr4(cidr: string): { ip: string; prefix: number; network: string } | undefined {
  const [ip, p] = cidr.split('/');
  const prefix = Number(p);
  if (!ip || !isIPv4(ip) || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const net = Math.floor(ipv4ToInt(ip) / size) * size;
  return { ip, prefix, network: `${intToIpv4(net)}/${prefix}` };
}
