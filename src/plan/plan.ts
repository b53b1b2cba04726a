// A plan is data: the ordered steps ADD takes, each with the sentence the log prints, the typed
// `ip` commands or sysctls it applies (on the node or inside the pod), its lifecycle and undo,
// and what CHECK expects to find afterwards. Mode builders (transparent.ts, via modes.ts) make
// plans; execute.ts runs them, check.ts compares them with the live state, cli/explain.ts
// prints them.
import type { IpCmd } from '../net/command.js';
import type { SysctlKey } from '../net/ip.js';
import type { NftLine } from '../net/nft.js';
import type { Cidr, IfName, IpText, Mac } from '../net/values.js';

export type Side = 'node' | 'pod';

/**
 * Per attachment: made by this ADD, removed by DEL and by rollback. Shared: ensured (created when
 * missing, accepted when present: a bridge, a node-wide sysctl), never undone by rollback or DEL.
 */
type Lifecycle = 'attachment' | 'shared';

/** What a step leaves behind, as CHECK reads it back. */
export type Expect =
  | { kind: 'link'; side: Side; name: IfName; mac?: Mac; up: boolean; mtu?: number; master?: IfName }
  | { kind: 'addr'; side: Side; dev: IfName; address: Cidr }
  | { kind: 'route'; side: Side; dst: Cidr; dev: IfName; gw?: IpText; scope?: 'link' }
  | { kind: 'neigh'; side: Side; dev: IfName; ip: IpText; mac: Mac }
  | { kind: 'sysctl'; side: 'node'; key: SysctlKey; value: string }
  | { kind: 'masq'; side: 'node'; network: string; ip: IpText }
  | { kind: 'l2'; side: 'node'; network: string; ip: IpText; mac: Mac };

export interface Step {
  /** One sentence for the log and for `vnet explain`. */
  say: string;
  side: Side;
  lifecycle: Lifecycle;
  ip?: IpCmd[];
  /** An nftables script, run on the node as one transaction (`nft -f -`). */
  nft?: NftLine[];
  /** What undoes `nft`, run by rollback only if this call made it. */
  nftUndo?: NftLine[];
  /** Sysctls to set, on the node only (written in-process through /proc/sys). */
  sysctl?: [key: SysctlKey, value: string][];
  /** A failure that means "already there" for this step (a shared object another call made). */
  tolerate?: RegExp;
  /** Runs in a process of its own (so that a failure between two such steps is a clean cut). */
  alone?: boolean;
  /**
   * This step deletes that node-side link, and its batch ends with it (execute runs the batch
   * then): the step is done once the link leaves the node, not when the kernel's teardown ends.
   */
  doneWhenGone?: IfName;
  /** Node-side commands that put back what this shared step changes, run if the call fails in it. */
  restore?: IpCmd[];
  /** Node-side commands that undo this step, run by rollback only if this call made it. */
  undo?: IpCmd[];
  expect?: Expect[];
}

export interface Plan {
  /** The pod's namespace path as the runtime gave it: for the log and `explain` only. */
  netnsPath: string;
  steps: Step[];
}
