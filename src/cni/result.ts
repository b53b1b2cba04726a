// One internal result (the 1.1.0 shape) and its conversion to and from every spec version.
// Rules follow libcni's converters: 0.1.0/0.2.0 carry one ip4 and one ip6 with their routes;
// 0.3.x/0.4.0 add a "version" to each IP; 1.0.0 drops it; 1.1.0 adds route and interface fields.
import * as z from 'zod/mini';
import { CniError, Code } from '../errors.js';
import { atLeast } from './version.js';
import { describeIssue } from '../issue.js';

interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}
interface IPConfig {
  /** CIDR notation: the address and the subnet's prefix, e.g. "10.220.2.11/24". */
  address: string;
  gateway?: string;
  /** Index into interfaces. */
  interface?: number;
}
export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}
export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
export interface Result {
  interfaces: Interface[];
  ips: IPConfig[];
  routes: Route[];
  dns: DNS;
}

// ---- parsing any version ----

const dnsSchema = z.object({
  nameservers: z.optional(z.array(z.string())),
  domain: z.optional(z.string()),
  search: z.optional(z.array(z.string())),
  options: z.optional(z.array(z.string())),
});
const routeSchema = z.object({
  dst: z.string(),
  gw: z.optional(z.string()),
  mtu: z.optional(z.number()),
  advmss: z.optional(z.number()),
  priority: z.optional(z.number()),
  table: z.optional(z.number()),
  scope: z.optional(z.number()),
});
const ip02Schema = z.object({ ip: z.string(), gateway: z.optional(z.string()), routes: z.optional(z.array(routeSchema)) });
const resultSchema = z.object({
  cniVersion: z.optional(z.string()),
  interfaces: z.optional(
    z.array(
      z.object({
        name: z.string(),
        mac: z.optional(z.string()),
        mtu: z.optional(z.number()),
        sandbox: z.optional(z.string()),
        socketPath: z.optional(z.string()),
        pciID: z.optional(z.string()),
      }),
    ),
  ),
  ips: z.optional(
    z.array(z.object({ address: z.string(), gateway: z.optional(z.string()), interface: z.optional(z.int().check(z.minimum(0))) })),
  ),
  routes: z.optional(z.array(routeSchema)),
  dns: z.optional(dnsSchema),
  ip4: z.optional(ip02Schema),
  ip6: z.optional(ip02Schema),
});

/** Parses a result (a delegated plugin's output or a prevResult) of any version. */
export function parseResult(raw: unknown, what = 'result', code: number = Code.decode): Result {
  const parsed = resultSchema.safeParse(raw);
  if (!parsed.success) throw new CniError(code, `invalid ${what}: ${describeIssue(parsed.error.issues[0]!, raw)}`);
  const r = parsed.data;
  const dns = stripUndefined(r.dns ?? {});
  if (r.ip4 || r.ip6) {
    const out: Result = { interfaces: [], ips: [], routes: [], dns };
    for (const ip of [r.ip4, r.ip6]) {
      if (!ip) continue;
      out.ips.push(stripUndefined({ address: ip.ip, gateway: ip.gateway }));
      out.routes.push(...(ip.routes ?? []).map(stripUndefined));
    }
    return out;
  }
  return {
    interfaces: (r.interfaces ?? []).map(stripUndefined),
    ips: (r.ips ?? []).map(stripUndefined),
    routes: (r.routes ?? []).map(stripUndefined),
    dns,
  };
}

// ---- printing as a version ----

const isV6 = (cidrOrIp: string) => cidrOrIp.includes(':');

/** The result as the JSON object of the given spec version. */
export function resultAsVersion(result: Result, version: string): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion: version };
  const dns = Object.keys(result.dns).length ? result.dns : undefined;

  if (!atLeast(version, '0.3.0')) {
    const ip4 = result.ips.find((ip) => !isV6(ip.address));
    const ip6 = result.ips.find((ip) => isV6(ip.address));
    if (!ip4 && !ip6) throw new CniError(Code.incompatibleVersion, `cannot convert result to ${version}: no IP addresses`);
    const as02 = (ip: IPConfig, v6: boolean) => {
      const routes = result.routes.filter((r) => isV6(r.dst) === v6).map((r) => stripUndefined({ dst: r.dst, gw: r.gw }));
      return stripUndefined({ ip: ip.address, gateway: ip.gateway, routes: routes.length ? routes : undefined });
    };
    if (ip4) out.ip4 = as02(ip4, false);
    if (ip6) out.ip6 = as02(ip6, true);
    if (dns) out.dns = dns;
    return out;
  }

  const v11 = atLeast(version, '1.1.0');
  const withVersionField = !atLeast(version, '1.0.0');
  const interfaces = result.interfaces.map((i) =>
    stripUndefined(v11 ? i : { name: i.name, mac: i.mac, sandbox: i.sandbox }),
  );
  const ips = result.ips.map((ip) =>
    stripUndefined({
      version: withVersionField ? (isV6(ip.address) ? '6' : '4') : undefined,
      interface: ip.interface,
      address: ip.address,
      gateway: ip.gateway,
    }),
  );
  const routes = result.routes.map((r) => stripUndefined(v11 ? r : { dst: r.dst, gw: r.gw }));
  if (interfaces.length) out.interfaces = interfaces;
  if (ips.length) out.ips = ips;
  if (routes.length) out.routes = routes;
  if (dns) out.dns = dns;
  return out;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
