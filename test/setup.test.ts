// Set-up never harms the machine it runs on: scripts/deps.sh installs only what the command at
// hand needs, says what before it does, and refuses a package that would make apt remove another
// (Docker CE's containerd.io, which conflicts with Debian's containerd and runc). The machine here
// is played by a copy of dpkg's status (DPKG_ADMINDIR) that apt reads too (APT_CONFIG), with every
// install a simulation (APT::Get::Simulate), so nothing on this machine changes.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'vtsetup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REAL = readFileSync('/var/lib/dpkg/status', 'utf8').split(/\n\n+/).filter((s) => s.trim());
const DOCKER_CONTAINERD = `Package: containerd.io
Status: install ok installed
Priority: optional
Section: devel
Installed-Size: 100000
Maintainer: Containerd team
Architecture: amd64
Version: 1.7.25-1
Provides: containerd, runc
Conflicts: containerd, runc
Replaces: containerd, runc
Description: An open and reliable container runtime`;

/** A machine like this one, less `drop` (and with `add` stanzas): its dpkg status and apt config. */
function machine(name: string, drop: string[], add: string[] = []) {
  const admin = join(dir, name);
  mkdirSync(join(admin, 'info'), { recursive: true });
  const kept = REAL.filter((s) => !drop.includes(/^Package: (\S+)/m.exec(s)?.[1] ?? ''));
  writeFileSync(join(admin, 'status'), [...kept, ...add].join('\n\n') + '\n');
  writeFileSync(join(admin, 'apt.conf'), `Dir::State::status "${join(admin, 'status')}";\nAPT::Get::Simulate "true";\n`);
  return { DPKG_ADMINDIR: admin, APT_CONFIG: join(admin, 'apt.conf') };
}
function deps(args: string[], env: Record<string, string>) {
  return spawnSync('bash', ['scripts/deps.sh', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env }, timeout: 300_000 });
}

describe('deps.sh never installs a package that would make apt remove another', () => {
  it('on a host with Docker CE’s containerd.io, --for test stops, names it, and installs nothing', () => {
    const r = deps(['--for', 'test'], machine('docker-ce', ['containerd', 'runc', 'podman', 'buildah'], [DOCKER_CONTAINERD]));
    expect(r.stdout).toMatch(/^deps: for test: apt-get install podman runc containerd$/m);
    expect(r.stderr).toMatch(/installing podman runc containerd would make apt remove containerd\.io \(a conflicting package: .*\); nothing installed/);
    expect(r.status).toBe(1);
  }, 300_000);
});

describe('deps.sh installs only what the command at hand needs, and says what first', () => {
  it('--for build (what npm run build needs) asks apt for nothing, even on a machine with no packages at all', () => {
    const r = deps(['--for', 'build'], machine('empty', REAL.map((s) => /^Package: (\S+)/m.exec(s)?.[1] ?? '')));
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(/apt-get/);
    expect(r.status).toBe(0);
  });
  it('--for lab (the demo) names only the datapath tools and reference plugins it lacks: no container runtime', () => {
    const r = deps(['--for', 'lab'], machine('no-nft', ['nftables', 'containernetworking-plugins', 'containerd', 'podman']));
    expect(r.stdout).toMatch(/^deps: for lab: apt-get install nftables containernetworking-plugins$/m);
    expect(r.status).toBe(0);
  }, 300_000);
  it('an unknown --for is refused', () => {
    const r = deps(['--for', 'everything'], {});
    expect(r.stderr).toMatch(/--for takes build, lab, bench, test or k8s \(got everything\)/);
    expect(r.status).toBe(2);
  });
});
