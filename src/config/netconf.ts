// The network configuration of the main plugin: raw JSON in, typed and resolved config out.
// Unknown top-level fields are tolerated (the spec requires it); known ones are checked strictly,
// except for DEL and GC, which must work with a config edited since ADD: they take what they
// need (name, IPAM) and fall back to the default, with a warning, for any other field in error.
import { isLogName, type LogLevel } from '../log.js';
import * as z from 'zod/mini';
import { CniError, Code } from '../cni/errors.js';
import { checkVersion } from '../cni/version.js';
import { overlappingPair } from '../net/address.js';
import { ifNameProblem, toAddr, toCidr, type Addr, type IfName } from '../net/values.js';
import type { BridgeConf } from '../plan/input.js';
import type { ModeName } from '../plan/modes.js';
import { describeIssue, validate } from './issue.js';
import type { Command } from '../cni/env.js';

/** libcni's rule for network names, plus a length that fits a directory name and a veth alias. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const NETWORK_NAME_MAX = 200;

/** Why a network name is refused, or undefined. */
export function networkNameProblem(name: string): string | undefined {
  if (!NETWORK_NAME.test(name)) return `must match ${NETWORK_NAME.source}`;
  if (name.length > NETWORK_NAME_MAX) return `longer than ${NETWORK_NAME_MAX} characters`;
  return undefined;
}

const ifname = z.string().check(z.refine((s) => !ifNameProblem(s), { error: (i) => `invalid interface name: ${ifNameProblem(String(i.input))}` }));
const address = z.string().check(z.refine((s) => toAddr(s) !== undefined, 'must be an IPv4 or IPv6 address (no prefix, no zone, no IPv4-mapped IPv6)'));
// eslint-disable-next-line no-control-regex
const absPath = z.string().check(z.refine((s) => s.startsWith('/') && !/[\x00-\x1f\x7f]/.test(s), 'must be an absolute path without control characters'));

/** Fields every plugin config has (SPEC.md section 1). */
export const commonSchema = z.object({
  cniVersion: z._default(z.string(), '0.1.0'),
  name: z.string().check(z.refine((s) => !networkNameProblem(s), { error: (i) => `invalid network name: ${networkNameProblem(String(i.input))}` })),
  type: z.optional(z.string()),
  prevResult: z.optional(z.unknown()),
  runtimeConfig: z.optional(z.record(z.string(), z.unknown())),
  args: z.optional(z.record(z.string(), z.unknown())),
});

export const netConfSchema = z.object({
  mode: z._default(z.enum(['transparent', 'bridge']), 'transparent'),
  bridge: z._default(ifname, 'azure0'),
  isGateway: z._default(z.boolean(), false),
  uplink: z.optional(ifname),
  mtu: z.optional(z.int().check(z.minimum(68), z.maximum(65535))),
  hairpinMode: z._default(z.boolean(), false),
  // The reference bridge's: the bridge in promiscuous mode (kubenet's "promiscuous-bridge").
  promiscMode: z._default(z.boolean(), false),
  ipMasq: z._default(z.boolean(), false),
  // An nftables interval set cannot hold two overlapping entries: refused here, not at the datapath.
  ipMasqExclude: z.optional(
    z.array(z.string().check(z.refine((s) => toCidr(s) !== undefined, 'must be an IPv4 or IPv6 CIDR (address/prefix)'))).check(
      z.refine((list) => overlappingPair(list) === undefined, { error: (iss) => overlapMessage(iss.input as string[]) }),
    ),
  ),
  ipsToRouteViaHost: z._default(z.array(address), []),
  // Only a file named *.log: the plugin creates its log (see src/log.ts), and a name like
  // /etc/ld.so.preload must never be one it writes.
  logFile: z.optional(absPath.check(z.refine((s) => !s.startsWith('/') || isLogName(s), 'must name a file ending in .log'))),
  logLevel: z._default(z.enum(['debug', 'info', 'warn', 'error', 'off']), 'info'),
  ipam: z.optional(z.looseObject({ type: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must name an IPAM plugin (a file name on CNI_PATH)')) })),
});

function overlapMessage(list: string[]): string {
  const [a, b] = overlappingPair(list) ?? ['?', '?'];
  return `${a} and ${b} overlap: list each excluded range once (keep the wider)`;
}

/**
 * The log's file and level from raw stdin, before anything else is parsed, so that an error in
 * the environment or the rest of the config is logged where the config says. Each field is
 * validated as in the full parse; an invalid one is left out (the full parse then names it).
 */
export function logSettings(raw: string): { file?: string; level?: LogLevel } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return {};
  }
  if (typeof json !== 'object' || json === null) return {};
  const { logFile, logLevel } = json as Record<string, unknown>;
  const file = netConfSchema.shape.logFile.safeParse(logFile);
  const level = netConfSchema.shape.logLevel.safeParse(logLevel);
  return { file: file.success ? file.data : undefined, level: logLevel !== undefined && level.success ? level.data : undefined };
}

export type Common = z.infer<typeof commonSchema>;
type Parsed = z.infer<typeof netConfSchema>;
export type NetConf = Common &
  Omit<Parsed, 'mode' | 'ipsToRouteViaHost'> & {
    mode: ModeName;
    bridgeConf: BridgeConf;
    ipsToRouteViaHost: Addr[];
    /** stdin as received, for delegation */
    raw: string;
    /** stdin decoded, for the in-process IPAM */
    json: Record<string, unknown>;
    /** fields DEL or GC found in error and replaced by their default, for the log */
    ignored: string[];
  };

/** Decodes stdin: JSON (code 6), then name (7), then version (1), then the rest (7). */
export function parseCommon(raw: string, command: Command): Common & { json: Record<string, unknown> } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new CniError(Code.decode, `failed to decode network config from stdin: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CniError(Code.decode, 'failed to decode network config from stdin: not a JSON object');
  }
  const obj = json as Record<string, unknown>;
  if (typeof obj.name !== 'string' || obj.name === '') throw new CniError(Code.invalidConfig, 'missing network name');
  const common = validate(commonSchema, obj, [], 'invalid network config: ');
  checkVersion(common.cniVersion, command);
  return { ...common, json: obj };
}

export function parseNetConf(raw: string, command: Command): NetConf {
  const common = parseCommon(raw, command);
  // `"mtu": 0` is the reference plugins' "not set" (calico's conflist has it): the default MTU.
  const json = common.json.mtu === 0 ? { ...common.json, mtu: undefined } : common.json;
  const lenient = command === 'DEL' || command === 'GC';
  const ignored: string[] = [];
  let conf: Parsed;
  if (!lenient) conf = validate(netConfSchema, json, [], 'invalid network config: ');
  else {
    // Field by field: a field in error takes its default, so DEL still frees what it finds.
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(netConfSchema.shape)) {
      const r = (schema as z.ZodMiniType).safeParse(json[key]);
      if (r.success) out[key] = r.data;
      else {
        ignored.push(describeIssue(r.error.issues[0]!, json[key], [key]));
        out[key] = (schema as z.ZodMiniType).safeParse(undefined).data;
      }
    }
    conf = out as Parsed;
  }
  const bridge: BridgeConf = {
    name: conf.bridge as IfName,
    isGateway: conf.isGateway,
    hairpin: conf.hairpinMode,
    promisc: conf.promiscMode,
    uplink: conf.uplink as IfName | undefined,
    ipMasq: conf.ipMasq,
    ipMasqExclude: conf.ipMasqExclude?.map((s) => toCidr(s)!),
  };
  return { ...common, ...conf, bridgeConf: bridge, ipsToRouteViaHost: conf.ipsToRouteViaHost.map((s) => toAddr(s)!), raw, json, ignored };
}
