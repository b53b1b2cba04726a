// `vnet explain`: the plan ADD would run, as shell lines, running nothing.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from './helpers/lab.js';

// PATH points nowhere: if explain tried to run ip, nsenter or anything else, it would fail.
const explain = (args: string[]) =>
  spawnSync(BIN, ['explain', ...args], { encoding: 'utf8', env: { PATH: '/nonexistent', VNET_LOG_FILE: '/nonexistent/vnet.log' } });

const base = ['--conf', 'conf/10-azure-transparent.conflist', '--container-id', 'c0ffee', '--netns', '/var/run/netns/pod-a'];

describe('explain prints the plan as shell lines without running anything', () => {
  it('is stable for a fixed input (snapshot)', () => {
    const r = explain([...base, '--ip', '10.224.0.17']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatchSnapshot();
  });
  it('without --ip shows the first address the range hands out, allocating nothing', () => {
    const r = explain(base);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('ip route add 10.224.0.10/32 dev azv');
    expect(r.stdout).toContain('the first address a fresh range hands out');
  });
  it('every command line is ip, nsenter … ip, or sysctl -w', () => {
    const lines = explain(base).stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines.length).toBeGreaterThan(8);
    for (const l of lines) expect(l).toMatch(/^(ip |nsenter --net=\/var\/run\/netns\/pod-a ip |sysctl -w )/);
  });
  it('a missing option is a usage error: exit 2, message on stderr', () => {
    const r = explain(['--conf', 'conf/10-azure-transparent.conflist']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--container-id');
  });
  it('an address outside the ranges is refused', () => {
    const r = explain([...base, '--ip', '192.0.2.1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('192.0.2.1');
  });
});
