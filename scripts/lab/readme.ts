// Every command output the README shows, regenerated from the lab: `scripts/lab.sh readme`. Each
// output block in README.md sits between `<!-- lab:NAME -->` and `<!-- /lab -->`; this brings up
// the labs the blocks need (namespaces lab-…, so names and MACs derived from them are stable),
// runs the commands, and rewrites the blocks. Nothing in those blocks is typed by hand.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, LAYOUTS, VNET_GW, firstAddLog, nodeIp, type Layout, type Spec } from './cluster.js';
import { matrix, type Probe } from './matrix.js';
import { nsPath, sh, trySh } from './sys.js';

type Block = Record<string, string>;

/** `$ ip netns exec NS CMD` and its output, as a reader would type it. */
function cmd(ns: string | undefined, argv: string[], shown = argv.join(' ')): string {
  const r = ns ? trySh(['nsenter', `--net=${nsPath(ns)}`, ...argv]) : trySh(argv);
  const out = r.out.replace(/[ \t]+$/gm, '').trimEnd();
  return `$ ${ns ? `ip netns exec ${ns} ` : ''}${shown}${out ? `\n${out}` : ''}`;
}
const vnetBin = (c: Cluster) => join(c.spec.binDir, 'vnet');
/** The log without its time and pid columns (every line has them, as azure-vnet.log does). */
const strip = (lines: string[]) => lines.map((l) => l.replace(/^\S+ \S+ \[\d+\] /, ''));

async function withLab(base: Omit<Spec, 'layout' | 'prefix' | 'dir'>, layout: Layout, o: Partial<Spec>, f: (c: Cluster) => Promise<void> | void) {
  const dir = mkdtempSync(join(tmpdir(), 'vnet-readme-'));
  const c = Cluster.create({ ...base, layout, prefix: 'lab', dir, ...o });
  try {
    await c.populate();
    await f(c);
  } finally {
    c.destroy();
  }
}

function matrixSummary(all: { layout: Layout; probes: Probe[] }[]): string {
  const kinds = [...new Set(all.flatMap((a) => a.probes.map((p) => p.what)))];
  const head = `| probe (IPv4 and IPv6) | ${all.map((a) => a.layout).join(' | ')} |\n|---|${all.map(() => '---|').join('')}`;
  const rows = kinds.map((k) => {
    const cells = all.map((a) => {
      const ps = a.probes.filter((p) => p.what === k);
      const ok = ps.filter((p) => p.ok).length;
      return ps.length ? `${ok === ps.length ? 'ok' : 'FAILED'} ${ok}/${ps.length}` : '–';
    });
    return `| ${k} | ${cells.join(' | ')} |`;
  });
  return [head, ...rows].join('\n');
}

export async function readmeBlocks(base: Omit<Spec, 'layout' | 'prefix' | 'dir'>, confDir: string): Promise<Block> {
  const b: Block = {};
  await withLab(base, 'transparent', {}, (c) => {
    const pod = c.pods[0]!.netns;
    const node = c.node(0);
    b['transparent-log'] = strip(firstAddLog(c, 0)).join('\n');
    // The node has talked to its peers: its ARP table shows the VNet's one MAC.
    trySh(['nsenter', `--net=${nsPath(node)}`, 'ping', '-c', '1', '-W', '2', nodeIp(1, 4)]);
    trySh(['nsenter', `--net=${nsPath(node)}`, 'ping', '-c', '1', '-W', '2', VNET_GW[4]]);
    b['transparent-pod'] = [cmd(pod, ['ip', 'addr', 'show', 'eth0']), cmd(pod, ['ip', 'route']), cmd(pod, ['ip', 'neigh'])].join('\n');
    b['transparent-node'] = [
      cmd(node, ['ip', 'route']),
      cmd(node, ['ip', '-br', 'link']),
      cmd(node, ['ip', 'neigh', 'show', 'dev', 'eth0']),
      cmd(node, [vnetBin(c), 'state', '--conf', c.conflistFile(0)], 'vnet state --conf /etc/cni/net.d/10-vnet.conflist'),
    ].join('\n').replaceAll(c.spec.dir, '/var/lib/vnet-lab');
    b['explain'] = cmd(node, [vnetBin(c), 'explain', '--conf', c.conflistFile(0), '--container-id', 'lab-next', '--netns', '/var/run/netns/lab-next'],
      'vnet explain --conf /etc/cni/net.d/10-vnet.conflist --container-id lab-next --netns /var/run/netns/lab-next').replaceAll(c.spec.dir, '/var/lib/vnet-lab');
  });
  await withLab(base, 'transparent', { dualStack: true }, (c) => {
    const pod = c.pods[0]!.netns;
    const node = c.node(0);
    b['dual-stack'] = [
      cmd(pod, ['ip', 'addr', 'show', 'eth0']),
      cmd(pod, ['ip', 'route']),
      cmd(pod, ['ip', '-6', 'route']),
      cmd(pod, ['ip', 'neigh']),
      cmd(node, ['ip', '-6', 'route']),
      cmd(node, ['ip', '-6', 'neigh', 'show', 'nud', 'permanent']),
    ].join('\n');
  });
  await withLab(base, 'kubenet', {}, (c) => {
    const node = c.node(0);
    b['kubenet'] = [
      cmd(node, ['ip', 'route']),
      cmd(node, ['ip', 'neigh', 'show', 'nud', 'permanent']),
      cmd(c.pods[0]!.netns, ['ip', 'route']),
      cmd(node, ['nft', 'list', 'table', 'inet', 'vnet']),
    ].join('\n');
    // Leaks made on purpose: a veth deleted by hand (its address, masquerade element and
    // neighbour entry stay), and an address file removed (its veth stays).
    const [p0, p1] = c.pods;
    const veth = (p: typeof p0) => sh(['nsenter', `--net=${nsPath(node)}`, 'ip', '-o', 'link', 'show']).split('\n').find((l) => l.includes(`vnet:${c.conflist(0).name}:${p!.containerId}:`))!.split(':')[1]!.trim().split('@')[0]!;
    sh(['nsenter', `--net=${nsPath(node)}`, 'ip', 'link', 'del', veth(p0)]);
    rmSync(join(c.spec.dir, 'node0', 'ipam', c.conflist(0).name, p1!.ips[0]!));
    b['state-leaks'] = cmd(node, [vnetBin(c), 'state', '--conf', c.conflistFile(0)], 'vnet state --conf /etc/cni/net.d/10-kubenet.conflist').replaceAll(c.spec.dir, '/var/lib/vnet-lab');
  });
  await withLab(base, 'bridge', {}, (c) => {
    const node = c.node(0);
    b['azure-bridge'] = [
      cmd(node, ['ip', 'route']),
      cmd(node, ['ip', '-br', 'link']),
      cmd(c.pods[0]!.netns, ['ip', 'route']),
      cmd(node, ['nft', 'list', 'table', 'bridge', 'vnet']),
    ].join('\n');
  });
  const probes: { layout: Layout; probes: Probe[] }[] = [];
  for (const layout of LAYOUTS) await withLab(base, layout, { dualStack: true }, async (c) => void probes.push({ layout, probes: await matrix(c) }));
  b['matrix'] = matrixSummary(probes);
  const tmp = mkdtempSync(join(tmpdir(), 'vnet-readme-'));
  try {
    const list = JSON.parse(readFileSync(join(confDir, '10-azure-transparent.conflist'), 'utf8'));
    Object.assign(list.plugins[0], { mode: 'brige', mtu: 65536 });
    list.plugins[0].ipam.ranges[0][0].subnet = '10.0.0.0/33';
    writeFileSync(join(tmp, '10-azure.conflist'), JSON.stringify(list, null, 2));
    b['validate'] = cmd(undefined, [join(base.binDir, 'vnet'), 'validate', join(tmp, '10-azure.conflist')], 'vnet validate /etc/cni/net.d/10-azure.conflist').replaceAll(tmp, '/etc/cni/net.d');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Each lab lived in a temp dir of its own: show it as one stable path.
  for (const k of Object.keys(b)) b[k] = b[k]!.replace(/\/tmp\/vnet-readme-[A-Za-z0-9]+/g, '/var/lib/vnet-lab');
  return b;
}

/** Rewrites every `<!-- lab:NAME -->` block of the file; a block NAME the run did not make is an error. */
export function rewrite(file: string, blocks: Block): string[] {
  const text = readFileSync(file, 'utf8');
  const done: string[] = [];
  const out = text.replace(/<!-- lab:([a-z0-9-]+) -->\n[\s\S]*?<!-- \/lab -->/g, (_m, name: string) => {
    const body = blocks[name];
    if (body === undefined) throw new Error(`README block lab:${name} is not one the lab makes (${Object.keys(blocks).join(', ')})`);
    done.push(name);
    const fenced = name === 'matrix' ? body : `\`\`\`\n${body}\n\`\`\``;
    return `<!-- lab:${name} -->\n${fenced}\n<!-- /lab -->`;
  });
  writeFileSync(file, out);
  return done;
}
