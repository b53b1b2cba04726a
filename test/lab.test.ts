// The lab end to end, every layout: a cluster of namespaces (lab/cluster.ts, the same code
// `scripts/lab.sh` runs), the plugin run through each node's whole conflist from conf/ as a
// runtime runs it, the full reachability matrix, and every pod DELeted back to a pod-free node.
import { afterAll, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Cluster, LAYOUTS, nodeShape, podLeftovers, type Layout, type Spec } from '../lab/cluster.js';
import { matrix } from '../lab/matrix.js';
import { BIN_DIR, REF_DIR } from './helpers/lab.js';

const made: Cluster[] = [];
afterAll(() => {
  for (const c of made) c.destroy();
});

export function labSpec(layout: Layout, o: Partial<Spec> = {}): Spec {
  const prefix = 'vl' + randomBytes(3).toString('hex');
  return {
    layout, nodes: 2, pods: 2, dualStack: false, prefix,
    dir: mkdtempSync(join(tmpdir(), `${prefix}-`)), binDir: BIN_DIR, refDir: REF_DIR, confDir: resolve('conf'), ...o,
  };
}
export function cluster(layout: Layout, o: Partial<Spec> = {}): Cluster {
  const c = Cluster.create(labSpec(layout, o));
  made.push(c);
  return c;
}

for (const layout of LAYOUTS) {
  describe(`layout ${layout}, dual stack: every pod reaches what the layout promises, and DEL leaves each node as it was`, () => {
    it('2 nodes × 2 pods: the whole matrix passes in both families; CHECK passes; DEL of every pod leaves nothing', async () => {
      const c = cluster(layout, { dualStack: true });
      const before = Array.from({ length: c.spec.nodes }, (_, i) => nodeShape(c, i));
      await c.populate();
      const probes = await matrix(c);
      expect(probes.filter((p) => !p.ok)).toEqual([]);
      expect(probes.length).toBeGreaterThanOrEqual(20);
      for (const p of c.pods) await c.checkPod(p);
      for (const p of [...c.pods]) await c.delPod(p);
      for (let i = 0; i < c.spec.nodes; i++) {
        expect(podLeftovers(c, i)).toEqual({ links: [], routes: [], neighbours: [], masquerade: [], allocations: [], index: [], temps: [], cached: [] });
        expect(nodeShape(c, i)).toEqual(before[i]);
      }
    });
  });
}
