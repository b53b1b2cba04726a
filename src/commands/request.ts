// One typed request per verb, made once at the edge from the environment and stdin: each verb
// takes its own request and never parses outside text again. ADD's and CHECK's carry the pod's
// namespace already opened; GC's its valid attachments; CHECK's its prevResult, parsed.
import type { CniEnv } from '../cni/env.js';
import { CniError, Code } from '../errors.js';
import { parseResult, type Result } from '../cni/result.js';
import { validAttachments, type Attachment } from '../config/attachments.js';
import type { NetConf, Stdin } from '../config/netconf.js';
import { openPodNetns, type PodNetns } from '../net/netns.js';
import { podMacOf, type IfName } from '../net/values.js';

interface Common {
  /** The environment as parsed: what a delegated IPAM is given, with the verb it runs. */
  env: CniEnv;
  conf: NetConf;
  /** Decoded once; its text is what a delegated plugin reads, as the spec has it. */
  stdin: Stdin & { json: Record<string, unknown> };
}
interface OnePod extends Common {
  attachment: Attachment & { ifname: IfName };
}
export type WithIpam = NetConf & { ipam: NonNullable<NetConf['ipam']> };

export interface AddRequest extends OnePod {
  command: 'ADD';
  conf: WithIpam;
  pod: PodNetns;
}
export interface CheckRequest extends OnePod {
  command: 'CHECK';
  pod: PodNetns;
  prev: Result;
}
export interface DelRequest extends OnePod {
  command: 'DEL';
}
export interface GcRequest extends Common {
  command: 'GC';
  valid: Attachment[];
}
export interface StatusRequest extends Common {
  command: 'STATUS';
}
export type Request = AddRequest | CheckRequest | DelRequest | GcRequest | StatusRequest;

/** The request for env.command (not VERSION), its checks in the order the verbs always made them. */
export function parseRequest(env: CniEnv, given: NetConf, stdin: Common['stdin']): Request {
  const conf = withArgsMac(env, given);
  const common = { env, conf, stdin };
  const attachment = { containerId: env.containerId, ifname: env.ifname };
  switch (env.command) {
    case 'ADD':
      if (!hasIpam(conf)) throw new CniError(Code.invalidConfig, 'invalid network config: ipam: required for ADD');
      // Opened before IPAM runs, so that a bad namespace allocates nothing.
      return { ...common, command: 'ADD', conf, attachment, pod: openPodNetns(env.netns!) };
    case 'CHECK': {
      if (conf.prevResult === undefined) throw new CniError(Code.invalidConfig, 'CHECK needs prevResult: none in the network config');
      const prev = parseResult(conf.prevResult, 'prevResult', Code.invalidConfig);
      return { ...common, command: 'CHECK', attachment, prev, pod: openPodNetns(env.netns!) };
    }
    case 'DEL':
      return { ...common, command: 'DEL', attachment };
    case 'GC':
      return { ...common, command: 'GC', valid: validAttachments(stdin.json) };
    case 'STATUS':
      return { ...common, command: 'STATUS' };
    case 'VERSION':
      throw new CniError(Code.internal, 'VERSION has no request');
  }
}

/**
 * CNI_ARGS `MAC=` (what podman sends for `--mac-address`), the pod's MAC when the config names
 * none (runtimeConfig.mac and args.cni.mac win, as in the reference bridge). Code 4 if it is no
 * pod's MAC; DEL and GC, which must run whatever the input, ignore it with a warning.
 */
function withArgsMac(env: CniEnv, conf: NetConf): NetConf {
  const text = env.args.get('MAC');
  if (text === undefined || conf.podMac) return conf;
  try {
    return { ...conf, podMac: podMacOf('CNI_ARGS MAC', text, Code.invalidEnv) };
  } catch (err) {
    if (env.command !== 'DEL' && env.command !== 'GC') throw err;
    return { ...conf, ignored: [...conf.ignored, (err as Error).message] };
  }
}

export function hasIpam(conf: NetConf): conf is WithIpam {
  return conf.ipam !== undefined;
}
