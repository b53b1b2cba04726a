// Masquerade as plan steps, the same in every mode: the network's nftables objects ensured
// (shared), the pod's addresses as elements tagged with its host veth (per attachment), and their
// removal on DEL. Transparent mode with a private pod CIDR is Azure CNI Overlay: pod traffic
// leaving the cluster must take the node's address, exactly as under kubenet.
import type { Family } from '../net/address.js';
import { NFT_TABLE, addPod, delPod, ensureMasquerade, masqNames } from '../net/nft.js';
import type { Addr, Cidr, IfName } from '../net/values.js';
import type { MasqConf } from '../config/netconf.js';
import { FAMILIES } from './pod.js';
import type { Step } from './plan.js';

/** ADD's masquerade steps for a pod, or none when the config does not ask for it. */
export function masqSteps(network: string, masq: MasqConf | undefined, cidrs: readonly Cidr[], families: readonly Family[], veth: IfName): Step[] {
  if (!masq) return [];
  // Without ipMasqExclude, each family's pod subnet stays unmasqueraded, and only the pod's own families are refilled.
  const exclude = masq.exclude ?? cidrs;
  const shown = exclude.filter((c) => masq.exclude || families.includes(c.family));
  return [
    {
      say: `Ensuring masquerade for network ${network}: pod traffic to anything outside ${shown.map((c) => c.network).join(', ') || 'nothing'} leaves with the node's address (nftables table ${NFT_TABLE})`,
      side: 'node',
      lifecycle: 'shared',
      nft: ensureMasquerade(network, exclude, masq.exclude ? FAMILIES : families),
    },
    {
      say: `Masquerading ${cidrs.map((c) => c.ip).join(', ')}: element${cidrs.length > 1 ? 's' : ''} of ${families.map((f) => masqNames(network).pods[f]).join(', ')}, tagged ${veth}`,
      side: 'node',
      lifecycle: 'attachment',
      nft: cidrs.flatMap((c) => addPod(network, c, veth)),
      nftUndo: cidrs.flatMap((c) => delPod(network, c)),
      expect: cidrs.map((c) => ({ kind: 'masq', side: 'node', network, ip: c.ip })),
    },
  ];
}

/** DEL's removal of the pod's elements (whether or not they exist), or none. */
export function masqDelSteps(network: string, masq: MasqConf | undefined, podIps: readonly Addr[]): Step[] {
  if (!masq || !podIps.length) return [];
  return [
    {
      say: `Removing ${podIps.map((a) => a.ip).join(', ')} from the masquerade sets of network ${network}`,
      side: 'node',
      lifecycle: 'attachment',
      nft: podIps.flatMap((a) => delPod(network, a)),
    },
  ];
}
