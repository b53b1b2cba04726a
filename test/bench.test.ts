// The benchmark keeps working: its short form runs in CI (one round, no burst or scale), writes
// its markdown table with every row and target, and leaves nothing behind. No timing is asserted.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'vtbench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const namespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => /^vb\d+-/.test(l));

describe('npm run bench, short form: every row and target, as a markdown table', () => {
  it('runs once through every flow and writes the table; its namespaces are gone afterwards', () => {
    const out = join(dir, 'bench.md');
    const r = spawnSync(process.execPath, ['scripts/bench.mjs', '--runs', '1', '--quick', '--out', out], { encoding: 'utf8', env: { PATH: process.env.PATH! } });
    expect(r.status, r.stderr).toBe(0);
    const md = readFileSync(out, 'utf8');
    for (const row of ['node -e 0', 'vnet VERSION', 'ADD  vnet transparent + vnet-ipam (in-process)', 'CHECK vnet bridge (Azure, uplink eth0) + vnet-ipam',
      'DEL  ptp + host-local (Go reference)', 'bridge (Go reference) + vnet-ipam (exec)', 'vnet transparent + host-local (exec)']) {
      expect(md).toContain(row);
    }
    expect(md).toMatch(/\| rss \| node -e 0 \/ vnet VERSION/);
    // the floors, where vnet's time goes (from its log), and what bounds each target it misses
    for (const row of ['empty-snapshot executable (floor of a node snapshot)', 'ip -batch, empty (floor of one ip process)', 'nsenter + ip -batch, empty']) expect(md).toContain(row);
    expect(md).toMatch(/\| ADD \| vnet transparent \+ vnet-ipam \(in-process\) \| start-up [\d.]+ ms, then config [\d.]+, ip processes [\d.]+, IPAM [\d.]+, plan [\d.]+/);
    expect(md).toMatch(/\| DEL \| vnet transparent \+ vnet-ipam \(in-process\) \| start-up [\d.]+ ms, then config [\d.]+, .*veth gone/);
    expect(md).toContain('| target | measured | | what bounds it (this run) |');
    // both builds side by side: what portability costs, as ratios of the same run
    expect(md).toMatch(/\| portable \(default, dist\/bin\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ MiB \|/);
    expect(md).toMatch(/\| this-cpu \(V8 startup snapshot\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ MiB \|/);
    expect(md).toMatch(/\| size \| vnet executable \/ node \/ the bundle in it \| [\d.]+ MiB \/ [\d.]+ MiB \/ \d+ KiB \|/);
    expect(md).toMatch(/\| processes \| one ADD, vnet transparent \+ vnet-ipam \(in-process\) \| 2 processes \|/);
    for (const t of ['VERSION ≤ 1.05×', 'ADD transparent ≤ 1.25×', 'DEL transparent ≤', 'CHECK transparent ≤ 1.2×', 'peak RSS ≤ 1.15×']) expect(md).toContain(t);
    expect(namespaces()).toEqual([]);
  });
});
