// CHECK: what the plan says should exist, compared with the live state read back in one `ip`
// process per side. Only what the plan creates is checked, so routes or rules a later chained
// plugin added never fail it. The first difference is reported, named.
import { CniError, Code } from '../errors.js';
import { canonicalIp } from '../net/address.js';
import { ROUTES, ipJson, mainRoutes, readSysctl, type RouteRow } from '../net/ip.js';
import { L2_TABLE, NFT_TABLE, l2Names, mappedPods, masqNames, masqueradedPods } from '../net/nft.js';
import type { PodNetns } from '../net/netns.js';
import type { Expect, Plan, Side } from './plan.js';
import { stepDone } from '../log.js';

interface Link {
  ifname: string;
  master?: string;
  flags?: string[];
  mtu?: number;
  address?: string;
  addr_info?: { local?: string; prefixlen?: number }[];
}
interface Neigh {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}
interface State {
  links: Link[];
  routes: ReturnType<typeof mainRoutes>;
  neighs: Neigh[];
}

async function readState(pod?: PodNetns): Promise<State> {
  const [links = [], routes = [], neighs = []] = await ipJson(['addr show', ROUTES, 'neigh show'], pod);
  return { links: links as Link[], routes: mainRoutes(routes as RouteRow[]), neighs: neighs as Neigh[] };
}

export async function checkPlan(plan: Plan, pod: PodNetns): Promise<void> {
  const expects = plan.steps.flatMap((s) => s.expect ?? []);
  // The node, the pod and nftables are read side by side: one process each, at once.
  const needs = (side: Side) => expects.some((e) => e.side === side && e.kind !== 'sysctl' && e.kind !== 'masq' && e.kind !== 'l2');
  const masq = expects.find((e) => e.kind === 'masq');
  const l2 = expects.find((e) => e.kind === 'l2');
  const [onNode, inPod, masqueraded, mapped] = await Promise.all([
    needs('node') ? readState() : undefined,
    needs('pod') ? readState(pod) : undefined,
    masq?.kind === 'masq' ? masqueradedPods(masq.network) : [],
    l2?.kind === 'l2' ? mappedPods(l2.network) : [],
  ]);
  stepDone('read node and pod');
  const state: Partial<Record<Side, State>> = { node: onNode, pod: inPod };
  for (const e of expects) {
    const problem =
      e.kind === 'sysctl'
        ? checkSysctl(e)
        : e.kind === 'masq'
          ? masqueraded.some((m) => m.ip.ip === e.ip)
            ? undefined
            : `masquerade element ${e.ip} is missing from nftables set ${NFT_TABLE} ${masqNames(e.network).pods}`
          : e.kind === 'l2'
            ? mapped.some((m) => m.ip.ip === e.ip && m.mac === e.mac)
              ? undefined
              : `MAC DNAT rule ${e.ip} -> ${e.mac} is missing from nftables map ${L2_TABLE} ${l2Names(e.network).map[e.ip.includes(':') ? 6 : 4]}`
            : checkOne(e, state[e.side]!);
    if (problem) {
      const where = e.side === 'node' ? 'on the node' : `in ${plan.netnsPath}`;
      throw new CniError(Code.checkFailed, `CHECK failed: ${problem} ${where}`);
    }
  }
}

function checkSysctl(e: Extract<Expect, { kind: 'sysctl' }>): string | undefined {
  const v = readSysctl(e.key);
  return v === e.value ? undefined : `sysctl ${e.key} is ${v ?? 'missing'}, expected ${e.value}`;
}

function checkOne(e: Expect, s: State): string | undefined {
  switch (e.kind) {
    case 'link': {
      const l = s.links.find((x) => x.ifname === e.name);
      if (!l) return `interface ${e.name} is missing`;
      if (e.up && !l.flags?.includes('UP')) return `interface ${e.name} is down`;
      if (e.mac && l.address !== e.mac) return `interface ${e.name} has MAC ${l.address}, expected ${e.mac}`;
      if (e.mtu && l.mtu !== e.mtu) return `interface ${e.name} has MTU ${l.mtu}, expected ${e.mtu}`;
      if (e.master && l.master !== e.master) return `interface ${e.name} is ${l.master ? `a port of ${l.master}` : 'on no bridge'}, expected a port of ${e.master}`;
      return undefined;
    }
    case 'addr': {
      const l = s.links.find((x) => x.ifname === e.dev);
      const found = l?.addr_info?.some((a) => canonicalIp(a.local ?? '') === e.address.ip && a.prefixlen === e.address.prefix);
      return found ? undefined : `address ${e.address.text} is missing on ${e.dev}`;
    }
    case 'route': {
      const r = s.routes.find((x) => x.dst.text === e.dst.text && x.dev === e.dev && (e.gw ? x.gw?.ip === e.gw : !x.gw));
      const text = `IPv${e.dst.family} route ${e.dst.prefix === 0 ? 'default' : e.dst.text}${e.gw ? ` via ${e.gw}` : ''} dev ${e.dev}${e.scope ? ` scope ${e.scope}` : ''}`;
      if (!r) return `${text} is missing`;
      if (e.scope && r.scope !== e.scope) return `${text} has scope ${r.scope ?? 'global'}`;
      return undefined;
    }
    case 'neigh': {
      const n = s.neighs.find((x) => canonicalIp(x.dst) === e.ip && x.dev === e.dev);
      const text = `static ${e.ip.includes(':') ? 'IPv6 neighbour' : 'ARP'} entry ${e.ip} -> ${e.mac} on ${e.dev}`;
      if (!n) return `${text} is missing`;
      if (n.lladdr !== e.mac) return `${text} points to ${n.lladdr ?? 'nothing'}`;
      if (!n.state?.includes('PERMANENT')) return `${text} is not permanent (${n.state?.join(',') ?? 'no state'})`;
      return undefined;
    }
  }
  return undefined;
}
