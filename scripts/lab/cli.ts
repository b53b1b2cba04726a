// `scripts/lab.sh`: the lab from a shell. One lab at a time, its state in /run/vnet-lab (gone at
// reboot, like the namespaces it describes), its namespaces named vlab-….
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Cluster, LAYOUTS, MAX_NODES, firstAddLog, nodeIp, type Layout, type Spec } from './cluster.js';
import { matrix, matrixTable } from './matrix.js';
import { readmeBlocks, writeAll } from './readme.js';
import { SOAK_HEADER, soak, soakSummary } from './soak.js';
import { nsPath, sh, trySh } from './sys.js';

// Bundled to dist/lab.cjs by scripts/lab.sh: the repository is the bundle's parent's parent.
const ROOT = resolve(dirname(process.argv[1] ?? '.'), '..');
const STATE_DIR = '/run/vnet-lab';
const USAGE = `usage: scripts/lab.sh COMMAND (as root)
  up LAYOUT [--nodes N] [--pods M] [--dual-stack]   a cluster in namespaces: LAYOUT is ${LAYOUTS.join(', ')}
  status                                            per node and pod: addresses, routes, bridge ports,
                                                    neighbours, masquerade, IPAM files, the plugin's log
  exec POD|nodeN|vnet|outside CMD…                  run CMD inside that namespace (e.g. exec n0p0 ip route)
  matrix                                            the reachability matrix, both families where configured
  down                                              remove every namespace and file of the lab
  soak LAYOUT [--cycles N] [--parallel P] [--nodes N] [--dual-stack] [--max-seconds S]
                                                    a lab of its own: ADD/DEL cycles, then errors and leaks
  demo [--dual-stack]                               up transparent (2 nodes, 2 pods each), the walkthrough,
                                                    the matrix, down
  readme                                            regenerate every command output in README.md and
                                                    scripts/README.md, and the layouts' pictures, from labs
`;

class Usage extends Error {}

function spec(layout: string, v: { nodes?: string; pods?: string; 'dual-stack'?: boolean }, prefix = 'vlab', dir = STATE_DIR): Spec {
  if (!(LAYOUTS as readonly string[]).includes(layout)) throw new Usage(`unknown layout ${JSON.stringify(layout)}: one of ${LAYOUTS.join(', ')}`);
  const count = (s: string | undefined, def: number, max: number, what: string) => {
    const n = s === undefined ? def : Number(s);
    if (!Number.isInteger(n) || n < (what === '--pods' ? 0 : 1) || n > max) throw new Usage(`${what} must be a whole number up to ${max} (got ${JSON.stringify(s)})`);
    return n;
  };
  return {
    layout: layout as Layout,
    nodes: count(v.nodes, 2, MAX_NODES, '--nodes'),
    pods: count(v.pods, 2, 20, '--pods'),
    dualStack: v['dual-stack'] ?? false,
    prefix,
    dir,
    binDir: join(ROOT, 'dist', 'bin'),
    refDir: '/usr/lib/cni',
  };
}

function current(): Cluster {
  const c = Cluster.load(STATE_DIR);
  if (!c) throw new Usage('no lab is up (scripts/lab.sh up LAYOUT)');
  return c;
}

/** Prints a command as a learner would type it, then its output. */
function show(ns: string, argv: string[]) {
  console.log(`$ ip netns exec ${ns} ${argv.join(' ')}`);
  const r = trySh(['nsenter', `--net=${nsPath(ns)}`, ...argv]);
  process.stdout.write(r.out.endsWith('\n') || !r.out ? r.out : `${r.out}\n`);
}

export function status(c: Cluster) {
  const s = c.spec;
  console.log(`Lab: layout ${s.layout}${s.dualStack ? ', dual stack' : ''}, ${s.nodes} node(s), ${c.pods.length} pod(s); state in ${s.dir}`);
  for (let i = 0; i < s.nodes; i++) {
    const n = c.node(i);
    const vnet = c.conflist(i).plugins[0] as unknown as { mode?: string; bridge?: string; ipam: { dataDir: string }; logFile: string };
    console.log(`\n== node${i} (${nodeIp(i, 4)}${s.dualStack ? `, ${nodeIp(i, 6)}` : ''}): namespace ${n}, conflist ${c.conflistFile(i)}`);
    show(n, ['ip', '-br', 'addr']);
    show(n, ['ip', 'route']);
    if (s.dualStack) show(n, ['ip', '-6', 'route']);
    if (vnet.mode === 'bridge') show(n, ['ip', '-br', 'link', 'show', 'master', vnet.bridge ?? 'azure0']);
    show(n, ['ip', 'neigh', 'show', 'nud', 'permanent']);
    if (trySh(['nsenter', `--net=${nsPath(n)}`, 'nft', 'list', 'table', 'inet', 'vnet']).ok) show(n, ['nft', 'list', 'table', 'inet', 'vnet']);
    const store = join(vnet.ipam.dataDir, c.conflist(i).name);
    console.log(`$ ls ${store}`);
    console.log(existsSync(store) ? sh(['ls', '-A', store]).trim() : '(no allocation yet)');
    console.log(`$ tail -n 5 ${vnet.logFile}`);
    console.log(existsSync(vnet.logFile) ? readFileSync(vnet.logFile, 'utf8').trimEnd().split('\n').slice(-5).join('\n') : '(no log yet)');
  }
  for (const p of c.pods) {
    console.log(`\n== pod ${p.name} on node${p.node}: ${p.ips.join(', ')} (namespace ${p.netns})`);
    show(p.netns, ['ip', '-br', 'addr', 'show', 'eth0']);
    show(p.netns, ['ip', 'route']);
    if (s.dualStack) show(p.netns, ['ip', '-6', 'route']);
    show(p.netns, ['ip', 'neigh']);
  }
}

function nsOf(c: Cluster, name: string): string {
  if (name === 'vnet') return c.vnet;
  if (name === 'outside') return c.outside;
  const node = /^node(\d+)$/.exec(name);
  if (node && Number(node[1]) < c.spec.nodes) return c.node(Number(node[1]));
  const pod = c.pods.find((p) => p.name === name);
  if (pod) return pod.netns;
  throw new Usage(`no ${JSON.stringify(name)} in the lab: pods are ${c.pods.map((p) => p.name).join(', ') || 'none'}; nodes node0…node${c.spec.nodes - 1}; vnet; outside`);
}

async function up(s: Spec): Promise<Cluster> {
  if (Cluster.load(STATE_DIR)) throw new Usage('a lab is up already: scripts/lab.sh down first');
  const c = Cluster.create(s);
  try {
    await c.populate();
  } catch (err) {
    c.destroy();
    throw err;
  }
  return c;
}

async function printMatrix(c: Cluster): Promise<boolean> {
  const probes = await matrix(c);
  console.log(matrixTable(c, probes));
  return probes.every((p) => p.ok);
}

async function demo(dualStack: boolean): Promise<number> {
  const say = (t: string) => console.log(`\n\x1b[1m== ${t}\x1b[0m`);
  const c = await up(spec('transparent', { nodes: '2', pods: '2', 'dual-stack': dualStack }));
  try {
    const [p] = c.pods;
    say('A VNet (10.220.2.0/24, gateway 10.220.2.1), two AKS nodes in it, two pods on each: Azure CNI transparent mode');
    show(c.node(0), ['ip', '-br', 'addr']);
    say(`Inside pod ${p!.name}: the address keeps the subnet's prefix, but every packet goes to 169.254.1.1`);
    show(p!.netns, ['ip', 'addr', 'show', 'eth0']);
    show(p!.netns, ['ip', 'route']);
    if (dualStack) show(p!.netns, ['ip', '-6', 'route']);
    show(p!.netns, ['ip', 'neigh']);
    say('On node0: a host route per pod through its azv veth (MAC aa:aa:aa:aa:aa:aa); the VNet answers ARP with 12:34:56:78:9a:bc');
    show(c.node(0), ['ip', 'route']);
    if (dualStack) show(c.node(0), ['ip', '-6', 'route']);
    say("The plugin's log of the first ADD on node0");
    console.log(firstAddLog(c, 0).join('\n'));
    say(`What ADD would run for one more pod on node0 (vnet explain runs nothing)`);
    show(c.node(0), [join(c.spec.binDir, 'vnet'), 'explain', '--conf', c.conflistFile(0), '--container-id', 'next-pod', '--netns', '/var/run/netns/next-pod']);
    say('The reachability matrix');
    const ok = await printMatrix(c);
    const remote = c.pods.find((x) => x.node === 1)!;
    say(`Across nodes: ${p!.name} on node0 pings ${remote.name} on node1, through the VNet`);
    show(p!.netns, ['ping', '-c', '2', '-W', '2', c.podAddr(remote, 4)]);
    say("node0's neighbours on eth0 now: the VNet answers for everything with one MAC, as Azure's fabric does");
    show(c.node(0), ['ip', 'neigh', 'show', 'dev', 'eth0']);
    return ok ? 0 : 1;
  } finally {
    c.destroy();
    console.log('\nThe lab is down: every namespace and file it made is removed.');
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const opts = {
    nodes: { type: 'string' },
    pods: { type: 'string' },
    'dual-stack': { type: 'boolean' },
    cycles: { type: 'string' },
    parallel: { type: 'string' },
    'max-seconds': { type: 'string' },
  } as const;
  try {
    switch (cmd) {
      case 'up': {
        const { values, positionals } = parseArgs({ args: rest, options: opts, allowPositionals: true, strict: true });
        if (positionals.length !== 1) throw new Usage('up takes one LAYOUT');
        const c = await up(spec(positionals[0]!, values));
        console.log(`Lab up: layout ${c.spec.layout}, ${c.spec.nodes} node(s), pods ${c.pods.map((p) => `${p.name} ${p.ips.join(' ')}`).join('; ')}`);
        console.log('Next: scripts/lab.sh status | matrix | exec n0p0 ip route | down');
        return 0;
      }
      case 'status':
        status(current());
        return 0;
      case 'matrix':
        return (await printMatrix(current())) ? 0 : 1;
      case 'exec': {
        const [name, ...command] = rest;
        if (!name || !command.length) throw new Usage('exec needs a namespace (pod, nodeN, vnet, outside) and a command');
        const r = trySh(['nsenter', `--net=${nsPath(nsOf(current(), name))}`, ...command]);
        process.stdout.write(r.out);
        return r.ok ? 0 : 1;
      }
      case 'down': {
        const c = Cluster.load(STATE_DIR);
        if (!c) {
          console.log('no lab is up');
          return 0;
        }
        c.destroy();
        console.log('lab down');
        return 0;
      }
      case 'soak': {
        const { values, positionals } = parseArgs({ args: rest, options: opts, allowPositionals: true, strict: true });
        if (positionals.length !== 1) throw new Usage('soak takes one LAYOUT');
        const n = (s: string | undefined, def: number) => (s === undefined ? def : Number(s));
        const cycles = n(values.cycles, 2000);
        const parallel = n(values.parallel, 20);
        if (![cycles, parallel].every((x) => Number.isInteger(x) && x > 0)) throw new Usage('--cycles and --parallel must be positive whole numbers');
        const s = spec(positionals[0]!, { ...values, pods: '0' }, `vsoak${process.pid}`, `/run/vnet-soak-${process.pid}`);
        const c = Cluster.create(s);
        try {
          const r = await soak(c, { cycles, parallel, maxSeconds: n(values['max-seconds'], 1800) });
          console.log(`${SOAK_HEADER}\n${soakSummary(r)}`);
          for (const e of r.errors.slice(0, 10)) console.log(`error: ${e}`);
          for (const [i, l] of r.leftovers.entries()) for (const [k, v] of Object.entries(l)) if (v.length) console.log(`node${i} left ${k}: ${v.join(', ')}`);
          for (const [i, st] of r.state.entries()) for (const leak of st.leaks) console.log(`node${i} vnet state: ${leak}`);
          const clean = r.errors.length === 0 && r.leftovers.every((l) => Object.values(l).every((v) => !v.length)) && r.state.every((x) => x.code === 0 && !x.leaks.length);
          return clean && r.cycles === cycles ? 0 : 1;
        } finally {
          c.destroy();
        }
      }
      case 'readme': {
        if (Cluster.load(STATE_DIR)) throw new Usage('a lab is up: scripts/lab.sh down first (the README is made from labs of its own)');
        // Its labs take the names `up` gives (what the README shows is what a reader's lab shows): none may be there.
        const taken = existsSync('/var/run/netns') ? readdirSync('/var/run/netns').filter((n) => n.startsWith('vlab-')) : [];
        if (taken.length) throw new Usage(`namespaces of a lab are left (${taken.join(', ')}): scripts/lab.sh down, or ip netns del each, first`);
        const { binDir, refDir, nodes, pods, dualStack } = spec('transparent', {});
        const generated = await readmeBlocks({ binDir, refDir, nodes, pods, dualStack }, join(ROOT, 'conf'));
        for (const line of writeAll(ROOT, generated)) console.log(line);
        return 0;
      }
      case 'demo': {
        const { values } = parseArgs({ args: rest, options: { 'dual-stack': { type: 'boolean' } }, strict: true });
        return await demo(values['dual-stack'] ?? false);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new Usage(`unknown command ${JSON.stringify(cmd)}`);
    }
  } catch (err) {
    if (err instanceof Usage || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`lab: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`lab: ${(err as Error).message}\n`);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
