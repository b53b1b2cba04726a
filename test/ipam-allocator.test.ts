import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Code } from '../src/errors.js';
import { ipamEnv, rejects, useTempDataDir } from './helpers/ipam.js';
import { listAllocations, runIpam } from '../src/ipam/plugin.js';

let dataDir: string;
useTempDataDir('vnet-ipam-alloc-', (d) => (dataDir = d));

const env = ipamEnv;

const netconf = (ipam: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: 'net1',
  type: 'vnet',
  ipam: { type: 'vnet-ipam', dataDir, ...ipam },
  ...extra,
});

const v4 = (subnet = '10.0.0.0/29', more: Record<string, unknown> = {}) => netconf({ ranges: [[{ subnet, ...more }]] });
const dual = (s4 = '10.0.0.0/29', s6 = 'fd00::/125') => netconf({ ranges: [[{ subnet: s4 }], [{ subnet: s6 }]] });

async function add(conf: Record<string, unknown>, id = 'c1', ifname = 'eth0', args: [string, string][] = []) {
  const r = await runIpam(env('ADD', id, ifname, args), conf);
  if (!r) throw new Error('ADD returned no result');
  return r;
}
const addrs = async (conf: Record<string, unknown>, id = 'c1', ifname = 'eth0', args: [string, string][] = []) =>
  (await add(conf, id, ifname, args)).ips.map((i) => i.address);


const netDir = () => join(dataDir, 'net1');

/** Every file under the network directory, with its content (directories as "<dir>"). */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      if ((await stat(path)).isDirectory()) {
        out[prefix + name] = '<dir>';
        if (name !== '.lock') await walk(path, `${prefix}${name}/`);
      } else out[prefix + name] = await readFile(path, 'utf8');
    }
  };
  await walk(netDir(), '');
  return out;
}

describe("ADD returns one address per range set, with the subnet's prefix, its gateway, the routes and the DNS", () => {
  it('single stack', async () => {
    const r = await add(netconf({ ranges: [[{ subnet: '10.0.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }] }));
    expect(r).toEqual({ interfaces: [], ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} });
  });

  it('dual stack', async () => {
    const r = await add(dual());
    expect(r.ips).toEqual([
      { address: '10.0.0.2/29', gateway: '10.0.0.1' },
      { address: 'fd00::2/125', gateway: 'fd00::1' },
    ]);
  });

  it('resolvConf is parsed into dns, as host-local does', async () => {
    const path = join(dataDir, 'resolv.conf');
    await writeFile(path, '# comment\n; other\nnameserver 10.0.0.10\nnameserver fd00::10\ndomain example.com\nsearch a.example b.example\noptions ndots:5 edns0\nbogus\n');
    const r = await add(netconf({ ranges: [[{ subnet: '10.0.0.0/24' }]], resolvConf: path }));
    expect(r.dns).toEqual({
      nameservers: ['10.0.0.10', 'fd00::10'],
      domain: 'example.com',
      search: ['a.example', 'b.example'],
      options: ['ndots:5', 'edns0'],
    });
  });

  it('an unreadable resolvConf is a config error naming the field', async () => {
    const err = await rejects(add(netconf({ ranges: [[{ subnet: '10.0.0.0/24' }]], resolvConf: join(dataDir, 'nope') })));
    expect(err.code).toBe(Code.invalidConfig);
    expect(err.message).toMatch(/^ipam\.resolvConf: cannot read/);
  });
});

describe("the on-disk format is host-local's", () => {
  it('one file per address holding "containerID\\r\\nifname", last_reserved_ip.<set>, lock', async () => {
    await add(dual(), 'c1', 'eth0');
    const snap = await snapshot();
    expect(snap['10.0.0.2']).toBe('c1\r\neth0');
    expect(snap['fd00::2']).toBe('c1\r\neth0');
    expect(snap['last_reserved_ip.0']).toBe('10.0.0.2');
    expect(snap['last_reserved_ip.1']).toBe('fd00::2');
    expect(snap['lock']).toBe('');
    // Nothing else but dot-names of ours.
    expect(Object.keys(snap).filter((k) => !k.startsWith('.')).sort()).toEqual(['10.0.0.2', 'fd00::2', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
  });

  it('listAllocations lists them in address order', async () => {
    await add(dual(), 'c1', 'eth0');
    await add(dual(), 'c2', 'net1');
    expect(await listAllocations(dataDir, 'net1')).toEqual([
      { ip: '10.0.0.2', containerId: 'c1', ifname: 'eth0' },
      { ip: '10.0.0.3', containerId: 'c2', ifname: 'net1' },
      { ip: 'fd00::2', containerId: 'c1', ifname: 'eth0' },
      { ip: 'fd00::3', containerId: 'c2', ifname: 'net1' },
    ]);
    expect(await listAllocations(dataDir, 'no-such-net')).toEqual([]);
  });
});

describe('allocation is round-robin: a just-freed address is not reused at once', () => {
  it('continues after last_reserved_ip and wraps around, skipping the gateway', async () => {
    const conf = v4('10.0.0.0/29'); // usable: .2 .3 .4 .5 .6
    expect(await addrs(conf, 'a')).toEqual(['10.0.0.2/29']);
    expect(await addrs(conf, 'b')).toEqual(['10.0.0.3/29']);
    await runIpam(env('DEL', 'a'), conf);
    expect(await addrs(conf, 'c')).toEqual(['10.0.0.4/29']);
    expect(await addrs(conf, 'd')).toEqual(['10.0.0.5/29']);
    expect(await addrs(conf, 'e')).toEqual(['10.0.0.6/29']);
    expect(await addrs(conf, 'f')).toEqual(['10.0.0.2/29']); // wrapped; .3 is still b's
  });

  it('starts after an existing last_reserved_ip written by someone else', async () => {
    await mkdir(netDir(), { recursive: true });
    await writeFile(join(netDir(), 'last_reserved_ip.0'), '10.0.0.4');
    expect(await addrs(v4())).toEqual(['10.0.0.5/29']);
  });
});

describe('network, broadcast and gateway addresses are never handed out', () => {
  it('a /30 has exactly one address to give when .1 is the gateway', async () => {
    const conf = v4('10.0.0.0/30');
    expect(await addrs(conf, 'a')).toEqual(['10.0.0.2/30']);
    expect((await rejects(add(conf, 'b'))).code).toBe(Code.ipamExhausted);
  });

  it('with a range spanning the whole subnet and a gateway at the top', async () => {
    const conf = v4('10.0.0.0/30', { rangeStart: '10.0.0.0', rangeEnd: '10.0.0.3', gateway: '10.0.0.2' });
    expect(await addrs(conf, 'a')).toEqual(['10.0.0.1/30']);
    expect((await rejects(add(conf, 'a2'))).code).toBe(Code.ipamExhausted);
  });
});

describe('a requested address is honoured if free and inside a range of its set', () => {
  it('from runtimeConfig.ips (CIDR)', async () => {
    expect(await addrs(netconf({ ranges: [[{ subnet: '10.0.0.0/24' }]] }, { runtimeConfig: { ips: ['10.0.0.77/24'] } }))).toEqual(['10.0.0.77/24']);
    expect(await readFile(join(netDir(), 'last_reserved_ip.0'), 'utf8')).toBe('10.0.0.77');
  });

  it('from args.cni.ips', async () => {
    expect(await addrs(netconf({ ranges: [[{ subnet: '10.0.0.0/24' }]] }, { args: { cni: { ips: ['10.0.0.78'] } } }))).toEqual(['10.0.0.78/24']);
  });

  it('from CNI_ARGS IP=, comma-separated, one per set, the other sets allocating normally', async () => {
    const conf = netconf({ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/64' }], [{ subnet: '10.1.0.0/24' }]] });
    expect(await addrs(conf, 'c1', 'eth0', [['IP', 'fd00::99,10.1.0.9']])).toEqual(['10.0.0.2/24', 'fd00::99/64', '10.1.0.9/24']);
  });

  it('outside every range: code 7', async () => {
    const err = await rejects(add(netconf({ ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.100' }]] }, { runtimeConfig: { ips: ['10.0.0.5'] } })));
    expect(err.code).toBe(Code.invalidConfig);
    expect(err.message).toMatch(/requested IP 10\.0\.0\.5 \(runtimeConfig\.ips\[0\]\) is in subnet of ipam\.ranges\[0\]\[0\] but outside its range 10\.0\.0\.100-10\.0\.0\.254/);
    const err2 = await rejects(add(v4(), 'c1', 'eth0', [['IP', '192.168.1.1']]));
    expect(err2.code).toBe(Code.invalidConfig);
    expect(err2.message).toMatch(/requested IP 192\.168\.1\.1 \(CNI_ARGS IP\) is not in any range/);
  });

  it('the gateway, or two addresses for one set: code 7', async () => {
    const gw = await rejects(add(v4(), 'c1', 'eth0', [['IP', '10.0.0.1']]));
    expect(gw.code).toBe(Code.invalidConfig);
    expect(gw.message).toMatch(/is the gateway of ipam\.ranges\[0\]\[0\]/);
    const two = await rejects(add(v4(), 'c1', 'eth0', [['IP', '10.0.0.3,10.0.0.4']]));
    expect(two.code).toBe(Code.invalidConfig);
    expect(two.message).toMatch(/both in range set 0/);
  });

  it('taken: an error naming who holds it, and nothing changes', async () => {
    const conf = v4();
    await add(conf, 'holder', 'eth1', [['IP', '10.0.0.5']]);
    const before = await snapshot();
    const err = await rejects(add(conf, 'c2', 'eth0', [['IP', '10.0.0.5']]));
    expect(err.code).toBe(Code.addressInUse);
    expect(err.message).toBe('requested IP 10.0.0.5 is already allocated to container holder (ifname eth1)');
    expect(await snapshot()).toEqual(before);
  });
});

describe('a second ADD for the same attachment is an error naming what it holds, never a second address', () => {
  it('same container and ifname', async () => {
    const conf = dual();
    await add(conf, 'c1', 'eth0');
    const before = await snapshot();
    const err = await rejects(add(conf, 'c1', 'eth0'));
    expect(err.code).toBe(Code.alreadyAttached);
    expect(err.message).toBe('container c1 (ifname eth0) already holds 10.0.0.2, fd00::2; duplicate allocation is not allowed');
    expect(await snapshot()).toEqual(before);
  });

  it('another ifname of the same container is another attachment', async () => {
    const conf = v4();
    expect(await addrs(conf, 'c1', 'eth0')).toEqual(['10.0.0.2/29']);
    expect(await addrs(conf, 'c1', 'eth1')).toEqual(['10.0.0.3/29']);
  });
});

describe('exhaustion: host-local\'s message, code 100, and nothing changed on disk', () => {
  it('single stack', async () => {
    const conf = v4('10.0.0.0/30');
    await add(conf, 'a');
    const before = await snapshot();
    const err = await rejects(add(conf, 'b'));
    expect(err.code).toBe(Code.ipamExhausted);
    expect(err.message).toBe('no IP addresses available in range set: 10.0.0.1-10.0.0.2');
    expect(await snapshot()).toEqual(before);
  });

  it('several ranges in the set are all named', async () => {
    const conf = netconf({ ranges: [[{ subnet: '10.0.0.0/30' }, { subnet: '10.0.1.0/30' }]] });
    await add(conf, 'a');
    await add(conf, 'b');
    expect((await rejects(add(conf, 'c'))).message).toBe('no IP addresses available in range set: 10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2');
  });

  it('dual stack: v6 exhausted after v4 was free gives back nothing and keeps v4 free', async () => {
    const conf = dual('10.0.0.0/24', 'fd00::/126'); // v6 usable: ::2, ::3
    await add(conf, 'a');
    await add(conf, 'b');
    const before = await snapshot();
    const err = await rejects(add(conf, 'c'));
    expect(err.code).toBe(Code.ipamExhausted);
    expect(err.message).toBe('no IP addresses available in range set: fd00::1-fd00::3');
    expect(await snapshot()).toEqual(before);
    // The v4 address c would have had is still free.
    await runIpam(env('DEL', 'a'), conf);
    expect(await addrs(conf, 'd')).toEqual(['10.0.0.4/24', 'fd00::2/126']);
  });

  it('dual stack: a requested v6 that is taken releases the v4 taken first', async () => {
    const conf = dual('10.0.0.0/24', 'fd00::/64');
    await add(conf, 'a', 'eth0', [['IP', 'fd00::5']]);
    const before = await snapshot();
    const err = await rejects(add(conf, 'b', 'eth0', [['IP', 'fd00::5']]));
    expect(err.code).toBe(Code.addressInUse);
    expect(await snapshot()).toEqual(before);
  });
});

describe('DEL releases exactly what the attachment holds, and succeeds when there is nothing', () => {
  it('releases both families, keeps others, and a repeat DEL is fine', async () => {
    const conf = dual();
    await add(conf, 'a');
    await add(conf, 'b');
    await runIpam(env('DEL', 'a'), conf);
    expect(await listAllocations(dataDir, 'net1')).toEqual([
      { ip: '10.0.0.3', containerId: 'b', ifname: 'eth0' },
      { ip: 'fd00::3', containerId: 'b', ifname: 'eth0' },
    ]);
    await runIpam(env('DEL', 'a'), conf);
    expect(await listAllocations(dataDir, 'net1')).toHaveLength(2);
  });

  it('never allocated, no directory at all: success, and nothing is created', async () => {
    expect(await runIpam(env('DEL', 'x'), v4())).toBeUndefined();
    await expect(stat(netDir())).rejects.toThrow();
  });

  it('only needs name and dataDir: a config gone invalid still releases', async () => {
    await add(v4(), 'a');
    await runIpam(env('DEL', 'a'), netconf({ ranges: [[{ subnet: 'garbage' }]] }));
    expect(await listAllocations(dataDir, 'net1')).toEqual([]);
  });

  it('an address file rewritten to another owner is left alone', async () => {
    await add(v4(), 'a');
    await writeFile(join(netDir(), '10.0.0.2'), 'other\r\neth0');
    await runIpam(env('DEL', 'a'), v4());
    expect(await listAllocations(dataDir, 'net1')).toEqual([{ ip: '10.0.0.2', containerId: 'other', ifname: 'eth0' }]);
  });
});

describe('concurrent ADDs in one process get distinct addresses', () => {
  it('50 parallel ADDs, 50 distinct addresses, all on disk', async () => {
    const conf = dual('10.0.0.0/24', 'fd00::/64');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => add(conf, `c${i}`)));
    const v4s = results.map((r) => r.ips[0]!.address);
    const v6s = results.map((r) => r.ips[1]!.address);
    expect(new Set(v4s).size).toBe(50);
    expect(new Set(v6s).size).toBe(50);
    const on = await listAllocations(dataDir, 'net1');
    expect(on).toHaveLength(100);
    for (const [i, r] of results.entries()) {
      const held = on.filter((x) => x.containerId === `c${i}`).map((x) => x.ip);
      expect(held.sort()).toEqual(r.ips.map((x) => x.address.split('/')[0]!).sort());
    }
  });

  it('50 parallel ADD then DEL pairs leave nothing behind', async () => {
    const conf = v4('10.0.0.0/24');
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        await add(conf, `c${i}`);
        await runIpam(env('DEL', `c${i}`), conf);
      }),
    );
    expect(await listAllocations(dataDir, 'net1')).toEqual([]);
    expect(await readdir(join(netDir(), '.by-container'))).toEqual([]);
  });
});
