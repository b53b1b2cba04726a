// The human CLI: what `vnet` does when no CNI_COMMAND is set. Usage errors exit 2, failures 1.
import { CniError } from '../cni/errors.js';
import { SUPPORTED_VERSIONS } from '../cni/version.js';
import { explain } from './explain.js';
import { state } from './state.js';
import { UsageError } from './conf.js';

export const VERSION = '0.1.0';

/** Which plugin the executable is, from the name it runs as. */
export type Role = 'vnet' | 'vnet-ipam';

const HELP = `vnet ${VERSION}: a CNI plugin that wires pods into a node the way Azure CNI does.

As a CNI plugin (CNI_COMMAND set; config on stdin, result on stdout):
  vnet        the main plugin: ADD, DEL, CHECK, VERSION, STATUS, GC
  vnet-ipam   the IPAM plugin (host-local style, file-locked)

As a command:
  vnet help                  this text
  vnet version               plugin version and the CNI spec versions it speaks
  vnet explain --conf FILE --container-id ID --netns PATH [--ifname eth0] [--ip ADDR]…
                             print the commands ADD would run, as shell lines, running nothing
  vnet state [--conf FILE] [--data-dir DIR] [--network NAME]
                             show the addresses vnet-ipam holds and the node's azv veths

Logs go to /var/log/vnet.log (or logFile in the config, or VNET_LOG_FILE).
`;

export async function cli(role: Role, args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return 0;
      case 'version':
      case '--version':
        process.stdout.write(`${role} ${VERSION}\nCNI spec versions: ${SUPPORTED_VERSIONS.join(', ')}\n`);
        return 0;
      case 'explain':
        process.stdout.write(await explain(rest));
        return 0;
      case 'state':
        process.stdout.write(await state(rest));
        return 0;
      default:
        process.stderr.write(`${role}: unknown command "${cmd}"\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${role} ${cmd}: ${err.message}\n(see "${role} help")\n`);
      return 2;
    }
    const msg = err instanceof CniError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`${role} ${cmd}: ${msg}\n`);
    return 1;
  }
}
