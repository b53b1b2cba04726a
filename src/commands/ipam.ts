// The main plugin talks to its IPAM only through the CNI protocol: it runs `ipam.type` from
// CNI_PATH. When that file is this very executable (vnet-ipam is a hard link to vnet), the same
// code runs in-process instead, saving a process start; the result is the same.
import { execPlugin, findPlugin, isSelf } from '../cni/delegate.js';
import type { CniEnv, Command } from '../cni/env.js';
import { CniError, Code } from '../cni/errors.js';
import { parseResult, type Result } from '../cni/result.js';
import type { NetConf } from '../config/netconf.js';
import { runIpam } from '../ipam/plugin.js';
import { log } from '../log.js';

export async function callIpam(env: CniEnv, conf: NetConf, command: Command): Promise<Result | undefined> {
  if (!conf.ipam) throw new CniError(Code.invalidConfig, 'invalid network config: ipam: required (e.g. {"type": "vnet-ipam", ...})');
  const file = findPlugin(conf.ipam.type, env.path);
  const self = isSelf(file);
  log.info(`Calling plugin ${conf.ipam.type} ${command}${self ? ' (in-process: it is this executable)' : ` (${file})`}`);
  if (self) return runIpam({ ...env, command }, conf.json);
  const out = await execPlugin(file, command, conf.raw);
  return command === 'ADD' ? parseResult(out, `${conf.ipam.type} result`) : undefined;
}
