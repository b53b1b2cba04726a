// The human CLI: what `vnet` does when no CNI_COMMAND is set. Usage errors exit 2, failures 1.
import { CniError } from '../errors.js';
import { SUPPORTED_VERSIONS } from '../cni/version.js';
import { buildKind } from '../build-kind.js';
import { escapeControls } from '../log.js';
import { explain } from './explain.js';
import { state } from './state.js';
import { UsageError } from './conf.js';
import { validate } from './validate.js';
import { install } from './install.js';

export const VERSION = '0.1.0';

/** Which plugin the executable is, from the name it runs as. */
export type Role = 'vnet' | 'vnet-ipam';

const HELP = `vnet ${VERSION}: a CNI plugin that wires pods into a node the way Azure CNI does.

As a CNI plugin (CNI_COMMAND set; config on stdin, result on stdout):
  vnet        the main plugin: ADD, DEL, CHECK, VERSION, STATUS, GC
  vnet-ipam   the IPAM plugin (host-local style, file-locked)

As a command:
  vnet help [COMMAND]        this text (so does COMMAND --help)
  vnet version               plugin version and the CNI spec versions it speaks
  vnet explain --conf FILE --container-id ID --netns PATH [--ifname eth0] [--ip ADDR]…
                             print the commands ADD would run, as shell lines, running nothing
  vnet state [--conf FILE | --data-dir DIR --network NAME] [--json] [--free-leaked]
                             a network's allocations with their veths, routes, neighbour entries
                             and masquerade elements, and the leaks (exit 1 when any);
                             --free-leaked releases the addresses whose pod's veth is gone (each
                             checked again under the store's lock, none younger than 60 s)
  vnet validate FILE…        check a .conflist (or one plugin's .conf) with the plugin's own
                             parsers: every problem, one a line (exit 1 when any)
  vnet install --layout transparent|bridge|kubenet|overlay
               (--range SUBNET,START,END,GATEWAY | --pod-cidr CIDR)… [--no-masq CIDR]…
               [--peer CIDR=NODE_IP]… [--bin-dir /opt/cni/bin] [--conf-dir /etc/cni/net.d]
               [--network NAME] [--bridge NAME] [--uplink IF] [--mtu N] [--data-dir DIR]
               [--log-file FILE] [--route-via-host ADDR]… [--no-portmap] [--plugins-dir /usr/lib/cni]
               [--hard-link] [--dry-run]
                             this node: the executable into the CNI bin dir as vnet and vnet-ipam,
                             its conflist (its slice or pod CIDR, one per family) into the conf
                             dir, routes to the other nodes' pod ranges; overlaps are refused;
                             portmap, when the bin dir lacks it, linked from the plugins dir

Exit status: 0 done, 1 failed (or, for state and validate, found a problem), 2 bad usage.

Logs go to /var/log/vnet.log (or logFile in the config, or VNET_LOG_FILE).
`;

const COMMANDS = ['help', 'version', 'explain', 'state', 'validate', 'install'];

/** `--help` or `-h` among a command's options (before a `--`). */
const asksHelp = (args: string[]) => {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

export async function cli(role: Role, args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    if (cmd !== undefined && COMMANDS.includes(cmd) && asksHelp(rest)) {
      process.stdout.write(HELP);
      return 0;
    }
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        if (rest.length > 1 || (rest[0] !== undefined && !COMMANDS.includes(rest[0]))) {
          throw new UsageError(`no command ${JSON.stringify(rest.join(' '))} to show help for (commands: ${COMMANDS.join(', ')})`);
        }
        process.stdout.write(HELP);
        return 0;
      case 'version':
      case '--version':
        if (rest.length) throw new UsageError(`takes no arguments (got ${JSON.stringify(rest[0])})`);
        process.stdout.write(`${role} ${VERSION}\nCNI spec versions: ${SUPPORTED_VERSIONS.join(', ')}\nbuild: ${buildKind()}\n`);
        return 0;
      case 'explain':
        process.stdout.write(await explain(rest));
        return 0;
      case 'state': {
        const { out, code } = await state(rest);
        process.stdout.write(out);
        return code;
      }
      case 'install':
        process.stdout.write(await install(rest));
        return 0;
      case 'validate': {
        const { status, stdout, stderr } = validate(rest);
        process.stdout.write(stdout);
        process.stderr.write(stderr);
        return status;
      }
      default:
        process.stderr.write(`${role}: unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${role} ${cmd}: ${err.message}\n(see "${role} help")\n`);
      return 2;
    }
    // node:util parseArgs: an unknown option, a missing value, a stray argument.
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      const first = (err as Error).message.split(/\.(?: |$)/, 1)[0]!;
      process.stderr.write(`${role} ${cmd}: ${escapeControls(first.charAt(0).toLowerCase() + first.slice(1))}\n(see "${role} help")\n`);
      return 2;
    }
    const msg = err instanceof CniError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`${role} ${cmd}: ${msg}\n`);
    return 1;
  }
}
