// `vnet explain`: the plan ADD would run, printed as shell lines a learner can paste. It runs
// nothing and allocates nothing: the address is --ip, or the one a fresh range would give first.
import { parseArgs } from 'node:util';
import { checkIfname } from '../cni/env.js';
import { parseNetConf, type NetConf } from '../config/netconf.js';
import { parseIpamConfig } from '../config/ipam.js';
import { candidates, formatCidr, parseIp, subnetFor, subnetString } from '../ipam/range.js';
import { parseCidr4 } from '../net/cidr.js';
import { transparentAddPlan } from '../plan/transparent.js';
import type { Plan } from '../plan/plan.js';
import { readNetConf, UsageError } from './index.js';

export function explain(args: string[]): string {
  const { values } = parseArgs({
    args,
    options: {
      conf: { type: 'string' },
      'container-id': { type: 'string' },
      netns: { type: 'string' },
      ifname: { type: 'string', default: 'eth0' },
      ip: { type: 'string' },
    },
    strict: true,
  });
  const { conf: file, 'container-id': containerId, netns, ifname, ip } = values;
  if (!file || !containerId || !netns) throw new UsageError('--conf, --container-id and --netns are required');
  checkIfname(ifname);
  const conf = parseNetConf(readNetConf(file), 'ADD');
  const { address, why, from } = pickAddress(ip, conf);

  const plan = transparentAddPlan({
    network: conf.name,
    containerId,
    ifname,
    netns,
    address,
    routes: isHostLocalFormat(conf) ? parseIpamConfig(conf.json).routes : [],
    mtu: conf.mtu ?? 1500,
    ipsToRouteViaHost: conf.ipsToRouteViaHost,
  });
  const head = [
    `# What ADD does for container ${containerId} (${ifname} in ${netns}), network "${conf.name}", mode ${conf.mode}.`,
    `# Nothing here has run. Node-side lines run as one \`ip -batch -\`, container-side lines as one`,
    `# \`nsenter --net=${netns} ip -batch -\`; sysctls are written to /proc/sys directly.`,
    '',
    `# IPAM: ${conf.ipam?.type ?? '(none)'} ADD hands out an address from ${from}: ${address} (${why})`,
    ...(conf.mtu ? [] : ['# MTU: the default route interface\'s MTU at ADD time; 1500 shown']),
  ];
  return [...head, ...renderPlan(plan)].join('\n') + '\n';
}

export function renderPlan(plan: Plan): string[] {
  const out: string[] = [];
  for (const step of plan.steps) {
    out.push('', `# ${step.say}`);
    for (const line of step.ip ?? []) out.push(step.side === 'host' ? `ip ${line}` : `nsenter --net=${plan.netns} ip ${line}`);
    for (const [k, v] of step.sysctl ?? []) out.push(`sysctl -w ${k}=${v}`);
  }
  return out;
}

/** vnet-ipam reads host-local's config, so either one's ranges and routes can be shown. */
const isHostLocalFormat = (conf: NetConf) => conf.ipam?.type === 'vnet-ipam' || conf.ipam?.type === 'host-local';

/** The first IPv4 address a fresh host-local-format range set hands out, or --ip as given. */
function pickAddress(ip: string | undefined, conf: NetConf): { address: string; why: string; from: string } {
  const sets = isHostLocalFormat(conf) ? parseIpamConfig(conf.json).rangeSets.filter((s) => s[0]?.family === 4) : [];
  const from = sets.flat().map(subnetString).join(', ') || 'its ranges';
  if (ip) {
    if (parseCidr4(ip)) return { address: ip, why: 'from --ip', from };
    const parsed = parseIp(ip);
    const range = parsed && sets.map((set) => subnetFor(set, parsed)).find(Boolean);
    if (!range) throw new UsageError(`--ip ${ip} is in none of the IPv4 ranges (${from}); give ADDR/PREFIX`);
    return { address: `${ip}/${range.prefix}`, why: 'from --ip', from };
  }
  const first = sets[0] && candidates(sets[0], undefined).next().value;
  if (!first) throw new UsageError(`cannot tell which address ${conf.ipam?.type ?? 'IPAM'} would give: use --ip ADDR/PREFIX`);
  return {
    address: formatCidr(4, first.value, first.range.prefix),
    why: 'the first address a fresh range hands out; give --ip to choose',
    from,
  };
}
