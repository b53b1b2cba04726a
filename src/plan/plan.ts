// A plan is data: the ordered steps ADD takes, each with the sentence the log prints, the `ip`
// batch lines or sysctls it applies (on the node or inside the container), how to undo it, and
// what CHECK expects to find afterwards. Builders (transparent.ts) make plans; execute.ts runs
// them, check.ts compares them with the live state, cli/explain.ts prints them.

export type Side = 'host' | 'container';

/** What a step leaves behind, as CHECK reads it back. */
export type Expect =
  | { kind: 'link'; side: Side; name: string; mac?: string; up: boolean; mtu?: number }
  | { kind: 'addr'; side: Side; dev: string; address: string }
  | { kind: 'route'; side: Side; dst: string; dev: string; gw?: string; scope?: 'link' }
  | { kind: 'neigh'; side: Side; dev: string; ip: string; mac: string }
  | { kind: 'sysctl'; side: 'host'; key: string; value: string };

export interface Step {
  /** One sentence for the log and for `vnet explain`. */
  say: string;
  side: Side;
  /** `ip -batch` lines (each one `ip` command without the leading `ip`). */
  ip?: string[];
  /** Sysctls to set, on the node only (written in-process through /proc/sys). */
  sysctl?: [key: string, value: string][];
  /** Node-side `ip` lines that undo this step; the container side goes with the veth. */
  undo?: string[];
  expect?: Expect[];
}

export interface Plan {
  /** The container's network namespace path, where container-side steps run. */
  netns: string;
  steps: Step[];
}
