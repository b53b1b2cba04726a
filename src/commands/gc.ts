// GC (spec 1.1.0): remove every veth of this network (its alias starts `vnet:<network>:`) whose
// attachment is not in cni.dev/valid-attachments (compared by the veth name each valid
// attachment would have), with its bridge neighbour entry and masquerade element, then let IPAM
// free the addresses. It keeps going past a failure and reports every one.
import { validAttachments } from '../config/attachments.js';
import type { CniEnv } from '../cni/env.js';
import { CniError, Code } from '../cni/errors.js';
import type { NetConf } from '../config/netconf.js';
import { ALREADY_GONE, ipJson, ipRunAll } from '../net/ip.js';
import { delPod, delPodMac, mappedPods, masqueradedPods, nftRun, type NftLine } from '../net/nft.js';
import { ifNameProblem, toAddr, type IfName } from '../net/values.js';
import type { IpCmd } from '../net/command.js';
import { containerMac, hostVethName, networkAliasPrefix } from '../plan/names.js';
import { log } from '../log.js';
import { callIpam, hasIpam } from './ipam.js';

export async function gc(env: CniEnv, conf: NetConf): Promise<void> {
  for (const why of conf.ignored) log.warn(`GC ignores a field in error: ${why}`);
  const valid = new Set<string>(validAttachments(conf.json).map((a) => hostVethName(conf.name, a)));
  const [links = [], neighs = []] = await ipJson(['link show', 'neigh show']);
  const mine = networkAliasPrefix(conf.name);
  const errors: string[] = [];
  const stale: IfName[] = [];
  const staleMacs = new Set<string>();
  for (const l of links as { ifname: string; ifalias?: string }[]) {
    if (!l.ifalias?.startsWith(mine) || valid.has(l.ifname)) continue;
    // A name read back from the kernel is outside text too.
    if (ifNameProblem(l.ifname)) errors.push(`cannot delete link ${JSON.stringify(l.ifname)}: ${ifNameProblem(l.ifname)}`);
    else stale.push(l.ifname as IfName);
    // The alias names the attachment (unless cut at 255 bytes): its pod's MAC keys the bridge's neighbour entry.
    const [containerId, ...ifname] = l.ifalias.slice(mine.length).split(':');
    if (containerId && l.ifalias.length < 255) staleMacs.add(containerMac(conf.name, { containerId, ifname: ifname.join(':') }));
  }
  const br = conf.bridgeConf.name;
  const staleNeighs = (neighs as { dst?: string; dev?: string; lladdr?: string }[]).flatMap((n) => {
    const ip = n.dev === br && n.lladdr && staleMacs.has(n.lladdr) && n.dst ? toAddr(n.dst) : undefined;
    return ip ? [ip] : [];
  });
  const cmds: IpCmd[] = [...stale.map((n): IpCmd => ['link', 'del', 'dev', n]), ...staleNeighs.map((a): IpCmd => ['neigh', 'del', a.ip, 'dev', br])];
  if (cmds.length) {
    log.info(`GC: deleting what attachments no longer valid left: ${[...stale, ...staleNeighs.map((a) => `neighbour ${a.ip} on ${br}`)].join(', ')}`);
    // A DEL racing this GC may have removed some already: that is what was wanted.
    const failures = (await ipRunAll(cmds)).filter((f) => !ALREADY_GONE.test(f.message));
    for (const f of failures) errors.push(`${cmds[f.index]?.join(' ') ?? 'a command'}: ${f.message}`);
  }
  // Masquerade elements and Azure's MAC DNAT rules are tagged with their attachment's veth name:
  // a tag no valid attachment has is a stray. Each removal works whether or not the element is
  // still there (a DEL racing this GC), so a kind's strays go in one transaction.
  if (conf.ipMasq) await removeStrays(() => masqueradedPods(conf.name), (m) => `masquerade element ${m.ip.ip}`, (m) => delPod(conf.name, m.ip), valid, errors);
  if (conf.bridgeConf.uplink) await removeStrays(() => mappedPods(conf.name), (m) => `MAC DNAT rule ${m.ip.ip} -> ${m.mac}`, (m) => delPodMac(conf.name, m.ip, m.mac), valid, errors);
  if (hasIpam(conf)) {
    try {
      await callIpam(env, conf, 'GC');
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) throw new CniError(Code.io, `GC failed ${errors.length} time(s): ${errors.join('; ')}`);
}

/** Removes the tagged elements whose tag is no valid attachment's veth; failures go to `errors`. */
async function removeStrays<T extends { tag: string }>(read: () => Promise<T[]>, name: (e: T) => string, del: (e: T) => NftLine[], valid: Set<string>, errors: string[]): Promise<void> {
  try {
    const strays = (await read()).filter((e) => !valid.has(e.tag));
    if (!strays.length) return;
    for (const e of strays) log.info(`GC: removing ${name(e)} (${e.tag || 'untagged'})`);
    const failure = await nftRun(strays.flatMap(del));
    if (failure && !ALREADY_GONE.test(failure)) errors.push(`removing ${strays.map(name).join(', ')}: ${failure}`);
  } catch (err) {
    errors.push((err as Error).message);
  }
}

export async function status(env: CniEnv, conf: NetConf): Promise<void> {
  if (hasIpam(conf)) await callIpam(env, conf, 'STATUS');
}
