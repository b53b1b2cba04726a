// CNI_* environment variables, parsed with the spec's rules (SPEC.md section 2, "Parameters").
import { CniError, Code } from '../errors.js';
import { ifName, type IfName } from '../net/values.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type Command = (typeof COMMANDS)[number];

export interface CniEnv {
  command: Command;
  containerId: string;
  /** Absent when the runtime sent none or sent it empty (runtimes do on DEL). */
  netns: string | undefined;
  ifname: IfName;
  /** CNI_ARGS as pairs, in order; IgnoreUnknown is kept like any other pair. */
  args: Map<string, string>;
  path: string[];
}

// Which variables each verb needs (SPEC.md section 2). CNI_PATH is optional in the spec; it is
// checked where a plugin has to be found on it.
const REQUIRED: Record<string, readonly Command[]> = {
  CNI_CONTAINERID: ['ADD', 'DEL', 'CHECK'],
  CNI_NETNS: ['ADD', 'CHECK'],
  CNI_IFNAME: ['ADD', 'DEL', 'CHECK'],
};

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function parseCommand(value: string | undefined): Command {
  if (value === undefined || value === '') throw new CniError(Code.invalidEnv, 'required env variables [CNI_COMMAND] missing');
  const cmd = COMMANDS.find((c) => c === value);
  if (!cmd) throw new CniError(Code.invalidEnv, `unknown CNI_COMMAND: ${value}`, `supported: ${COMMANDS.join(', ')}`);
  return cmd;
}

/** Parses and checks the environment for a verb. VERSION looks at nothing but CNI_COMMAND. */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = parseCommand(env.CNI_COMMAND);
  const get = (k: string) => (env[k] === '' ? undefined : env[k]);
  const empty: CniEnv = { command, containerId: '', netns: undefined, ifname: '' as IfName, args: new Map(), path: [] };
  if (command === 'VERSION') return empty;

  const missing = Object.entries(REQUIRED)
    .filter(([k, verbs]) => verbs.includes(command) && get(k) === undefined)
    .map(([k]) => k);
  if (missing.length) throw new CniError(Code.invalidEnv, `required env variables [${missing.join(',')}] missing`);

  const containerId = get('CNI_CONTAINERID') ?? '';
  if (containerId) checkContainerId(containerId);
  const raw = get('CNI_IFNAME');
  const ifname = raw === undefined ? ('' as IfName) : checkIfname(raw);

  return {
    command,
    containerId,
    netns: get('CNI_NETNS'),
    ifname,
    args: parseArgs(get('CNI_ARGS') ?? ''),
    path: (get('CNI_PATH') ?? '').split(':').filter(Boolean),
  };
}

/** libcni's rule for container IDs: no path separator, no whitespace, nothing a shell or a batch line reads. */
export function checkContainerId(id: string): string {
  if (!CONTAINER_ID.test(id)) throw new CniError(Code.invalidEnv, `invalid CNI_CONTAINERID ${JSON.stringify(id)}: must match ${CONTAINER_ID.source}`);
  return id;
}

/** An interface name the kernel accepts (see net/values.ts), or code 4 naming CNI_IFNAME. */
export const checkIfname = (name: string): IfName => ifName(name, 'CNI_IFNAME', Code.invalidEnv);

/** CNI_ARGS: "K1=V1;K2=V2". A pair without '=' is an error, as in libcni. */
export function parseArgs(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of raw.split(';')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(Code.invalidEnv, `invalid CNI_ARGS pair ${JSON.stringify(pair)}: expected KEY=VALUE`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

/** Known CNI_ARGS keys; anything else is an error unless IgnoreUnknown is set (as libcni does). */
export function checkArgs(args: Map<string, string>, known: readonly string[]): void {
  const ignore = /^(1|true)$/i.test(args.get('IgnoreUnknown') ?? '');
  if (ignore) return;
  const unknown = [...args.keys()].filter((k) => k !== 'IgnoreUnknown' && !known.includes(k));
  if (unknown.length) {
    throw new CniError(Code.invalidEnv, `unknown CNI_ARGS ${unknown.join(', ')} (set IgnoreUnknown=1 to ignore them)`);
  }
}
