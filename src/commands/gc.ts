// GC (spec 1.1.0): remove every veth of this network (its alias starts `vnet:<network>:`) whose
// attachment is not in cni.dev/valid-attachments (compared by the veth name each valid
// attachment would have) and its masquerade elements likewise, then let IPAM free the addresses. It keeps going past a failure and
// reports every one.
import { validAttachments } from '../config/attachments.js';
import type { CniEnv } from '../cni/env.js';
import { CniError, Code } from '../cni/errors.js';
import type { NetConf } from '../config/netconf.js';
import { ipJson, ipRunAll } from '../net/ip.js';
import { delPod, masqueradedPods, nftRun } from '../net/nft.js';
import { ifNameProblem, type IfName } from '../net/values.js';
import { hostVethName, networkAliasPrefix } from '../plan/names.js';
import { log } from '../log.js';
import { callIpam, hasIpam } from './ipam.js';

export async function gc(env: CniEnv, conf: NetConf): Promise<void> {
  for (const why of conf.ignored) log.warn(`GC ignores a field in error: ${why}`);
  const valid = new Set<string>(validAttachments(conf.json).map((a) => hostVethName(conf.name, a)));
  const [links = []] = await ipJson(['link show']);
  const mine = networkAliasPrefix(conf.name);
  const errors: string[] = [];
  const stale: IfName[] = [];
  for (const l of links as { ifname: string; ifalias?: string }[]) {
    if (!l.ifalias?.startsWith(mine) || valid.has(l.ifname)) continue;
    // A name read back from the kernel is outside text too.
    if (ifNameProblem(l.ifname)) errors.push(`cannot delete link ${JSON.stringify(l.ifname)}: ${ifNameProblem(l.ifname)}`);
    else stale.push(l.ifname as IfName);
  }
  if (stale.length) {
    log.info(`GC: deleting veths of attachments no longer valid: ${stale.join(', ')}`);
    const failures = await ipRunAll(stale.map((n) => ['link', 'del', 'dev', n]));
    for (const f of failures) errors.push(`deleting ${stale[f.index] ?? 'a link'}: ${f.message}`);
  }
  if (conf.ipMasq) {
    // Masquerade elements are tagged with their attachment's veth name: a tag no valid attachment has is a stray.
    try {
      const strays = (await masqueradedPods(conf.name)).filter((m) => !valid.has(m.tag));
      for (const m of strays) {
        log.info(`GC: removing masquerade element ${m.ip.ip} (${m.tag || 'untagged'})`);
        const failure = await nftRun(delPod(conf.name, m.ip));
        if (failure) errors.push(`removing masquerade element ${m.ip.ip}: ${failure}`);
      }
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (hasIpam(conf)) {
    try {
      await callIpam(env, conf, 'GC');
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) throw new CniError(Code.io, `GC failed ${errors.length} time(s): ${errors.join('; ')}`);
}

export async function status(env: CniEnv, conf: NetConf): Promise<void> {
  if (hasIpam(conf)) await callIpam(env, conf, 'STATUS');
}
