// The mode registry: the one place that knows which modes exist. ADD, CHECK, DEL, GC, explain
// and state ask it for a mode's plans and result; nothing else imports a mode by name.
import type { Result } from '../cni/result.js';
import { bridgeAddPlan, bridgeDelPlan, bridgeResult } from './bridge.js';
import { bridgeOnNode, defaultMtu, readNodeFacts, type NodeFacts } from '../net/facts.js';
import { neighboursByMac } from '../net/ip.js';
import { masqueradedPods } from '../net/nft.js';
import type { Addr, Mac } from '../net/values.js';
import type { Attachment } from '../config/attachments.js';
import { aliasAttachment, containerMac, hostVethName } from './names.js';
import type { BridgeConf, ModeName, NetConf } from '../config/netconf.js';
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
   * What DEL needs from the node, found by what marks it as this attachment's, never by
   * prevResult: the pod's MAC (the runtime's, else the one its veth's alias records, else the
   * derived one) and the pod's addresses where something DEL removes is keyed by them.
   */
  delLookUp(conf: NetConf, a: Attachment): Promise<{ podMac: Mac; podIps: Addr[] }>;
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
    delLookUp: async (conf: NetConf, a: Attachment) => ({
      podMac: conf.podMac ?? containerMac(conf.name, a),
      podIps: conf.masq ? (await masqueradedPods(conf.name)).filter((m) => m.tag === hostVethName(conf.name, a)).map((m) => m.ip) : [],
    }),
    observe: async (_b: BridgeConf, needMtu: boolean) => ({ bridgeExists: false, mtu: needMtu ? await defaultMtu() : undefined }),
    owned: (conf: NetConf) => readOwned(conf, { masq: !!conf.masq, macDnat: false }),
    stateRules: { neighbours: 'veth', bridgeNeighbourLeaks: false, macDnat: false },
  },
  bridge: {
    addPlan: bridgeAddPlan,
    delPlan: bridgeDelPlan,
    result: bridgeResult,
    // The bridge's neighbour entries (and masquerade and MAC DNAT elements) are keyed by address:
    // found by the pod's MAC, in one process with the veth's alias when the runtime names no MAC.
    delLookUp: async (conf: NetConf, a: Attachment) => {
      const { mac, ips } = await neighboursByMac(conf.bridge.name, hostVethName(conf.name, a), (alias) => conf.podMac ?? aliasAttachment(conf.name, alias)?.podMac ?? containerMac(conf.name, a));
      return { podMac: mac, podIps: ips };
    },
    // Azure's layout plans from the uplink's facts, its MTU included (one process); kubenet's
    // needs only to know whether the bridge is there, which /proc tells without a process.
    observe: async (b: BridgeConf, needMtu: boolean) =>
      b.uplink ? readNodeFacts(b.name, b.uplink) : { bridgeExists: await bridgeOnNode(b.name), mtu: needMtu ? await defaultMtu() : undefined },
    owned: (conf: NetConf) => readOwned(conf, { neighboursOn: conf.bridge.name, masq: !!conf.masq, macDnat: !!conf.bridge.uplink }),
    stateRules: { neighbours: 'bridge', bridgeNeighbourLeaks: true, macDnat: true },
  },
} satisfies Record<ModeName, Mode>;

export const modeOf = (name: ModeName): Mode => MODES[name];
