// The seeds' conflists (seed 003: what real AKS nodes carry), converted by changing only the
// plugin's type and the IPAM ranges, in conf/seeds/: each validates, and each runs in the lab, two
// nodes with two pods each, through its whole chain, with the reachability matrix; every field it
// carries does what it says (promiscMode, ipMasq false, bandwidth), and DEL leaves nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster, podLeftovers, type Layout } from '../scripts/lab/cluster.js';
import type { Conflist } from '../scripts/lab/chain.js';
import { matrix } from '../scripts/lab/matrix.js';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, BIN_DIR, REF_DIR, sh } from './helpers/lab.js';

const made: Cluster[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'vnet-seeds-'));
afterAll(() => {
  for (const c of made) c.destroy();
  rmSync(scratch, { recursive: true, force: true });
});
const seed = (f: string) => JSON.parse(readFileSync(`conf/seeds/${f}`, 'utf8')) as Conflist;
const validate = (f: string) => spawnSync(BIN, ['validate', `conf/seeds/${f}`], { encoding: 'utf8', env: { PATH: '/nonexistent', VNET_LOG_FILE: join(scratch, 'validate.log') } });
const ipIn = (ns: string, args: string[]) => JSON.parse(sh(['nsenter', `--net=/var/run/netns/${ns}`, 'ip', '-j', ...args]) || '[]');

/** The lab with this seed on every node, populated, its matrix all ok. */
async function seeded(layout: Layout, file: string): Promise<Cluster> {
  const prefix = 'vs' + randomBytes(3).toString('hex');
  const c = Cluster.create({ layout, nodes: 2, pods: 2, dualStack: false, prefix, dir: mkdtempSync(join(tmpdir(), `${prefix}-`)), binDir: BIN_DIR, refDir: REF_DIR, seed: seed(file) });
  made.push(c);
  await c.populate();
  const probes = await matrix(c);
  expect(probes.filter((p) => !p.ok)).toEqual([]);
  return c;
}
async function emptied(c: Cluster) {
  for (const p of [...c.pods]) await c.delPod(p);
  for (let i = 0; i < c.spec.nodes; i++) {
    expect(podLeftovers(c, i)).toEqual({ links: [], routes: [], neighbours: [], masquerade: [], macDnat: [], allocations: [], index: [], temps: [], cached: [] });
  }
}

describe('AKS transparent + portmap (10-azure.conflist, azure-vnet → vnet)', () => {
  it('validates without a word; in the lab every probe passes and pods leave with their own address', async () => {
    const v = validate('aks-transparent.conflist');
    expect([v.status, v.stderr]).toEqual([0, '']);
    const c = await seeded('transparent', 'aks-transparent.conflist');
    await emptied(c);
  });
});

describe('AKS kubenet (10-containerd-net.conflist, bridge → vnet): promiscMode, ipMasq false, addIf named', () => {
  it('validates with two warnings (addIf; promiscMode without hairpinMode); cbr0 is promiscuous; pods leave unmasqueraded, as ipMasq false says', async () => {
    const v = validate('aks-kubenet.conflist');
    expect(v.status).toBe(0);
    expect(v.stderr).toMatch(/^conf\/seeds\/aks-kubenet\.conflist: warning: plugins\[0\]\.addIf: not implemented by vnet, ignored/);
    expect(v.stderr.trim().split('\n')[1]).toMatch(/^conf\/seeds\/aks-kubenet\.conflist: warning: plugins\[0\]: promiscMode without hairpinMode: .* set hairpinMode: true$/);
    expect(v.stderr.trim().split('\n')).toHaveLength(2);
    const c = await seeded('kubenet', 'aks-kubenet.conflist');
    expect(ipIn(c.node(0), ['-d', 'link', 'show', 'dev', 'cbr0'])[0].promiscuity).toBeGreaterThan(0);
    expect(c.expectedOutsideSource(c.pods[0]!, 4)).toBe(c.pods[0]!.ips[0]); // the matrix checked it
    await emptied(c);
  });
});

describe('the calico chain (10-calico.conflist, calico → vnet) with bandwidth and portmap: calico’s own fields tolerated', () => {
  it('validates without a word (mtu 0 is the default); in the lab every probe passes; bandwidth shapes a pod that asks', async () => {
    const v = validate('aks-calico-chain.conflist');
    expect([v.status, v.stderr]).toEqual([0, '']);
    const c = await seeded('overlay', 'aks-calico-chain.conflist');
    const shaped = await c.addPod(0, 'shaped', { bandwidth: { egressRate: 8_000_000, egressBurst: 200_000 } });
    const veth = ipIn(c.node(0), ['link', 'show']).find((l: any) => l.ifname.startsWith('azv') && l.ifalias?.includes(shaped.containerId));
    expect(sh(['nsenter', `--net=/var/run/netns/${c.node(0)}`, 'tc', 'qdisc', 'show', 'dev', veth.ifname])).toMatch(/ingress/);
    expect(ipIn(c.node(0), ['link', 'show', 'dev', veth.ifname])[0].mtu).toBe(1500); // mtu 0: the uplink's
    await emptied(c);
  });
});
