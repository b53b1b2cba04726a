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

describe('explain shows a dual-stack pod: one address per range set, each family wired', () => {
  const dual = ['--conf', 'conf/10-azure-dual-stack.conflist', '--container-id', 'c0ffee', '--netns', '/var/run/netns/pod-a'];
  it('without --ip: the first address of each range set, IPv6 without DAD, a default route and gateway entry per family', () => {
    const r = explain(dual);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('hands out addresses from 10.224.0.0/16, fd00:224::/64: 10.224.0.10/16, fd00:224::10/64');
    expect(r.stdout).toMatch(/^ip route add fd00:224::10\/128 dev azv[0-9a-f]{11}$/m);
    expect(r.stdout).toContain('ip addr add fd00:224::10/64 dev eth0 nodad');
    expect(r.stdout).toContain('ip route add default via fe80::1234:5678:9abc dev eth0');
    expect(r.stdout).toContain('ip neigh add fe80::1234:5678:9abc lladdr aa:aa:aa:aa:aa:aa dev eth0 nud permanent');
    expect(r.stdout).toContain('sysctl -w net.ipv6.conf.all.forwarding=1');
  });
  it('--ip given twice picks one address per family; an IPv6 address outside every range is refused', () => {
    const r = explain([...dual, '--ip', '10.224.0.20', '--ip', 'fd00:224::20']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('10.224.0.20/16, fd00:224::20/64 (from --ip)');
    const bad = explain([...dual, '--ip', 'fd00:999::1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('fd00:999::1');
  });
});
