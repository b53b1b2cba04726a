// The main plugin talks to its IPAM only through the CNI protocol: it runs `ipam.type` from
// CNI_PATH. When that file is this very executable (vnet-ipam is a hard link to vnet), the same
// code runs in-process instead, saving a process start; the result is the same.
import { execPlugin, findPlugin, isSelf } from '../cni/delegate.js';
import type { Command } from '../cni/env.js';
import { CniError, Code, firstLine } from '../errors.js';
import { parseResult, type Result } from '../cni/result.js';
import { runIpam } from '../ipam/plugin.js';
import { log } from '../log.js';
import type { Request, WithIpam } from './request.js';

/**
 * Runs the IPAM plugin. For ADD it returns what the plugin answered, unparsed (a Result when
 * in-process, stdout text when run): the caller parses it with `ipamResult` once it is ready to
 * give the address back, so that an answer it refuses still gets an IPAM DEL.
 */
export async function callIpam({ env, stdin }: Request, conf: WithIpam, command: Command): Promise<Result | string | undefined> {
  const file = findPlugin(conf.ipam.type, env.path);
  const self = isSelf(file);
  log.info(`Calling plugin ${conf.ipam.type} ${command}${self ? ' (in-process: it is this executable)' : ` (${file})`}`);
  if (self) return runIpam({ ...env, command }, stdin.json);
  return execPlugin(file, command, stdin.text);
}

/** An IPAM ADD answer as a Result: JSON and shape checked (code 6 naming the field). */
export function ipamResult(answer: Result | string | undefined, type: string): Result {
  if (typeof answer !== 'string') return parseResult(answer, `result of IPAM plugin ${type}`);
  let json: unknown;
  try {
    json = JSON.parse(answer);
  } catch {
    throw new CniError(Code.decode, `IPAM plugin ${type} printed something that is not JSON: ${JSON.stringify(firstLine(answer).slice(0, 200))}`);
  }
  return parseResult(json, `result of IPAM plugin ${type}`);
}
