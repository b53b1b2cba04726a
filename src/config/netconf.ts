// The network configuration of the main plugin: raw JSON in, typed and resolved config out.
// Unknown top-level fields are tolerated (the spec requires it); known ones are checked strictly.
import * as z from 'zod/mini';
import { isIPv4 } from 'node:net';
import { CniError, Code } from '../cni/errors.js';
import { checkVersion } from '../cni/version.js';
import { validate } from './issue.js';
import type { Command } from '../cni/env.js';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IFNAME = /^[^/:\s]{1,15}$/;

const ifname = z.string().check(z.regex(IFNAME, 'must be an interface name (1-15 bytes, no /, : or whitespace)'));
const ipv4 = z.string().check(z.refine((s) => isIPv4(s), 'must be an IPv4 address'));

/** Fields every plugin config has (SPEC.md section 1). */
export const commonSchema = z.object({
  cniVersion: z._default(z.string(), '0.1.0'),
  name: z.string().check(z.regex(NAME, 'must match ' + NAME.source)),
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
  ipMasq: z._default(z.boolean(), false),
  ipsToRouteViaHost: z._default(z.array(ipv4), []),
  logFile: z.optional(z.string()),
  logLevel: z._default(z.enum(['debug', 'info', 'warn', 'error', 'off']), 'info'),
  ipam: z.optional(z.looseObject({ type: z.string().check(z.minLength(1, 'must name an IPAM plugin')) })),
});

export type Common = z.infer<typeof commonSchema>;
export type NetConf = Common &
  z.infer<typeof netConfSchema> & {
    /** stdin as received, for delegation */
    raw: string;
    /** stdin decoded, for the in-process IPAM */
    json: Record<string, unknown>;
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
  const json = common.json;
  const conf = validate(netConfSchema, json, [], 'invalid network config: ');
  // Refused rather than silently ignored: a config must not promise what the plugin won't do.
  if (conf.mode === 'bridge') {
    throw new CniError(Code.unsupportedField, 'mode "bridge" is not implemented yet; use "transparent"');
  }
  if (conf.ipMasq) throw new CniError(Code.unsupportedField, 'ipMasq is not implemented yet; masquerade on the node instead');
  return { ...common, ...conf, raw, json };
}
