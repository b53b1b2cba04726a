// The mode registry: the one place that knows which modes exist. ADD, CHECK, DEL, GC, explain
// and state ask it for a mode's plans and result; nothing else imports a mode by name.
import type { Result } from '../cni/result.js';
import { bridgeAddPlan, bridgeDelPlan, bridgeResult } from './bridge.js';
import { defaultMtu, readNodeFacts, type NodeFacts } from '../net/facts.js';
import { nodeHasLink } from '../net/ip.js';
import type { AddInput, BridgeConf, DelInput } from './input.js';
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
  /** DEL also needs the pod's addresses (to remove state keyed by them); without prevResult, looked up. */
  delNeedsPodIps: boolean;
  result(input: AddInput): Result;
}

const MODES = {
  transparent: {
    addPlan: transparentAddPlan,
    delPlan: transparentDelPlan,
    result: transparentResult,
    delNeedsPodIps: false,
    observe: async (_b: BridgeConf, needMtu: boolean) => ({ bridgeExists: false, mtu: needMtu ? await defaultMtu() : undefined }),
  },
  bridge: {
    addPlan: bridgeAddPlan,
    delPlan: bridgeDelPlan,
    result: bridgeResult,
    delNeedsPodIps: true,
    // Azure's layout plans from the uplink's facts, its MTU included (one process); kubenet's
    // needs only to know whether the bridge is there, which /proc tells without a process.
    observe: async (b: BridgeConf, needMtu: boolean) =>
      b.uplink ? readNodeFacts(b.name, b.uplink) : { bridgeExists: nodeHasLink(b.name), mtu: needMtu ? await defaultMtu() : undefined },
  },
} satisfies Record<string, Mode>;

export type ModeName = keyof typeof MODES;

export const modeOf = (name: ModeName): Mode => MODES[name];
