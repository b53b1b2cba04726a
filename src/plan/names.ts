// Deterministic names and addresses, so DEL finds everything without the container's netns and
// nothing has to be read back after it is created.
import { createHash } from 'node:crypto';

/** The MAC every transparent-mode host veth carries, as Azure CNI does. */
export const HOST_VETH_MAC = 'aa:aa:aa:aa:aa:aa';
/** The pod's gateway in transparent mode: link-local, answered by the host's proxy ARP. */
export const POD_GATEWAY = '169.254.1.1';

function digest(network: string, containerId: string, ifname: string): string {
  // ':' appears in none of the three (each is validated), so the key is unambiguous.
  return createHash('sha1').update(`${network}:${containerId}:${ifname}`).digest('hex');
}

/** `azv` + 11 hex digits: 14 characters, within the 15-byte limit of Linux interface names. */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  return 'azv' + digest(network, containerId, ifname).slice(0, 11);
}

/** A locally administered unicast MAC for the container end, derived from the same key. */
export function containerMac(network: string, containerId: string, ifname: string): string {
  const hex = digest(network, containerId, ifname).slice(20, 30);
  return ['02', ...hex.match(/../g)!].join(':');
}
