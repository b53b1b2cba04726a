// Deterministic names and addresses, so DEL finds everything without the container's netns and
// nothing has to be read back after it is created.
import { sha1Hex } from '../hash.js';
import type { Attachment } from '../config/attachments.js';
import { addr, alias, mac, type Alias, type IfName, type Mac } from '../net/values.js';

/** The MAC every transparent-mode host veth carries, as Azure CNI does. */
export const HOST_VETH_MAC = mac('aa:aa:aa:aa:aa:aa');
/**
 * The pod's gateways in transparent mode, per family, as Azure CNI has them: link-local addresses
 * no one holds, which the pod's permanent neighbour entries map to the host veth's MAC.
 */
export const POD_GATEWAY = { 4: addr('169.254.1.1'), 6: addr('fe80::1234:5678:9abc') } as const;

// One call names the same attachment several times (the link check, the plan, the result); the
// hash runs cold, in V8's interpreter, so each key is hashed once.
const digests = new Map<string, string>();
function digest(network: string, a: Attachment): string {
  // ':' appears in neither the network name nor the container ID (both validated), so the key
  // is unambiguous whatever the interface name holds.
  const key = `${network}:${a.containerId}:${a.ifname}`;
  let d = digests.get(key);
  if (d === undefined) digests.set(key, (d = sha1Hex(key)));
  return d;
}

/** `azv` + 11 hex digits: 14 characters, within the 15-byte limit of Linux interface names. */
export function hostVethName(network: string, a: Attachment): IfName {
  return ('azv' + digest(network, a).slice(0, 11)) as IfName;
}

/** A locally administered unicast MAC for the container end, derived from the same key. */
export function containerMac(network: string, a: Attachment): Mac {
  const hex = digest(network, a).slice(20, 30);
  return mac(['02', ...hex.match(/../g)!].join(':'));
}

/** The host end's MAC in bridge mode (transparent mode uses HOST_VETH_MAC), from the same key. */
export function hostVethMac(network: string, a: Attachment): Mac {
  return mac(['02', ...digest(network, a).slice(30, 40).match(/../g)!].join(':'));
}

/**
 * A bridge's pinned MAC when no uplink lends its own: derived from the network and bridge name.
 * Pinned because a Linux bridge otherwise takes its lowest port's MAC, which changes as pods
 * come and go and breaks the neighbours' caches (Azure CNI #751).
 */
export function bridgeMac(network: string, bridge: string): Mac {
  const hex = sha1Hex(`bridge:${network}:${bridge}`);
  return mac(['02', ...hex.slice(0, 10).match(/../g)!].join(':'));
}

/**
 * The host veth's alias: `vnet:<network>:<containerID>:<ifname>`, and `:mac=<pod MAC, hyphens>` when
 * the runtime chose the pod's MAC (runtimeConfig.mac), cut to the kernel's 255 bytes. It marks the
 * veth as this network's (GC looks for the `vnet:<network>:` prefix and compares link names, so a
 * cut alias costs nothing), tells a reader whose it is, and tells DEL, GC and `vnet state` a pod
 * MAC they could not derive.
 */
const ALIAS_PREFIX = 'vnet:';
export function vethAlias(network: string, a: Attachment, podMac: Mac): Alias {
  const chosen = podMac === containerMac(network, a) ? [] : [`mac=${podMac.replace(/:/g, '-')}`];
  return alias([ALIAS_PREFIX + network, a.containerId, a.ifname, ...chosen]);
}
export const networkAliasPrefix = (network: string) => `${ALIAS_PREFIX}${network}:`;

/**
 * The attachment an alias names, if the alias is this network's, with its pod's MAC (the one the
 * alias records, else the derived one); `cut` when the kernel cut it at 255 bytes (the rest may be
 * short of its end).
 */
export function aliasAttachment(network: string, alias: string | undefined): (Attachment & { podMac: Mac; cut: boolean }) | undefined {
  const prefix = networkAliasPrefix(network);
  if (!alias?.startsWith(prefix)) return undefined;
  const parts = alias.slice(prefix.length).split(':');
  const chosen = /^mac=([0-9a-f]{2}(-[0-9a-f]{2}){5})$/.exec(parts[parts.length - 1] ?? '');
  if (chosen) parts.pop();
  const [containerId = '', ...ifname] = parts;
  const a = { containerId, ifname: ifname.join(':') };
  return { ...a, podMac: chosen ? (chosen[1]!.replace(/-/g, ':') as Mac) : containerMac(network, a), cut: alias.length >= 255 };
}
