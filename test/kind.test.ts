// The kind recipe (scripts/kind/), as far as it runs without kind: its node script installs the
// plugin in "kind nodes" (namespaces on one L2 network, as kind's docker network is), the
// conflists it writes pass `vnet validate`, pods on two nodes reach each other through the routes
// it adds; and every shell script of the project passes shellcheck.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runtime, type Conflist } from '../scripts/lab/chain.js';
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

describe('install-node.sh installs each node; pods on two nodes reach each other through its routes, also after a node restart', () => {
  for (const layout of ['kubenet', 'overlay'] as const) {
    it(`${layout}: two kind-like nodes on one L2 network, valid conflists, cross-node routes, a pod on each pinging the other`, async () => {
      // kind's docker network: one bridge, the nodes at 172.18.0.2 and .3
      const tag = layout[0];
      const net = lab.ns(`${tag}kindnet`);
      lab.in(net, ['ip', 'link', 'add', 'kind', 'type', 'bridge']);
      lab.in(net, ['ip', 'link', 'set', 'kind', 'up']);
      const nodes = [0, 1].map((i) => {
        const n = lab.ns(`${tag}kind${i}`);
        lab.in(n, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', net]);
        lab.in(net, ['ip', 'link', 'set', `p${i}`, 'master', 'kind', 'up']);
        lab.in(n, ['ip', 'addr', 'add', `172.18.0.${2 + i}/16`, 'dev', 'eth0']);
        lab.in(n, ['ip', 'link', 'set', 'eth0', 'up']);
        return n;
      });
      const lists: Conflist[] = [];
      const home = (i: number) => join(dir, layout, `node${i}`);
      for (const [i, n] of nodes.entries()) {
        const other = 1 - i;
        const env = { ...process.env, CNI_BIN_DIR: join(home(i), 'bin'), CNI_CONF_DIR: join(home(i), 'net.d'), VNET_ETC_DIR: join(home(i), 'etc') };
        const out = execFileSync('nsenter', [`--net=${n}`, 'sh', 'scripts/kind/install-node.sh', BIN, layout, `10.244.${i}.0/24`, '10.244.0.0/16', '172.18.0.0/16', `10.244.${other}.0/24=172.18.0.${2 + other}`], { env, encoding: 'utf8' });
        expect(out).toMatch(new RegExp(`route 10\\.244\\.${other}\\.0/24 via 172\\.18\\.0\\.${2 + other}`));
        expect(out).toMatch(/10-vnet\.conflist: ok/);
        const list = JSON.parse(readFileSync(join(home(i), 'net.d', '10-vnet.conflist'), 'utf8')) as Conflist;
        expect(list.plugins[0]!.mode ?? 'transparent').toBe(layout === 'kubenet' ? 'bridge' : 'transparent');
        // Test paths for what a node keeps in /var: the IPAM store and the log.
        Object.assign(list.plugins[0]!, { logFile: join(home(i), 'vnet.log') });
        (list.plugins[0] as any).ipam.dataDir = join(home(i), 'ipam');
        lists.push(list);
      }
      const pods = await Promise.all(nodes.map(async (n, i) => {
        const netns = `${lab.prefix}-${tag}kpod${i}`;
        lab.ns(`${tag}kpod${i}`);
        const rt = new Runtime(n.split('/').pop()!, [join(home(i), 'bin'), REF_DIR], join(home(i), 'results'));
        const a = { containerId: `${lab.prefix}-k${i}`, netns, ifname: 'eth0' };
        const r = await rt.add(lists[i]!, a);
        return { rt, a, ip: (r.ips[0].address as string).split('/')[0]!, netns, list: lists[i]! };
      }));
      expect(pods.map((p) => p.ip)).toEqual(['10.244.0.2', '10.244.1.2']);
      expect(lab.ping(`/var/run/netns/${pods[0]!.netns}`, pods[1]!.ip)).toContain('1 received');
      expect(lab.ping(`/var/run/netns/${pods[1]!.netns}`, pods[0]!.ip)).toContain('1 received');
      // A node container's restart loses its routes; the boot script the unit runs puts them back.
      lab.in(nodes[0]!, ['ip', 'route', 'del', '10.244.1.0/24']);
      expect(() => lab.ping(`/var/run/netns/${pods[0]!.netns}`, pods[1]!.ip)).toThrow(/Command failed: .*ping/);
      lab.in(nodes[0]!, ['sh', join(home(0), 'etc', 'peer-routes.sh')]);
      expect(lab.ping(`/var/run/netns/${pods[0]!.netns}`, pods[1]!.ip)).toContain('1 received');
      for (const p of pods) await p.rt.del(p.list, p.a);
      for (const n of nodes) expect(lab.ipJson(n, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'))).toEqual([]);
    });
  }
  it('refuses a layout kind cannot carry and a peer that is not CIDR=IP, before installing anything', () => {
    const env = { ...process.env, CNI_BIN_DIR: join(dir, 'refused', 'bin'), CNI_CONF_DIR: join(dir, 'refused', 'net.d'), VNET_ETC_DIR: join(dir, 'refused', 'etc') };
    const bad = spawnSync('sh', ['scripts/kind/install-node.sh', BIN, 'transparent', '10.244.0.0/24', '10.244.0.0/16', '172.18.0.0/16'], { env, encoding: 'utf8' });
    expect(bad.stderr).toMatch(/LAYOUT must be kubenet or overlay \(got transparent\)/);
    const peer = spawnSync('sh', ['scripts/kind/install-node.sh', BIN, 'kubenet', '10.244.0.0/24', '10.244.0.0/16', '172.18.0.0/16', '10.244.1.0/24=172.18.0.3;reboot'], { env, encoding: 'utf8' });
    expect(peer.stderr).toMatch(/is not PEER_CIDR=PEER_IP/);
    expect([bad.status, peer.status]).toEqual([2, 2]);
    expect(existsSync(join(dir, 'refused'))).toBe(false);
  });
});

describe('up.sh reads the nodes’ network from either engine’s `network inspect` (recorded samples)', () => {
  const parse = (file: string) => spawnSync('node', ['scripts/kind/node-net.mjs'], { input: readFileSync(file), encoding: 'utf8' });
  it('docker: IPAM.Config[].Subnet, the IPv4 one (the sample lists IPv6 first)', () => {
    expect(parse('test/fixtures/docker-network-inspect-kind.json').stdout).toBe('172.18.0.0/16\n');
  });
  it('podman 4 (recorded here, CNI backend): subnets[].subnet, the IPv4 one', () => {
    expect(parse('test/fixtures/podman-network-inspect-kind.json').stdout).toBe('10.89.0.0/24\n');
  });
  it('no IPv4 subnet, or not JSON: an error naming why, exit 1', () => {
    const r = spawnSync('node', ['scripts/kind/node-net.mjs'], { input: '[{"subnets":[{"subnet":"fc00::/64"},{"subnet":"10.1.0.0/33"}]}]', encoding: 'utf8' });
    expect(r.stderr).toMatch(/no IPv4 subnet among \["fc00::\/64","10\.1\.0\.0\/33"\]/);
    expect(r.status).toBe(1);
    expect(spawnSync('node', ['scripts/kind/node-net.mjs'], { input: 'Error: no such network', encoding: 'utf8' }).stderr).toMatch(/not JSON/);
  });
});

describe('up.sh checks its prerequisites before it changes anything, and builds with npm alone', () => {
  const up = readFileSync('scripts/kind/up.sh', 'utf8');
  it('no apt-get, no deps.sh: npm ci and npm run build', () => {
    expect(up).not.toMatch(/apt-get install|deps\.sh/);
    expect(up).toMatch(/npm run --silent build/);
  });
  it('an unknown layout is refused with the reason, before anything runs', () => {
    const r = spawnSync('bash', ['scripts/kind/up.sh', '--layout', 'transparent'], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/--layout takes kubenet or overlay \(transparent and Azure's bridge need a VNet's fabric/);
    expect(r.status).toBe(2);
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
