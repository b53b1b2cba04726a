// The soak: ADD/DEL cycles through each node's whole conflist, many at once, over the lab's
// nodes; then the count of errors and of everything left behind (links, routes, neighbour
// entries, masquerade elements, allocations, index entries, temp files, cached results), and what
// `vnet state` says of each node. Bounded in cycles and in time.
import { join } from 'node:path';
import { podLeftovers, type Cluster } from './cluster.js';
import { inNs, nsPath, run, sh, trySh } from './sys.js';

export interface SoakReport {
  layout: string;
  dualStack: boolean;
  nodes: number;
  cycles: number;
  parallel: number;
  errors: string[];
  seconds: number;
  add: { p50: number; p95: number };
  del: { p50: number; p95: number };
  leftovers: Record<string, string[]>[];
  /** Per node: `vnet state`'s exit status and its leak lines. */
  state: { code: number; leaks: string[] }[];
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};

export async function soak(c: Cluster, o: { cycles: number; parallel: number; maxSeconds?: number }): Promise<SoakReport> {
  const errors: string[] = [];
  const adds: number[] = [];
  const dels: number[] = [];
  const started = Date.now();
  const deadline = started + (o.maxSeconds ?? 1800) * 1000;
  let next = 0;
  const workers = Array.from({ length: o.parallel }, (_, w) => `${c.spec.prefix}-s${w}`);
  for (const ns of workers) {
    sh(['ip', 'netns', 'add', ns]);
    inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
  }
  try {
    await Promise.all(
      workers.map(async (netns, w) => {
        const node = w % c.spec.nodes;
        const rt = c.runtime(node);
        const list = c.conflist(node);
        while (next < o.cycles && Date.now() < deadline) {
          const k = next++;
          const a = { containerId: `${c.spec.prefix}-soak-${k}`, netns, ifname: 'eth0' };
          let t = performance.now();
          try {
            await rt.add(list, a);
            adds.push(performance.now() - t);
          } catch (err) {
            errors.push(`cycle ${k} ADD: ${(err as Error).message}`);
          }
          t = performance.now();
          try {
            await rt.del(list, a);
            dels.push(performance.now() - t);
          } catch (err) {
            errors.push(`cycle ${k} DEL: ${(err as Error).message}`);
          }
        }
      }),
    );
  } finally {
    for (const ns of workers) trySh(['ip', 'netns', 'del', ns]);
  }
  const seconds = (Date.now() - started) / 1000;
  const leftovers = Array.from({ length: c.spec.nodes }, (_, i) => podLeftovers(c, i));
  const state = [];
  for (let i = 0; i < c.spec.nodes; i++) {
    const r = await run(['nsenter', `--net=${nsPath(c.node(i))}`, join(c.spec.binDir, 'vnet'), 'state', '--conf', c.conflistFile(i), '--json'], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, '');
    let leaks: string[] = [];
    try {
      leaks = (JSON.parse(r.stdout).leaks as { message: string }[]).map((l) => l.message);
    } catch {
      leaks = [`vnet state printed no JSON: ${r.stdout}${r.stderr}`.slice(0, 500)];
    }
    state.push({ code: r.code, leaks });
  }
  return {
    layout: c.spec.layout,
    dualStack: c.spec.dualStack,
    nodes: c.spec.nodes,
    cycles: adds.length,
    parallel: o.parallel,
    errors,
    seconds,
    add: { p50: pct(adds, 50), p95: pct(adds, 95) },
    del: { p50: pct(dels, 50), p95: pct(dels, 95) },
    leftovers,
    state,
  };
}

export function soakSummary(r: SoakReport): string {
  const left = r.leftovers.map((l) => Object.values(l).reduce((n, v) => n + v.length, 0)).reduce((a, b) => a + b, 0);
  const leaks = r.state.reduce((n, s) => n + s.leaks.length, 0);
  return (
    `| ${r.layout}${r.dualStack ? ' (dual stack)' : ''} | ${r.cycles} | ${r.parallel} | ${r.errors.length} | ${left} | ${leaks} | ` +
    `${r.seconds.toFixed(1)} s | ${(r.cycles / r.seconds).toFixed(1)} | ${r.add.p50.toFixed(0)} / ${r.add.p95.toFixed(0)} ms | ${r.del.p50.toFixed(0)} / ${r.del.p95.toFixed(0)} ms |`
  );
}
export const SOAK_HEADER =
  '| layout | cycles | parallel | errors | left behind | state leaks | wall | cycles/s | ADD p50 / p95 | DEL p50 / p95 |\n|---|---|---|---|---|---|---|---|---|---|';
