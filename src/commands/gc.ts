// GC (spec 1.1.0): remove every veth of this network whose attachment is not in
// cni.dev/valid-attachments (the alias set at ADD says which attachment a veth serves), then let
// IPAM free the addresses. All errors are reported together.
import { validAttachments } from '../config/attachments.js';
import type { CniEnv } from '../cni/env.js';
import { CniError, Code } from '../cni/errors.js';
import type { NetConf } from '../config/netconf.js';
import { ipBatch, ipJson } from '../net/ip.js';
import { ALIAS_PREFIX, vethAlias } from '../plan/transparent.js';
import { log } from '../log.js';
import { callIpam } from './ipam.js';

export async function gc(env: CniEnv, conf: NetConf): Promise<void> {
  const valid = new Set(validAttachments(conf.json).map((a) => vethAlias({ network: conf.name, ...a })));
  const [links = []] = await ipJson(['link show']);
  const mine = `${ALIAS_PREFIX}${conf.name}:`;
  const stale = (links as { ifname: string; ifalias?: string }[])
    .filter((l) => l.ifalias?.startsWith(mine) && !valid.has(l.ifalias))
    .map((l) => l.ifname);
  const errors: string[] = [];
  if (stale.length) {
    log.info(`GC: deleting veths of attachments no longer valid: ${stale.join(', ')}`);
    const failure = await ipBatch(stale.map((n) => `link del ${n}`), undefined);
    if (failure) errors.push(`deleting ${stale[failure.line]}: ${failure.message}`);
  }
  if (conf.ipam) {
    try {
      await callIpam(env, conf, 'GC');
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) throw new CniError(Code.io, `GC failed: ${errors.join('; ')}`);
}

export async function status(env: CniEnv, conf: NetConf): Promise<void> {
  if (conf.ipam) await callIpam(env, conf, 'STATUS');
}
