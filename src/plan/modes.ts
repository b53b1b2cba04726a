// The mode registry: the one place that knows which modes exist. ADD, CHECK, DEL, GC, explain
// and state ask it for a mode's plans and result; nothing else imports a mode by name.
import type { Result } from '../cni/result.js';
import { bridgeAddPlan, bridgeDelPlan, bridgeResult } from './bridge.js';
import { bridgeOnNode, defaultMtu, readNodeFacts, type NodeFacts } from '../net/facts.js';
import { neighbourAddrs } from '../net/ip.js';
import { masqueradedPods } from '../net/nft.js';
import type { Addr } from '../net/values.js';
import type { Attachment } from '../config/attachments.js';
import { containerMac, hostVethName } from './names.js';
import type { BridgeConf, MasqConf, ModeName, NetConf } from '../config/netconf.js';
import { readOwned, type Owned } from './gc.js';
import type { AddInput, DelInput } from './input.js';
import type { Plan } from './plan.js';
import { transparentAddPlan, transparentDelPlan, transparentResult } from './transparent.js';

export interface Mode {
  addPlan(input: AddInput): Plan;
  /** What DEL runs: needs only the names (and the pod's addresses, if known), never the pod's netns. */
  delPlan(d: DelInput): Plan;
  /**
   * Reads the node facts the plan needs, and the MTU when `needMtu` (the config names none), in
   * as few processes as the mode allows: none, or one.
   */
  observe(bridge: BridgeConf, needMtu: boolean): Promise<NodeFacts>;
  /**
   * Where DEL finds the pod's addresses when prevResult has none, or undefined when DEL needs
   * none (nothing it removes is keyed by them).
   */
  podIpsLookUp(network: string, a: Attachment, b: BridgeConf, masq: MasqConf | undefined): (() => Promise<Addr[]>) | undefined;
  result(input: AddInput): Result;
  /** What the network owns on the node that this mode keys by pod, for GC (see gc.ts). */
  owned(conf: NetConf): Promise<Owned>;
  /** `vnet state`'s rules for this mode. */
  stateRules: {
    /** Where a pod's neighbour entries are: on its veth, or on the bridge. */
    neighbours: 'veth' | 'bridge';
    /** A permanent entry on the bridge whose MAC is no live attachment's pod MAC is a leak. */
    bridgeNeighbourLeaks: boolean;
    /** The network may have MAC DNAT rules (Azure's layout), each an allocation's or a leak. */
    macDnat: boolean;
  };
}

const MODES = {
  transparent: {
    addPlan: transparentAddPlan,
    delPlan: transparentDelPlan,
    result: transparentResult,
    // Only masquerade elements are keyed by address: found by their tag, the veth's name.
    podIpsLookUp: (network: string, a: Attachment, _b: BridgeConf, masq: MasqConf | undefined) =>
      masq ? async () => (await masqueradedPods(network)).filter((m) => m.tag === hostVethName(network, a)).map((m) => m.ip) : undefined,
    observe: async (_b: BridgeConf, needMtu: boolean) => ({ bridgeExists: false, mtu: needMtu ? await defaultMtu() : undefined }),
    owned: (conf: NetConf) => readOwned(conf, { masq: !!conf.masq, macDnat: false }),
    stateRules: { neighbours: 'veth', bridgeNeighbourLeaks: false, macDnat: false },
  },
  bridge: {
    addPlan: bridgeAddPlan,
    delPlan: bridgeDelPlan,
    result: bridgeResult,
    // The bridge's neighbour entries (and masquerade elements) are keyed by address: found by the pod's MAC.
    podIpsLookUp: (network: string, a: Attachment, b: BridgeConf) => () => neighbourAddrs(b.name, containerMac(network, a)),
    // Azure's layout plans from the uplink's facts, its MTU included (one process); kubenet's
    // needs only to know whether the bridge is there, which /proc tells without a process.
    observe: async (b: BridgeConf, needMtu: boolean) =>
      b.uplink ? readNodeFacts(b.name, b.uplink) : { bridgeExists: await bridgeOnNode(b.name), mtu: needMtu ? await defaultMtu() : undefined },
    owned: (conf: NetConf) => readOwned(conf, { neighboursOn: conf.bridge.name, masq: !!conf.masq, macDnat: !!conf.bridge.uplink }),
    stateRules: { neighbours: 'bridge', bridgeNeighbourLeaks: true, macDnat: true },
  },
} satisfies Record<ModeName, Mode>;

export const modeOf = (name: ModeName): Mode => MODES[name];
