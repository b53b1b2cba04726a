// The kind recipe (scripts/kind/), as far as it runs without kind: its node script installs the
// plugin in "kind nodes" (namespaces on one L2 network, as kind's docker network is), the
// conflists it writes pass `vnet validate`, pods on two nodes reach each other through the routes
// it adds; and every shell script of the project passes shellcheck.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runtime, type Conflist } from '../lab/chain.js';
import { BIN, Lab, REF_DIR } from './helpers/lab.js';

const lab = new Lab();
const dir = mkdtempSync(join(tmpdir(), `${lab.prefix}-kind-`));
afterAll(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('the kind cluster config asks for no default CNI and a pod subnet', () => {
  it('disableDefaultCNI: true, podSubnet 10.244.0.0/16, and two workers', () => {
    const y = readFileSync('scripts/kind/cluster.yaml', 'utf8');
    expect(y).toMatch(/^\s+disableDefaultCNI: true$/m);
    expect(y).toMatch(/^\s+podSubnet: 10\.244\.0\.0\/16$/m);
    expect(y.match(/role: worker/g)).toHaveLength(2);
  });
});

describe('install-node.sh installs each node; pods on two nodes reach each other through its routes', () => {
  it('two kind-like nodes on one L2 network: valid conflists, cross-node routes, a pod on each pinging the other', async () => {
    // kind's docker network: one bridge, the nodes at 172.18.0.2 and .3
    const net = lab.ns('kindnet');
    lab.in(net, ['ip', 'link', 'add', 'kind', 'type', 'bridge']);
    lab.in(net, ['ip', 'link', 'set', 'kind', 'up']);
    const nodes = [0, 1].map((i) => {
      const n = lab.ns(`kind${i}`);
      lab.in(n, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', net]);
      lab.in(net, ['ip', 'link', 'set', `p${i}`, 'master', 'kind', 'up']);
      lab.in(n, ['ip', 'addr', 'add', `172.18.0.${2 + i}/16`, 'dev', 'eth0']);
      lab.in(n, ['ip', 'link', 'set', 'eth0', 'up']);
      return n;
    });
    const lists: Conflist[] = [];
    for (const [i, n] of nodes.entries()) {
      const other = 1 - i;
      const env = { ...process.env, CNI_BIN_DIR: join(dir, `node${i}`, 'bin'), CNI_CONF_DIR: join(dir, `node${i}`, 'net.d') };
      const out = execFileSync('nsenter', [`--net=${n}`, 'sh', 'scripts/kind/install-node.sh', BIN, `10.244.${i}.0/24`, '10.244.0.0/16', '172.18.0.0/16', `10.244.${other}.0/24=172.18.0.${2 + other}`], { env, encoding: 'utf8' });
      expect(out).toMatch(new RegExp(`route 10\\.244\\.${other}\\.0/24 via 172\\.18\\.0\\.${2 + other}`));
      expect(out).toMatch(/10-vnet\.conflist: ok/);
      const list = JSON.parse(readFileSync(join(dir, `node${i}`, 'net.d', '10-vnet.conflist'), 'utf8')) as Conflist;
      // Test paths for what a node keeps in /var: the IPAM store and the log.
      Object.assign(list.plugins[0]!, { logFile: join(dir, `node${i}`, 'vnet.log') });
      (list.plugins[0] as any).ipam.dataDir = join(dir, `node${i}`, 'ipam');
      lists.push(list);
    }
    const pods = await Promise.all(nodes.map(async (n, i) => {
      const netns = `${lab.prefix}-kpod${i}`;
      lab.ns(`kpod${i}`);
      const rt = new Runtime(n.split('/').pop()!, [join(dir, `node${i}`, 'bin'), REF_DIR], join(dir, `node${i}`, 'results'));
      const a = { containerId: `${lab.prefix}-k${i}`, netns, ifname: 'eth0' };
      const r = await rt.add(lists[i]!, a);
      return { rt, a, ip: (r.ips[0].address as string).split('/')[0]!, netns, list: lists[i]! };
    }));
    expect(pods.map((p) => p.ip)).toEqual(['10.244.0.2', '10.244.1.2']);
    expect(lab.ping(`/var/run/netns/${pods[0]!.netns}`, pods[1]!.ip)).toContain('1 received');
    expect(lab.ping(`/var/run/netns/${pods[1]!.netns}`, pods[0]!.ip)).toContain('1 received');
    for (const p of pods) await p.rt.del(p.list, p.a);
    for (const n of nodes) expect(lab.ipJson(n, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'))).toEqual([]);
  });
});

describe('every shell script passes shellcheck (warnings and errors)', () => {
  const scripts = [
    ...readdirSync('scripts').filter((f) => f.endsWith('.sh')).map((f) => join('scripts', f)),
    ...readdirSync('scripts/kind').filter((f) => f.endsWith('.sh')).map((f) => join('scripts/kind', f)),
    ...readdirSync('scripts/vm').filter((f) => f.endsWith('.sh')).map((f) => join('scripts/vm', f)),
    ...readdirSync('vagrant').filter((f) => f.endsWith('.sh')).map((f) => join('vagrant', f)),
  ];
  it(`${scripts.length} scripts`, () => {
    const r = spawnSync('shellcheck', ['-x', '-S', 'warning', ...scripts], { encoding: 'utf8' });
    expect(r.error, 'shellcheck is installed by scripts/deps.sh').toBeUndefined();
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });
});
