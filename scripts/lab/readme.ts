// Every command output the README shows, and its pictures, regenerated from the lab:
// `scripts/lab.sh readme`. Each output block (README.md, and any other file named in FILES) sits
// between `<!-- lab:NAME -->` and `<!-- /lab -->`; this brings up the labs the blocks need
// (namespaces vlab-… and the lab's directory shown as /run/vnet-lab, as `scripts/lab.sh up` names
// them, so that a reader's lab shows the same names; the names and MACs derived from them are
// stable from run to run), runs the commands, and rewrites the blocks. Each layout's picture (scripts/lab/pictures/LAYOUT.svg) is drawn from the
// same labs (scripts/lab/picture.ts). Nothing in those blocks or pictures is typed by hand.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, LAYOUTS, VNET_GW, firstAddLog, nodeIp, type Layout, type Spec } from './cluster.js';
import { matrix, type Probe } from './matrix.js';
import { labPicture } from './picture.js';
import { pictureSvg, xmlProblems } from './svg.js';
import { nsPath, sh, trySh } from './sys.js';

/** The files whose `<!-- lab:NAME -->` blocks are regenerated, from the repository's root. */
export const FILES = ['README.md', 'scripts/README.md'];
/** Where the pictures go, from the repository's root. */
export const PICTURES = 'scripts/lab/pictures';

type Block = Record<string, string>;
/** The namespaces' prefix and the lab's directory of `scripts/lab.sh up` (lab/cli.ts): what a reader's own lab has. */
const PREFIX = 'vlab';
const SHOWN_DIR = '/run/vnet-lab';

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
  const c = Cluster.create({ ...base, layout, prefix: PREFIX, dir, ...o });
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

/** The lab's picture of a layout, as SVG, checked to be well-formed XML. */
function picture(c: Cluster, title: string): string {
  const pod = (i: number) => c.pods.filter((p) => p.node === i).sort((x, y) => x.name.localeCompare(y.name))[0]!.name;
  const svg = pictureSvg(
    labPicture(c, title, [
      `Drawn by scripts/lab.sh readme from the lab's namespaces: ip -json addr, route (IPv4, main table) and neigh in each, bridge fdb where there is a bridge.`,
      `In colour: a ping from ${pod(0)} to ${pod(1)}, hop by hop as the kernel's tables send it (ip route get, the next hop's neighbour entry, the bridge's forwarding entry).`,
    ]),
  );
  const problems = xmlProblems(svg);
  if (problems.length) throw new Error(`the ${c.spec.layout} picture is not well-formed XML: ${problems.join('; ')}`);
  return svg;
}

/**
 * A CNI call by hand, as a runtime makes it: the verb and the pod in CNI_* variables, the
 * plugin's config on stdin, the answer on stdout. Run in node `node` of the lab, shown with the
 * paths of a node (/opt/cni/bin, /etc/cni/net.d).
 */
function byHand(c: Cluster, node: number): string {
  const bin = join(c.spec.dir, `node${node}`, 'bin');
  const list = c.conflist(node);
  const conf = { cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] };
  const netns = `${c.spec.prefix}-pod1`;
  const env = { CNI_CONTAINERID: 'pod1', CNI_NETNS: nsPath(netns), CNI_IFNAME: 'eth0', CNI_PATH: bin };
  const shown = (t: string) => t.replaceAll(bin, '/opt/cni/bin');
  const call = (verb: string) => {
    const r = spawnSync('nsenter', [`--net=${nsPath(c.node(node))}`, join(bin, 'vnet')], {
      input: JSON.stringify(conf),
      env: { PATH: process.env.PATH!, ...env, CNI_COMMAND: verb },
      encoding: 'utf8',
    });
    return `$ CNI_COMMAND=${verb} /opt/cni/bin/vnet < vnet.json; echo "exit status $?"\n${r.stdout.trimEnd() ? `${r.stdout.trimEnd()}\n` : ''}exit status ${r.status}`;
  };
  sh(['ip', 'netns', 'add', netns]);
  try {
    return shown(
      [
        `$ ip netns add ${netns}`,
        `$ cat vnet.json`,
        JSON.stringify(conf, null, 2),
        `$ export CNI_CONTAINERID=pod1 CNI_NETNS=${nsPath(netns)} CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin`,
        call('ADD'),
        cmd(netns, ['ip', '-br', 'addr', 'show', 'eth0']),
        call('ADD'),
        call('DEL'),
        call('DEL'),
      ].join('\n'),
    );
  } finally {
    trySh(['ip', 'netns', 'del', netns]);
  }
}

export interface Generated {
  blocks: Block;
  /** Layout → SVG. */
  pictures: Record<string, string>;
}

export async function readmeBlocks(base: Omit<Spec, 'layout' | 'prefix' | 'dir'>, confDir: string): Promise<Generated> {
  const b: Block = {};
  const pictures: Record<string, string> = {};
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
    ].join('\n');
    b['state'] = cmd(node, [vnetBin(c), 'state', '--conf', c.conflistFile(0)], 'vnet state --conf /etc/cni/net.d/10-vnet.conflist').replaceAll(c.spec.dir, SHOWN_DIR);
    b['explain'] = cmd(node, [vnetBin(c), 'explain', '--conf', c.conflistFile(0), '--container-id', 'vlab-next', '--netns', '/var/run/netns/vlab-next'],
      'vnet explain --conf /etc/cni/net.d/10-vnet.conflist --container-id vlab-next --netns /var/run/netns/vlab-next').replaceAll(c.spec.dir, SHOWN_DIR);
    pictures['transparent'] = picture(c, 'Transparent mode (Azure CNI, as AKS runs it): no bridge; a /32 route per pod through its veth; each pod\'s gateway, 169.254.1.1, is its host veth');
    b['by-hand'] = byHand(c, 0);
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
    pictures['kubenet'] = picture(c, 'Bridge mode, kubenet\'s layout: the pods on cbr0, which holds their gateway; the VNet routes each node\'s pod CIDR to the node');
    // Leaks made on purpose: a veth deleted by hand (its address, masquerade element and
    // neighbour entry stay), and an address file removed (its veth stays).
    const [p0, p1] = c.pods;
    const veth = (p: typeof p0) => sh(['nsenter', `--net=${nsPath(node)}`, 'ip', '-o', 'link', 'show']).split('\n').find((l) => l.includes(`vnet:${c.conflist(0).name}:${p!.containerId}:`))!.split(':')[1]!.trim().split('@')[0]!;
    sh(['nsenter', `--net=${nsPath(node)}`, 'ip', 'link', 'del', veth(p0)]);
    rmSync(join(c.spec.dir, 'node0', 'ipam', c.conflist(0).name, p1!.ips[0]!));
    b['state-leaks'] = cmd(node, [vnetBin(c), 'state', '--conf', c.conflistFile(0)], 'vnet state --conf /etc/cni/net.d/10-vnet.conflist').replaceAll(c.spec.dir, SHOWN_DIR);
  });
  await withLab(base, 'bridge', {}, (c) => {
    const node = c.node(0);
    b['azure-bridge'] = [
      cmd(node, ['ip', 'route']),
      cmd(node, ['ip', '-br', 'link']),
      cmd(c.pods[0]!.netns, ['ip', 'route']),
      cmd(node, ['nft', 'list', 'table', 'bridge', 'vnet']),
    ].join('\n');
    pictures['bridge'] = picture(c, 'Bridge mode, Azure\'s layout: eth0 is a port of azure0, which holds the node\'s address; the pods are on-link in the VNet\'s subnet, behind the NIC\'s MAC');
  });
  await withLab(base, 'overlay', {}, (c) => {
    pictures['overlay'] = picture(c, 'Overlay (Azure CNI Overlay): transparent mode with a pod CIDR per node; the VNet routes each node\'s pod CIDR to the node');
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
  for (const k of Object.keys(b)) b[k] = b[k]!.replace(/\/tmp\/vnet-readme-[A-Za-z0-9]+/g, SHOWN_DIR);
  return { blocks: b, pictures };
}

/** Rewrites every `<!-- lab:NAME -->` block of the file; a block NAME the run did not make is an error. */
export function rewrite(file: string, blocks: Block): string[] {
  const text = readFileSync(file, 'utf8');
  const done: string[] = [];
  const out = text.replace(/<!-- lab:([a-z0-9-]+) -->\n[\s\S]*?<!-- \/lab -->/g, (_m, name: string) => {
    const body = blocks[name];
    if (body === undefined) throw new Error(`${file}: block lab:${name} is not one the lab makes (${Object.keys(blocks).join(', ')})`);
    done.push(name);
    const fenced = name === 'matrix' ? body : `\`\`\`\n${body}\n\`\`\``;
    return `<!-- lab:${name} -->\n${fenced}\n<!-- /lab -->`;
  });
  writeFileSync(file, out);
  return done;
}

/**
 * Every file's blocks rewritten and every picture written (each checked first), from the
 * repository's root; a block the run made that no file holds is an error too, so that nothing
 * made is silently dropped. Returns what was written, for the user.
 */
export function writeAll(root: string, g: Generated): string[] {
  const said: string[] = [];
  const placed = new Set<string>();
  // Every file is read and checked before any is written.
  for (const f of FILES) {
    const text = readFileSync(join(root, f), 'utf8');
    for (const m of text.matchAll(/<!-- lab:([a-z0-9-]+) -->/g)) {
      if (g.blocks[m[1]!] === undefined) throw new Error(`${f}: block lab:${m[1]} is not one the lab makes (${Object.keys(g.blocks).join(', ')})`);
      placed.add(m[1]!);
    }
  }
  const unplaced = Object.keys(g.blocks).filter((k) => !placed.has(k));
  if (unplaced.length) throw new Error(`blocks made but found in none of ${FILES.join(', ')}: ${unplaced.join(', ')}`);
  for (const f of FILES) {
    const done = rewrite(join(root, f), g.blocks);
    if (done.length) said.push(`${f}: ${done.length} blocks regenerated (${done.join(', ')})`);
  }
  mkdirSync(join(root, PICTURES), { recursive: true });
  for (const [layout, svg] of Object.entries(g.pictures)) {
    const problems = xmlProblems(svg);
    if (problems.length) throw new Error(`${layout}.svg is not well-formed XML: ${problems.join('; ')}`);
    writeFileSync(join(root, PICTURES, `${layout}.svg`), svg);
  }
  said.push(`${PICTURES}/: ${Object.keys(g.pictures).map((l) => `${l}.svg`).join(', ')}`);
  return said;
}
