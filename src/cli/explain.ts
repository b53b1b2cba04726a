// `vnet explain`: the plan ADD would run, printed as shell lines a learner can paste. It runs
// nothing and allocates nothing: the address is --ip, or the one a fresh range would give first.
// Every value is validated as the plugin would validate it, and quoted for the shell.
import { parseArgs } from 'node:util';
import { checkContainerId } from '../cni/env.js';
import { CniError, Code } from '../errors.js';
import { parseNetConf, type NetConf } from '../config/netconf.js';
import { parseIpamConfig } from '../ipam/config.js';
import { formatCidr, formatValue, parseIp } from '../net/address.js';
import { candidates, subnetFor, subnetString, type Range } from '../ipam/range.js';
import { escapeControls } from '../log.js';
import { POD_NETNS_REF, shellQuote, shellWords } from '../net/command.js';
import { ifName, toCidr } from '../net/values.js';
import { addInput, typedIpam } from '../plan/input.js';
import { modeOf } from '../plan/modes.js';
import type { Plan } from '../plan/plan.js';
import { readNetConf, UsageError } from './conf.js';

export async function explain(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      conf: { type: 'string' },
      'container-id': { type: 'string' },
      netns: { type: 'string' },
      ifname: { type: 'string', default: 'eth0' },
      ip: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const { conf: file, 'container-id': containerId, netns, ifname: rawIfname, ip } = values;
  if (!file || !containerId || !netns) throw new UsageError('--conf, --container-id and --netns are required');
  // The runtime's rules for CNI_CONTAINERID and CNI_IFNAME, the flags named as given here.
  asUsage(() => checkContainerId(containerId), (m) => m.replace(/^invalid CNI_CONTAINERID\b/, 'invalid --container-id'));
  const ifname = asUsage(() => ifName(rawIfname, '--ifname', Code.invalidEnv));
  const stdin = readNetConf(file);
  const conf = parseNetConf(stdin, 'ADD');
  const ipamConf = isHostLocalFormat(conf) ? parseIpamConfig(stdin.json) : undefined;
  const { ips, why, from } = pickAddresses(ip ?? [], conf, ipamConf?.rangeSets ?? []);

  // A mode that plans from node facts (bridge mode: is the bridge there, Azure's uplink as it is
  // now) is shown what this node would run: the facts are read, read-only.
  const mode = modeOf(conf.mode);
  const facts = await mode.observe(conf.bridge, false).catch((e: Error) => {
    throw new UsageError(`explain reads this node's facts to show what ADD would run here: ${e.message}`);
  });
  const typed = typedIpam({ ips, routes: ipamConf?.routes ?? [] }, '--ip', Code.invalidConfig);
  const plan = mode.addPlan(addInput(conf, { containerId, ifname }, netns, typed, facts, conf.mtu ?? 1500));
  const nsenter = `nsenter ${shellQuote(`--net=${netns}`)} ip -batch -`;
  const head = [
    `# What ADD does for container ${containerId} (${ifname} in ${netns}), network "${conf.name}", mode ${conf.mode}.`,
    `# Nothing here has run. Node-side lines run as one \`ip -batch -\`, container-side lines as one`,
    `# \`${nsenter}\`; sysctls are written to /proc/sys directly.`,
    '',
    `# IPAM: ${conf.ipam?.type ?? '(none)'} ADD hands out ${ips.length > 1 ? 'addresses' : 'an address'} from ${from}: ${ips.map((i) => i.address).join(', ')} (${why})`,
    ...(conf.mtu ? [] : ['# MTU: the default route interface\'s MTU at ADD time; 1500 shown']),
  ];
  return [...head.map(escapeControls), ...renderPlan(plan)].join('\n') + '\n';
}

/** A bad option value is bad usage (exit 2): the rule's CniError as a UsageError. */
function asUsage<T>(f: () => T, say: (message: string) => string = (m) => m): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof CniError) throw new UsageError(say(err.message));
    throw err;
  }
}

/** A plan as shell lines: `# sentence`, then its commands, the pod's namespace as its path. */
function renderPlan(plan: Plan): string[] {
  const out: string[] = [];
  const words = (cmd: readonly (string | number)[]) => cmd.map((t) => (t === POD_NETNS_REF ? plan.netnsPath : t));
  for (const step of plan.steps) {
    out.push('', `# ${escapeControls(step.say)}`);
    for (const cmd of step.ip ?? []) {
      const ns = step.side === 'node' ? [] : ['nsenter', `--net=${plan.netnsPath}`];
      out.push(shellWords([...ns, 'ip', ...words(cmd)]));
    }
    for (const [k, v] of step.sysctl ?? []) out.push(shellWords(['sysctl', '-w', `${k}=${v}`]));
    if (step.nft) out.push(`nft -f - <<'EOF'`, ...step.nft, 'EOF');
  }
  return out;
}

/** vnet-ipam reads host-local's config, so either one's ranges and routes can be shown. */
const isHostLocalFormat = (conf: NetConf) => conf.ipam?.type === 'vnet-ipam' || conf.ipam?.type === 'host-local';

/**
 * What IPAM would hand out: each --ip (ADDR/PREFIX, or an address in one of the ranges), or else
 * the first address each fresh host-local-format range set gives: one per family for dual stack.
 */
function pickAddresses(ips: string[], conf: NetConf, sets: Range[][]): { ips: { address: string; gateway?: string }[]; why: string; from: string } {
  const from = sets.flat().map(subnetString).join(', ') || 'its ranges';
  const gatewayOf = (r: Range | undefined) => (r ? formatValue(r.family, r.gateway) : undefined);
  if (ips.length) {
    const picked = ips.map((ip) => {
      const cidr = toCidr(ip);
      const parsed = parseIp(cidr ? cidr.ip : ip);
      const range = parsed && sets.map((set) => subnetFor(set, parsed)).find(Boolean);
      if (cidr) return { address: cidr.text, gateway: gatewayOf(range) };
      if (!parsed || !range) throw new UsageError(`--ip ${JSON.stringify(ip)} is in none of the ranges (${from}); give ADDR/PREFIX`);
      return { address: formatCidr(parsed.family, parsed.value, range.prefix), gateway: gatewayOf(range) };
    });
    return { ips: picked, why: 'from --ip', from };
  }
  const firsts = sets.flatMap((set) => {
    const first = candidates(set, undefined).next().value;
    return first ? [{ address: formatCidr(first.range.family, first.value, first.range.prefix), gateway: gatewayOf(first.range) }] : [];
  });
  if (!firsts.length) throw new UsageError(`cannot tell which address ${conf.ipam?.type ?? 'IPAM'} would give: use --ip ADDR/PREFIX`);
  return { ips: firsts, why: `the first address${firsts.length > 1 ? 'es' : ''} a fresh range hands out; give --ip to choose`, from };
}
