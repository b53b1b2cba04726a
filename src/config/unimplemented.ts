// Fields other plugins know and vnet does not implement. The spec asks a plugin to tolerate fields
// it does not know, so none of these is an error; but a user who wrote one asked for something,
// and silence would let them believe they got it. `vnet validate` warns about each one present,
// and each ADD logs them in one line. Fields nobody knows stay tolerated without a word. Below,
// the settings vnet honours that do not give what they are usually set for.

/** Field → who knows it, what it does there, and what vnet does instead. */
const UNIMPLEMENTED: Readonly<Record<string, string>> = {
  addIf: "kubenet's conflist template writes it (the pod's interface name); the reference bridge ignores it, and so does vnet: the pod's interface is CNI_IFNAME",
  isDefaultGateway: "the reference bridge's: the bridge's address as the pod's default route; vnet-ipam's ranges give the gateway, and its routes the default route",
  forceAddress: "the reference bridge's: replace the bridge's address when it differs; vnet never changes an address it did not add",
  ipMasqBackend: "the reference bridge's and ptp's (iptables or nftables); vnet masquerades with nftables only",
  vlan: "the reference bridge's VLAN tag on the pod's port: not implemented",
  vlanTrunk: "the reference bridge's VLAN trunk on the pod's port: not implemented",
  preserveDefaultVlan: "the reference bridge's: not implemented (vnet sets no VLAN)",
  macspoofchk: "the reference bridge's MAC spoof check (nftables): not implemented",
  enabledad: "the reference bridge's duplicate address detection for IPv6: vnet adds addresses with nodad, they are unique by IPAM",
  disableContainerInterface: "the reference bridge's: not implemented (the pod's interface is always up)",
  portIsolation: "the reference bridge's isolated ports: not implemented",
  master: "Azure CNI's name for the NIC: vnet calls it `uplink`",
  adapterName: "Azure CNI's (Windows) adapter name: not implemented",
  logTarget: "Azure CNI's log destination: vnet logs to `logFile`",
  infraVnetAddressSpace: "Azure CNI's multi-tenancy setting: not implemented",
  ipv6Mode: "Azure CNI's IPv6 NAT mode: not implemented (vnet is dual stack when its ranges are)",
  serviceCidrs: "Azure CNI's overlay setting: not implemented",
  vnetCidrs: "Azure CNI's overlay setting: not implemented",
  podNamespaceForDualNetwork: "Azure CNI's multi-tenancy setting: not implemented",
  multiTenancy: "Azure CNI's multi-tenancy: not implemented",
  enableSnatOnHost: "Azure CNI's SNAT on the host for multi-tenant pods: not implemented (see `ipMasq`)",
  enableExactMatchForPodName: "Azure CNI's: not implemented (vnet names veths by network, container ID and ifname)",
  disableHairpinOnHostInterface: "Azure CNI's: vnet's Azure layout always sets hairpin on the uplink, as Azure does by default",
  disableIPTableLock: "Azure CNI's: vnet writes no iptables rules",
  disableAsyncDelete: "Azure CNI's: vnet's DEL is always synchronous",
  cnsurl: "Azure CNI's CNS endpoint: vnet-ipam allocates on the node, there is no CNS",
  executionMode: "Azure CNI's (v4 swift): not implemented",
  windowsSettings: "Azure CNI's Windows settings: not implemented",
  AdditionalArgs: "Azure CNI's (Windows policies): not implemented",
  env: "Azure CNI's Wire Server environment: not implemented",
  dns: "the reference plugins copy it into their result; vnet's result carries the DNS that vnet-ipam reads from `ipam.resolvConf`",
};

/** `field: why` for each field in `config` that vnet does not implement, in the config's order. */
export function unimplementedFields(config: Record<string, unknown>): string[] {
  return Object.keys(config)
    .filter((k) => Object.hasOwn(UNIMPLEMENTED, k) && config[k] !== undefined)
    .map((k) => `${k}: not implemented by vnet, ignored: ${UNIMPLEMENTED[k]}`);
}

/**
 * Settings vnet honours that do not give what they are usually set for, each with what to set
 * instead: `vnet validate` warns, ADD logs them.
 */
export function caveats(config: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (config.mode === 'bridge' && config.promiscMode === true && config.hairpinMode !== true) {
    out.push(
      "promiscMode without hairpinMode: the bridge is promiscuous, as asked, but that does not let a pod reach itself through a Service (kubenet's \"promiscuous-bridge\"): the copy the bridge hands up is forwarded without its connection, so it is never masqueraded and the pod drops it (measured on Linux 6.18, test/bridge.test.ts); set hairpinMode: true",
    );
  }
  return out;
}
