// The reachability matrix of a lab, both families where configured: pod↔pod on one node and
// across nodes, pod → its node, node → a remote pod, pod → the VNet's gateway, and pod → the
// outside world with the source address the layout implies (the pod's own, or its node's under
// masquerade), read by a listener in the outside namespace that answers with what it sees.
import { spawn } from 'node:child_process';
import { OUTSIDE, VNET_GW, nodeIp, type Cluster } from './cluster.js';
import { nsPath, trySh } from './sys.js';

export interface Probe {
  what: string;
  from: string;
  to: string;
  family: 4 | 6;
  ok: boolean;
  detail: string;
}

const ping = (ns: string, to: string) => trySh(['nsenter', `--net=${nsPath(ns)}`, 'ping', '-c', '1', '-W', '2', to]).ok;

/** A TCP listener in `ns` at addr:7000 answering each connection with the source address it sees. */
export function whoami(ns: string, addr: string) {
  const p = spawn('nsenter', [`--net=${nsPath(ns)}`, process.execPath, '-e',
    `require('net').createServer((s) => s.end(s.remoteAddress)).listen(7000, '${addr}', () => console.log('ready'))`]);
  return { ready: new Promise((r) => p.stdout!.once('data', r)), stop: () => p.kill() };
}
/** What whoami at addr says, asked from the network namespace at `netnsPath`: the source address it saw. */
export const askWhoami = (netnsPath: string, addr: string) =>
  trySh(['nsenter', `--net=${netnsPath}`, process.execPath, '-e',
    `const s = require('net').connect(7000, '${addr}'); s.on('data', (d) => process.stdout.write(d)); s.setTimeout(3000, () => process.exit(2));`]).out.trim();

export async function matrix(c: Cluster): Promise<Probe[]> {
  const out: Probe[] = [];
  const byNode = (i: number) => c.pods.filter((p) => p.node === i);
  const add = (what: string, from: string, to: string, family: 4 | 6, ok: boolean, detail = '') => out.push({ what, from, to, family, ok, detail });
  const servers = c.families.map((f) => whoami(c.outside, OUTSIDE[f]));
  try {
    await Promise.all(servers.map((s) => s.ready));
    for (const f of c.families) {
      for (let i = 0; i < c.spec.nodes; i++) {
        const [a, b] = byNode(i);
        if (a && b) add('pod → pod, same node', a.name, b.name, f, ping(a.netns, c.podAddr(b, f)));
        if (!a) continue;
        add('pod → its node', a.name, `node${i}`, f, ping(a.netns, nodeIp(i, f)));
        add('pod → VNet gateway', a.name, 'vnet', f, ping(a.netns, VNET_GW[f]));
        const remote = byNode((i + 1) % c.spec.nodes)[0];
        if (remote && remote.node !== i) {
          add('pod → pod, across nodes', a.name, remote.name, f, ping(a.netns, c.podAddr(remote, f)));
          add('node → remote pod', `node${i}`, remote.name, f, ping(c.node(i), c.podAddr(remote, f)));
        }
        const want = c.expectedOutsideSource(a, f);
        const seen = askWhoami(nsPath(a.netns), OUTSIDE[f]);
        add('pod → outside (source seen)', a.name, 'outside', f, seen === want, `seen ${seen || 'nothing'}, expected ${want}`);
      }
    }
  } finally {
    for (const s of servers) s.stop();
  }
  return out;
}

export function matrixTable(c: Cluster, probes: readonly Probe[]): string {
  const rows = probes.map((p) => `| ${p.what} | ${p.from} → ${p.to} | IPv${p.family} | ${p.ok ? 'ok' : 'FAILED'} | ${p.detail} |`);
  return [`Reachability, layout ${c.spec.layout}${c.spec.dualStack ? ', dual stack' : ''}:`, '', '| probe | from → to | family | result | |', '|---|---|---|---|---|', ...rows].join('\n');
}

