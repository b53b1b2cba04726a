// The typed values a plan is made of. Each is a branded string that only the parser here can
// make, so a plan builder cannot put unchecked outside text into a command: an interface name
// the kernel would accept, a canonical address or CIDR, a MAC, a veth alias. Everything from
// outside (env, config, an IPAM result, prevResult) passes through one of these on its way in.
import { CniError, Code } from '../errors.js';
import { formatCidr, formatIp, networkOf, parseCidr, parseIp, type Family } from './address.js';

declare const brand: unique symbol;
type Brand<B extends string> = string & { readonly [brand]: B };

export type IfName = Brand<'IfName'>;
/** An address in its canonical text ("10.0.0.5", "fd00::5"). */
export type IpText = Brand<'Ip'>;
/** address/prefix in canonical text; the address may carry host bits ("10.0.0.5/24"). */
export type CidrText = Brand<'Cidr'>;
export type Mac = Brand<'Mac'>;
/** A link alias: printable ASCII without whitespace, at most 255 bytes. */
export type Alias = Brand<'Alias'>;

/**
 * Why the kernel would refuse an interface name (dev_valid_name), or undefined if it is valid.
 * We refuse control characters as well: they are legal to the kernel but not to a log or a
 * terminal, and no runtime sends them.
 */
export function ifNameProblem(name: string): string | undefined {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0) return 'must not be empty';
  if (bytes.length > 15) return 'longer than 15 bytes';
  if (name === '.' || name === '..') return 'must not be . or ..';
  for (const b of bytes) {
    if (b === 0x2f || b === 0x3a) return 'must not contain / or :';
    // the kernel's isspace(): space, \t \n \v \f \r, and 0xa0
    if (b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0xa0) return 'must not contain whitespace';
    if (b < 0x20 || b === 0x7f) return 'must not contain control characters';
  }
  if (name.includes('\ufffd')) return 'must be valid UTF-8';
  return undefined;
}

/** An interface name, or a CniError with `code` naming `field`. */
export function ifName(name: string, field: string, code: number = Code.invalidConfig): IfName {
  const why = ifNameProblem(name);
  if (why) throw new CniError(code, `invalid ${field} ${JSON.stringify(name)}: ${why}`);
  return name as IfName;
}

export interface Addr {
  family: Family;
  /** canonical text */
  ip: IpText;
}
export interface Cidr extends Addr {
  prefix: number;
  /** ip/prefix, canonical */
  text: CidrText;
  /** the network: address with host bits cleared, /prefix */
  network: CidrText;
}

/** A bare address, strictly: no prefix, no zone, no IPv4-mapped IPv6; canonical text out. */
export function toAddr(s: string): Addr | undefined {
  const ip = typeof s === 'string' ? parseIp(s) : undefined;
  return ip && { family: ip.family, ip: formatIp(ip) as IpText };
}

/** "address/prefix", strictly; canonical text out. */
export function toCidr(s: string): Cidr | undefined {
  const c = typeof s === 'string' ? parseCidr(s) : undefined;
  if (!c) return undefined;
  return {
    family: c.ip.family,
    ip: formatIp(c.ip) as IpText,
    prefix: c.prefix,
    text: formatCidr(c.ip.family, c.ip.value, c.prefix) as CidrText,
    network: formatCidr(c.ip.family, networkOf(c), c.prefix) as CidrText,
  };
}

/** A route destination: a CIDR without host bits. */
export function toDst(s: string): Cidr | undefined {
  const c = toCidr(s);
  return c && c.text === c.network ? c : undefined;
}

/** The host route to one address: /32 or /128. */
export const hostRoute = (a: Addr): Cidr => toDst(`${a.ip}/${a.family === 4 ? 32 : 128}`)!;

export function addrOf(field: string, s: string, code: number): Addr {
  const a = toAddr(s);
  if (!a) throw new CniError(code, `${field}: invalid IP address ${JSON.stringify(s)}`);
  return a;
}
export function cidrOf(field: string, s: string, code: number): Cidr {
  const c = toCidr(s);
  if (!c) throw new CniError(code, `${field}: invalid CIDR ${JSON.stringify(s)} (expected address/prefix)`);
  return c;
}
export function dstOf(field: string, s: string, code: number): Cidr {
  const c = toDst(s);
  if (!c) {
    const hostBits = toCidr(s);
    throw new CniError(
      code,
      hostBits
        ? `${field}: route destination ${JSON.stringify(s)} has host bits set (the network is ${hostBits.network})`
        : `${field}: invalid CIDR ${JSON.stringify(s)} (expected address/prefix)`,
    );
  }
  return c;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export function macOf(field: string, s: string, code: number): Mac {
  const m = typeof s === 'string' ? s.toLowerCase() : '';
  if (!MAC.test(m)) throw new CniError(code, `${field}: invalid MAC address ${JSON.stringify(s)}`);
  return m as Mac;
}

/**
 * A pod MAC from outside (runtimeConfig.mac): colon or hyphen separated, lower-cased; unicast and
 * not all zeros, since the kernel refuses anything else on a veth.
 */
export function podMacOf(field: string, s: unknown, code: number): Mac {
  const m = typeof s === 'string' ? s.toLowerCase().replace(/-/g, ':') : '';
  if (!MAC.test(m)) throw new CniError(code, `${field}: invalid MAC address ${JSON.stringify(s)} (expected six hex pairs, like 02:42:0a:00:00:05)`);
  if (parseInt(m.slice(0, 2), 16) & 1) throw new CniError(code, `${field}: ${m} is a multicast MAC address; a pod's must be unicast`);
  if (m === '00:00:00:00:00:00') throw new CniError(code, `${field}: the all-zeros MAC address is no pod's`);
  return m as Mac;
}

/** A MAC address as the kernel or nft prints it (lower-cased), or undefined. */
export const toMac = (s: string): Mac | undefined => (MAC.test(s.toLowerCase()) ? (s.toLowerCase() as Mac) : undefined);

/** Our own constants, checked once when the module loads. */
export const mac = (s: string): Mac => macOf('constant', s, Code.internal);
export const addr = (s: string): Addr => addrOf('constant', s, Code.internal);

/** An alias from parts we validated; cut to the kernel's 255 bytes (an alias only informs). */
export function alias(parts: string[]): Alias {
  let text = parts.join(':');
  if (!/^[\x21-\x7e]*$/.test(text)) text = text.replace(/[^\x21-\x7e]/g, '?');
  return text.slice(0, 255) as Alias;
}
