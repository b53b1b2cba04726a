// The vnet-ipam configuration: the `ipam` section of the network config (host-local's format),
// plus the requested addresses the runtime may pass. Raw JSON in, resolved ranges out; every
// error is CniError(invalidConfig) naming the field, e.g. "ipam.ranges[0][1].subnet: …".
import * as z from 'zod/mini';
import { CniError, Code } from '../errors.js';
import type { Route } from '../cni/result.js';
import { validate } from '../issue.js';
import { networkNameProblem } from '../config/netconf.js';
import { addrOf, dstOf } from '../net/values.js';
import {
  checkNoOverlap,
  parseIpOrCidr,
  resolveRange,
  resolveRangeSet,
  type RangeSet,
  type RawRange,
} from './range.js';
import type { IP } from '../net/address.js';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

// Go's JSON decoding treats null like an absent field; so do we.
const opt = <T extends z.ZodMiniType>(t: T) => z.optional(z.nullable(t));
const str = () => opt(z.string());
const num = () => opt(z.number());

const rangeSchema = z.object({ subnet: z.string(), rangeStart: str(), rangeEnd: str(), gateway: str() });
const routeSchema = z.object({
  dst: z.string(),
  gw: str(),
  mtu: num(),
  advmss: num(),
  priority: num(),
  table: num(),
  scope: num(),
});
const ipamSchema = z.object({
  type: str(),
  ranges: opt(z.array(z.array(rangeSchema))),
  // host-local's legacy single range, at the ipam level.
  subnet: str(),
  rangeStart: str(),
  rangeEnd: str(),
  gateway: str(),
  routes: opt(z.array(routeSchema)),
  dataDir: str(),
  resolvConf: str(),
});
/** The whole config as vnet-ipam reads it (also how `vnet validate` lists every type problem). */
export const ipamConfSchema = z.object({
  name: z.string(),
  ipam: ipamSchema,
  runtimeConfig: opt(z.object({ ips: opt(z.array(z.string())) })),
  args: opt(z.object({ cni: opt(z.object({ ips: opt(z.array(z.string())) })) })),
});


export interface RequestedIp {
  ip: IP;
  /** As given, for messages. */
  text: string;
  /** Where it came from: "runtimeConfig.ips[0]", "args.cni.ips[1]", "CNI_ARGS IP". */
  source: string;
}

export interface IpamConfig {
  /** The network name: the directory under dataDir. */
  name: string;
  dataDir: string;
  /** Range set i is the i-th address of every attachment; its cursor is last_reserved_ip.<i>. */
  rangeSets: RangeSet[];
  routes: Route[];
  resolvConf: string | undefined;
  /** Addresses asked for by the runtime, in order, without duplicates. */
  requested: RequestedIp[];
}

const bad = (field: string, msg: string) => new CniError(Code.invalidConfig, `${field}: ${msg}`);
const undef = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

// eslint-disable-next-line no-control-regex
const ABSOLUTE = /^\/[^\x00-\x1f\x7f]*$/;

function checkName(name: string): void {
  const why = networkNameProblem(name);
  if (why) throw bad('name', `invalid network name ${JSON.stringify(name.slice(0, 64))}${name.length > 64 ? '…' : ''}: ${why}`);
}

function checkDataDir(dir: string): string {
  if (!ABSOLUTE.test(dir)) throw bad('ipam.dataDir', `${JSON.stringify(dir)} must be an absolute path without control characters`);
  return dir;
}

const locationSchema = z.object({ name: z.string(), ipam: z.object({ dataDir: str() }) });

/**
 * Only where the network's state lives: enough for DEL and GC, which must keep working when the
 * rest of the config has become invalid (say, after an edit) and still release what is held.
 */
export function parseIpamLocation(conf: Record<string, unknown>): { name: string; dataDir: string } {
  const { name, ipam } = validate(locationSchema, conf);
  checkName(name);
  return { name, dataDir: checkDataDir(ipam.dataDir ?? DEFAULT_DATA_DIR) };
}

/**
 * Parses and resolves the IPAM config from the whole network config. `cniArgs` (CNI_ARGS) may
 * carry `IP=a[,b]`, host-local's way of asking for addresses.
 */
export function parseIpamConfig(conf: Record<string, unknown>, cniArgs: Map<string, string> = new Map()): IpamConfig {
  const c = validate(ipamConfSchema, conf);
  checkName(c.name);
  const ipam = c.ipam;

  const rangeSets: RangeSet[] = [];
  if (ipam.subnet != null) {
    // host-local puts the legacy range first, as its own range set.
    const legacy: RawRange = {
      subnet: ipam.subnet,
      rangeStart: undef(ipam.rangeStart),
      rangeEnd: undef(ipam.rangeEnd),
      gateway: undef(ipam.gateway),
    };
    rangeSets.push([resolveRange(legacy, 'ipam')]);
  } else {
    for (const k of ['rangeStart', 'rangeEnd', 'gateway'] as const) {
      if (ipam[k] != null) throw bad(`ipam.${k}`, 'is only allowed with ipam.subnet (or inside ipam.ranges)');
    }
  }
  (ipam.ranges ?? []).forEach((set, i) => {
    const raws: RawRange[] = set.map((r) => ({
      subnet: r.subnet,
      rangeStart: undef(r.rangeStart),
      rangeEnd: undef(r.rangeEnd),
      gateway: undef(r.gateway),
    }));
    rangeSets.push(resolveRangeSet(raws, `ipam.ranges[${i}]`));
  });
  if (rangeSets.length === 0) throw bad('ipam.ranges', 'missing: at least one range set (or ipam.subnet) is required');
  checkNoOverlap(rangeSets.flat());

  const routes: Route[] = (ipam.routes ?? []).map((r, i) => {
    const dst = dstOf(`ipam.routes[${i}].dst`, r.dst, Code.invalidConfig);
    if (r.gw != null) addrOf(`ipam.routes[${i}].gw`, r.gw, Code.invalidConfig);
    const route: Route = { dst: dst.text };
    for (const k of ['gw', 'mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
      const v = r[k];
      if (v != null) (route as unknown as Record<string, unknown>)[k] = v;
    }
    return route;
  });

  const dataDir = checkDataDir(ipam.dataDir ?? DEFAULT_DATA_DIR);
  const resolvConf = undef(ipam.resolvConf);
  if (resolvConf !== undefined && !ABSOLUTE.test(resolvConf)) throw bad('ipam.resolvConf', `${JSON.stringify(resolvConf)} must be an absolute path`);

  const requested: RequestedIp[] = [];
  const seen = new Set<string>(); // one lookup per entry: a list of any length costs linear time
  const add = (text: string, source: string, code: number = Code.invalidConfig) => {
    const ip = parseIpOrCidr(text.trim());
    if (!ip) throw new CniError(code, `${source}: invalid IP address ${JSON.stringify(text)}`);
    const key = `${ip.family}/${ip.value}`;
    if (seen.has(key)) return;
    seen.add(key);
    requested.push({ ip, text, source });
  };
  const envIp = cniArgs.get('IP');
  if (envIp !== undefined && envIp !== '') {
    for (const part of envIp.split(',')) add(part, 'CNI_ARGS IP', Code.invalidEnv);
  }
  (c.args?.cni?.ips ?? []).forEach((s, i) => add(s, `args.cni.ips[${i}]`));
  (c.runtimeConfig?.ips ?? []).forEach((s, i) => add(s, `runtimeConfig.ips[${i}]`));

  return { name: c.name, dataDir, rangeSets, routes, resolvConf, requested };
}
