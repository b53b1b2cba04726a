// `vnet explain`: the plan ADD would run, printed as shell lines a learner can paste. It runs
// nothing and allocates nothing: the address is --ip, or the one a fresh range would give first.
import { parseArgs } from 'node:util';
import { checkIfname } from '../cni/env.js';
import { parseNetConf } from '../config/netconf.js';
import { intToIpv4, ipv4ToInt, parseCidr4 } from '../net/cidr.js';
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
  const subnets = rangeSubnets(conf.ipam);
  const { address, why } = pickAddress(ip, subnets);

  const plan = transparentAddPlan({
    network: conf.name,
    containerId,
    ifname,
    netns,
    address,
    routes: ((conf.ipam?.routes as { dst: string }[] | undefined) ?? []).map((r) => ({ dst: r.dst })),
    mtu: conf.mtu ?? 1500,
    ipsToRouteViaHost: conf.ipsToRouteViaHost,
  });
  const head = [
    `# What ADD does for container ${containerId} (${ifname} in ${netns}), network "${conf.name}", mode ${conf.mode}.`,
    `# Nothing here has run. Node-side lines run as one \`ip -batch -\`, container-side lines as one`,
    `# \`nsenter --net=${netns} ip -batch -\`; sysctls are written to /proc/sys directly.`,
    '',
    `# IPAM: ${conf.ipam?.type ?? '(none)'} ADD hands out an address from ${subnets.join(', ') || 'its ranges'}: ${address} (${why})`,
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

function rangeSubnets(ipam: Record<string, unknown> | undefined): string[] {
  const sets = (ipam?.ranges as { subnet?: unknown }[][] | undefined) ?? [];
  const subnets = sets.flat().map((r) => r.subnet);
  if (typeof ipam?.subnet === 'string') subnets.push(ipam.subnet);
  return subnets.filter((s): s is string => typeof s === 'string' && parseCidr4(s) !== undefined);
}

function pickAddress(ip: string | undefined, subnets: string[]): { address: string; why: string } {
  if (ip) {
    if (parseCidr4(ip)) return { address: ip, why: 'from --ip' };
    const inside = subnets.map((s) => parseCidr4(s)!).find((s) => parseCidr4(`${ip}/${s.prefix}`)?.network === s.network);
    if (!inside) throw new UsageError(`--ip ${ip} is in none of the IPv4 ranges (${subnets.join(', ') || 'none'})`);
    return { address: `${ip}/${inside.prefix}`, why: 'from --ip' };
  }
  const first = subnets[0] && parseCidr4(subnets[0]);
  if (!first) throw new UsageError('the config has no IPv4 range; give --ip ADDR/PREFIX');
  // A fresh host-local style range skips the network address and the gateway (.1).
  const ipNum = ipv4ToInt(first.network.split('/')[0]!) + 2;
  return { address: `${intToIpv4(ipNum)}/${first.prefix}`, why: 'the first address a fresh range hands out; give --ip to choose' };
}
