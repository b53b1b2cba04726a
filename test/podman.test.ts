// A real container runtime drives the plugin: podman 4.3 with its CNI network backend runs busybox
// containers on a vnet transparent-mode network. podman runs inside the Lab's node namespace, as
// it would on a node, so the CNI plugins it executes (vnet, with vnet-ipam in-process) wire pods
// into that namespace; the node's eth0 leads to a "vnet" namespace holding the VNet's gateway.
// See test/helpers/podman.ts for where podman's state lives and why each flag is there.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, sh } from './helpers/lab.js';
import { Podman } from './helpers/podman.js';
import { hostVethName } from '../src/plan/names.js';

const lab = new Lab();
const NET = lab.prefix;
const NODE_IP = '10.230.0.4';
const GW_IP = '10.230.0.1';
const A = `${lab.prefix}-a`;
const B = `${lab.prefix}-b`;
const dataDir = join(lab.dir, 'ipam');
let node = '';
let gw = '';
let pm: Podman;

// The machine's own namespace, as `ip` shows it: link names and routes of every table.
function rootNamespace(): { links: string[]; routes: string[] } {
  const links = sh(['ip', '-o', 'link', 'show']).split('\n').filter(Boolean).map((l) => l.split(':')[1]!.trim().split('@')[0]!);
  const routes = [...sh(['ip', '-4', 'route', 'show', 'table', 'all']).split('\n'), ...sh(['ip', '-6', 'route', 'show', 'table', 'all']).split('\n')]
    .filter(Boolean)
    .map((r) => r.replace(/ expires \d+sec/, ''));
  return { links, routes };
}
const rootBefore = rootNamespace();

beforeAll(() => {
  node = lab.ns('node');
  gw = lab.ns('vnet');
  lab.in(node, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vnet0', 'netns', gw]);
  lab.in(node, ['ip', 'addr', 'add', `${NODE_IP}/16`, 'dev', 'eth0']);
  lab.in(node, ['ip', 'link', 'set', 'eth0', 'up']);
  lab.in(gw, ['ip', 'addr', 'add', `${GW_IP}/16`, 'dev', 'vnet0']);
  lab.in(gw, ['ip', 'link', 'set', 'vnet0', 'up']);
  lab.in(node, ['ip', 'route', 'add', 'default', 'via', GW_IP]);

  pm = new Podman(lab, node, NET);
  // podman 4.3 vendors libcni 1.1, which speaks CNI up to 1.0.0.
  pm.writeConflist({
    cniVersion: '1.0.0',
    name: NET,
    plugins: [
      {
        type: 'vnet',
        mode: 'transparent',
        mtu: 1500,
        logFile: pm.logFile,
        ipam: {
          type: 'vnet-ipam',
          ranges: [[{ subnet: '10.230.0.0/16', rangeStart: '10.230.0.10', rangeEnd: '10.230.0.50' }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir,
        },
      },
    ],
  });
  pm.runContainer(A);
  pm.runContainer(B);
});
afterAll(() => {
  try {
    pm?.cleanup();
  } finally {
    lab.cleanup();
  }
});

/** IPAM's record of an address: `containerID\r\nifname`, or undefined if it is free. */
function allocation(ip: string): string | undefined {
  expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  const f = join(dataDir, NET, ip);
  return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
}
function allocations(): string[] {
  const dir = join(dataDir, NET);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
}
const nodeLinks = () => lab.ipJson(node, ['link', 'show']).filter((l) => l.ifname.startsWith('azv'));
const nodeRoutes = () => lab.ipJson(node, ['route', 'show']).filter((r) => r.dev?.startsWith('azv'));
const vethOf = (id: string) => hostVethName(NET, { containerId: id, ifname: 'eth0' });
const ping = (from: string, to: string) => pm.exec(from, ['ping', '-c', '1', '-W', '2', to]);

/** The container is wired: its address is held for its ID, its /32 goes through its veth. */
function expectWired(name: string) {
  const c = pm.inspect(name);
  expect(c.status).toBe('running');
  expect(allocation(c.ip)).toBe(`${c.id}\r\neth0`);
  const veth = lab.ipJson(node, ['link', 'show', 'dev', vethOf(c.id)])[0];
  expect(veth).toMatchObject({ address: 'aa:aa:aa:aa:aa:aa', operstate: 'UP' });
  expect(nodeRoutes()).toContainEqual(expect.objectContaining({ dst: c.ip, dev: vethOf(c.id), scope: 'link' }));
  return c;
}
/** Nothing of the container is left on the node: no veth, no /32, no address. */
function expectUnwired(c: { id: string; ip: string }) {
  expect(nodeLinks().map((l) => l.ifname)).not.toContain(vethOf(c.id));
  expect(nodeRoutes().map((r) => r.dst)).not.toContain(c.ip);
  expect(allocation(c.ip)).toBeUndefined();
}

describe('podman run attaches the container through vnet, with an address from vnet-ipam', () => {
  it('podman reports the address vnet-ipam holds for the container ID, with the link-local gateway', () => {
    for (const name of [A, B]) {
      const c = pm.inspect(name);
      expect(c.ip).toMatch(/^10\.230\.0\.(1\d|[2-4]\d|50)$/);
      expect(c.prefixLen).toBe(16);
      expect(c.gateway).toBe('169.254.1.1');
      expect(allocation(c.ip)).toBe(`${c.id}\r\neth0`);
    }
    expect(allocations()).toHaveLength(2);
    expect(pm.inspect(A).ip).not.toBe(pm.inspect(B).ip);
  });

  it('inside the container: the address on eth0, no subnet route, default via 169.254.1.1 pinned to aa:aa:aa:aa:aa:aa', () => {
    const c = pm.inspect(A);
    const addr = lab.ipJson(c.netns, ['addr', 'show', 'dev', 'eth0'])[0];
    expect(addr.mtu).toBe(1500);
    expect(addr.addr_info.find((x: any) => x.family === 'inet')).toMatchObject({ local: c.ip, prefixlen: 16 });
    expect(lab.ipJson(c.netns, ['route', 'show'])).toEqual([
      expect.objectContaining({ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' }),
      expect.objectContaining({ dst: '169.254.1.1', dev: 'eth0', scope: 'link' }),
    ]);
    const neigh = lab.ipJson(c.netns, ['neigh', 'show', 'dev', 'eth0']).find((n) => n.dst === '169.254.1.1');
    expect(neigh).toMatchObject({ lladdr: 'aa:aa:aa:aa:aa:aa', state: ['PERMANENT'] });
    // and the container itself (busybox ip, in its own mount and PID namespaces) sees the same
    expect(pm.exec(A, ['ip', '-4', 'addr', 'show', 'dev', 'eth0'])).toContain(`inet ${c.ip}/16`);
  });

  it('on the node: one azv veth per container, named from the container ID, and a /32 through it', () => {
    expectWired(A);
    expectWired(B);
    expect(nodeLinks()).toHaveLength(2);
    expect(nodeRoutes()).toHaveLength(2);
  });
});

describe('containers on the network reach each other, the node and the VNet gateway', () => {
  it('a pings b and b pings a, through the node', () => {
    expect(ping(A, pm.inspect(B).ip)).toContain('1 packets received');
    expect(ping(B, pm.inspect(A).ip)).toContain('1 packets received');
  });
  it('a container pings the node', () => {
    expect(ping(A, NODE_IP)).toContain('1 packets received');
  });
  it('a container pings the VNet gateway behind the node', () => {
    const ip = pm.inspect(B).ip;
    // the VNet knows which node holds the pod (Azure programs this in its fabric)
    lab.in(gw, ['ip', 'route', 'replace', `${ip}/32`, 'via', NODE_IP]);
    expect(ping(B, GW_IP)).toContain('1 packets received');
  });
});

describe('podman stop makes the runtime call DEL; podman start calls ADD again', () => {
  it('stop: the veth, the /32 and the address go; the other container is untouched', () => {
    const a = pm.inspect(A);
    pm.podman(['stop', '--time', '0', A]);
    expect(pm.inspect(A).status).toBe('exited');
    expectUnwired(a);
    expect(existsSync(a.netns)).toBe(false);
    expectWired(B);
    expect(ping(B, NODE_IP)).toContain('1 packets received');
  });
  it('start: wired again under the same container ID, and it reaches b', () => {
    pm.start(A);
    const a = expectWired(A);
    expect(ping(A, pm.inspect(B).ip)).toContain('1 packets received');
    expect(allocations()).toHaveLength(2);
    expect(a.id).toBe(pm.inspect(A).id);
  });
});

describe('podman rm -f makes the runtime call DEL: no azv veth, /32 route or allocation is left', () => {
  it('removing both containers leaves the node, the IPAM store and the runtime clean', () => {
    const a = pm.inspect(A);
    const b = pm.inspect(B);
    pm.podman(['rm', '--force', '--time', '0', A]);
    expectUnwired(a);
    expectWired(B);
    pm.podman(['rm', '--force', '--time', '0', B]);
    expectUnwired(b);

    expect(nodeLinks()).toEqual([]);
    expect(nodeRoutes()).toEqual([]);
    expect(allocations()).toEqual([]);
    expect(pm.podman(['ps', '--all', '--quiet'])).toBe('');
    expect(pm.liveSandboxes()).toEqual([]);
    expect(pm.cniCacheFiles()).toEqual([]);
    // every DEL the runtime made is in the plugin's log, once per attachment that went away
    const dels = readFileSync(pm.logFile, 'utf8').split('\n').filter((l) => /Processing DEL command/.test(l));
    expect(dels.filter((l) => l.includes(a.id)).length).toBeGreaterThanOrEqual(2);
    expect(dels.filter((l) => l.includes(b.id)).length).toBeGreaterThanOrEqual(1);
  });
});

describe('podman runs in the node namespace only: the machine keeps its links and routes', () => {
  it('no new link (azv or other) and no new route in the root namespace', () => {
    const now = rootNamespace();
    expect(now.links.filter((l) => !rootBefore.links.includes(l))).toEqual([]);
    expect(now.links.filter((l) => l.startsWith('azv'))).toEqual([]);
    expect(now.routes.filter((r) => !rootBefore.routes.includes(r))).toEqual([]);
  });
});
