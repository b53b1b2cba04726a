// The network configuration of the main plugin: raw JSON in, typed and resolved config out.
// Unknown top-level fields are tolerated (the spec requires it); known ones are checked strictly,
// except for DEL and GC, which must work with a config edited since ADD: they take what they
// need (name, IPAM) and fall back to the default, with a warning, for any other field in error.
import { isLogName, type LogLevel } from '../log.js';
import * as z from 'zod/mini';
import { CniError, Code } from '../errors.js';
import { checkVersion } from '../cni/version.js';
import { overlappingPair } from '../net/address.js';
import { ifNameProblem, podMacOf, toAddr, toCidr, type Addr, type Cidr, type IfName, type Mac } from '../net/values.js';
import { describeIssue, validate } from '../issue.js';
import type { Command } from '../cni/env.js';

/** libcni's rule for network names, plus a length that fits a directory name and a veth alias. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const NETWORK_NAME_MAX = 200;

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

export const MODES = ['transparent', 'bridge'] as const;
export type ModeName = (typeof MODES)[number];

/** Bridge mode's fields, typed. */
export interface BridgeConf {
  name: IfName;
  isGateway: boolean;
  hairpin: boolean;
  /** The bridge in promiscuous mode (the reference bridge's promiscMode). */
  promisc: boolean;
  /** Azure's layout: this NIC is enslaved to the bridge and its addresses and routes move onto it. */
  uplink?: IfName;
}

/** ipMasq, in either mode: pod traffic to anything outside `exclude` (default: the pod subnet) is masqueraded. */
export interface MasqConf {
  exclude?: Cidr[];
}

export const netConfSchema = z.object({
  mode: z._default(z.enum(MODES), 'transparent'),
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

/** stdin, decoded once: its text (what a delegated plugin is given) and its JSON object, or why there is none. */
export interface Stdin {
  text: string;
  json?: Record<string, unknown>;
  problem?: string;
}

export function decodeStdin(text: string): Stdin {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { text, problem: (err as Error).message };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { text, problem: 'not a JSON object' };
  return { text, json: json as Record<string, unknown> };
}

/**
 * The log's file and level, before anything else is parsed, so that an error in the environment
 * or the rest of the config is logged where the config says. Each field is validated as in the
 * full parse; an invalid one is left out (the full parse then names it).
 */
export function logSettings({ json }: Stdin): { file?: string; level?: LogLevel } {
  if (!json) return {};
  const file = netConfSchema.shape.logFile.safeParse(json.logFile);
  const level = netConfSchema.shape.logLevel.safeParse(json.logLevel);
  return { file: file.success ? file.data : undefined, level: json.logLevel !== undefined && level.success ? level.data : undefined };
}

export type Common = z.infer<typeof commonSchema>;
type Parsed = z.infer<typeof netConfSchema>;
/** The main plugin's config, typed: what the verbs, explain and state read. */
export interface NetConf extends Common {
  mode: ModeName;
  bridge: BridgeConf;
  /** Present when ipMasq is on. */
  masq?: MasqConf;
  mtu?: number;
  ipsToRouteViaHost: Addr[];
  /** The pod's MAC from the runtime (capability `mac`, runtimeConfig.mac); else one derived from the attachment. */
  podMac?: Mac;
  ipam?: Parsed['ipam'];
  logFile?: string;
  logLevel: LogLevel;
  /** fields DEL or GC found in error and replaced by their default, for the log */
  ignored: string[];
}

/** Decodes stdin: JSON (code 6), then name (7), then version (1), then the rest (7). */
/** stdin that holds a JSON object, or code 6 saying why not. */
export function decoded(stdin: Stdin): Stdin & { json: Record<string, unknown> } {
  if (!stdin.json) throw new CniError(Code.decode, `failed to decode network config from stdin: ${stdin.problem}`);
  return { ...stdin, json: stdin.json };
}

export function parseCommon(stdin: Stdin, command: Command): Common & { json: Record<string, unknown> } {
  const obj = decoded(stdin).json;
  if (typeof obj.name !== 'string' || obj.name === '') throw new CniError(Code.invalidConfig, 'missing network name');
  const common = validate(commonSchema, obj, [], 'invalid network config: ');
  checkVersion(common.cniVersion, command);
  return { ...common, json: obj };
}

/** The main plugin's config; `input` is stdin, or a config's text (explain, state, validate). */
export function parseNetConf(input: Stdin | string, command: Command): NetConf {
  const common = parseCommon(typeof input === 'string' ? decodeStdin(input) : input, command);
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
  const { json: _, ...rest } = common;
  // As the reference bridge: runtimeConfig.mac wins over args.cni.mac (and both over CNI_ARGS MAC, see commands/request.ts).
  let podMac: Mac | undefined;
  const cniArgs = common.args?.cni;
  const given: [string, unknown][] = [
    ['runtimeConfig.mac', common.runtimeConfig?.mac],
    ['args.cni.mac', typeof cniArgs === 'object' && cniArgs !== null ? (cniArgs as Record<string, unknown>).mac : undefined],
  ];
  for (const [field, value] of given) {
    if (value === undefined || podMac) continue;
    try {
      podMac = podMacOf(field, value, Code.invalidConfig);
    } catch (err) {
      if (!lenient) throw err;
      ignored.push((err as Error).message);
    }
  }
  return {
    ...rest,
    mode: conf.mode,
    bridge: { name: conf.bridge as IfName, isGateway: conf.isGateway, hairpin: conf.hairpinMode, promisc: conf.promiscMode, uplink: conf.uplink as IfName | undefined },
    masq: conf.ipMasq ? { exclude: conf.ipMasqExclude?.map((s) => toCidr(s)!) } : undefined,
    mtu: conf.mtu,
    ipsToRouteViaHost: conf.ipsToRouteViaHost.map((s) => toAddr(s)!),
    podMac,
    ipam: conf.ipam,
    logFile: conf.logFile,
    logLevel: conf.logLevel,
    ignored,
  };
}
