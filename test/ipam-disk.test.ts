// vnet-ipam runs as root and treats everything under dataDir as hostile: it follows no link
// planted there, writes nothing outside the network directory, creates its files private
// whatever the umask, and leaves no temp file behind. Each test works in its own temp directory:
// `data/` is the dataDir, `victim/` what a planted link points at.
import fs, { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { spawnSync } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Code } from '../src/errors.js';
import { ipamEnv, rejects, useTempDataDir } from './helpers/ipam.js';
import { LOCK_DIR, withLock } from '../src/ipam/lock.js';
import { listAllocations, runIpam } from '../src/ipam/plugin.js';
import { Store } from '../src/ipam/store.js';

let base = '';
useTempDataDir('vnet-ipam-disk-', (d) => (base = d));

const dataDir = () => join(base, 'data');
const netDir = (net = 'net1') => join(dataDir(), net);
const tmpDir = (net = 'net1') => join(netDir(net), '.tmp');
const victim = () => join(base, 'victim');

const conf = (extra: Record<string, unknown> = {}, net = 'net1') => ({
  cniVersion: '1.1.0',
  name: net,
  ipam: { type: 'vnet-ipam', dataDir: dataDir(), ranges: [[{ subnet: '10.0.0.0/29' }], [{ subnet: 'fd00::/125' }]] },
  ...extra,
});
const run = (command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS', id = 'c1', extra: Record<string, unknown> = {}, net = 'net1') =>
  runIpam(ipamEnv(command, id), conf(extra, net));
const gcAll = { 'cni.dev/valid-attachments': [] };
const held = async (net = 'net1') => (await listAllocations(dataDir(), net)).map((a) => `${a.containerId} ${a.ip}`);

/** A victim directory holding one precious file. */
function setVictim(): void {
  mkdirSync(victim());
  writeFileSync(join(victim(), 'keep'), 'precious');
}
const victimFiles = () => (existsSync(victim()) ? readdirSync(victim()).sort() : []);
/** Plants a symlink named `name` in the network directory. */
function plant(name: string, target: string): void {
  mkdirSync(netDir(), { recursive: true });
  symlinkSync(target, join(netDir(), name));
}
/** The call fails with code 5 (or `code`), naming `path` and saying it is a symbolic link. */
async function refused(p: Promise<unknown>, path: string, code: number = Code.io): Promise<void> {
  const err = await rejects(p);
  expect(err.code, err.message).toBe(code);
  expect(err.message).toContain(path);
  expect(err.message).toMatch(/symbolic link/);
}

describe('the store never follows a symlink under dataDir', () => {
  it('the network directory a symlink: every verb and the listing refuse it, naming it; nothing is written in its target', async () => {
    setVictim();
    mkdirSync(dataDir());
    symlinkSync(victim(), netDir());
    await refused(run('ADD'), netDir());
    await refused(run('DEL'), netDir());
    await refused(run('CHECK'), netDir());
    await refused(run('GC', 'c1', gcAll), netDir());
    await refused(run('STATUS'), netDir(), Code.notAvailable);
    expect(() => listAllocations(dataDir(), 'net1')).toThrow(/symbolic link/);
    expect(victimFiles()).toEqual(['keep']);
  });

  it('.by-container a symlink: ADD and DEL refuse it and GC reports it, naming it; the target directory is untouched', async () => {
    setVictim();
    plant('.by-container', victim());
    const link = join(netDir(), '.by-container');
    await refused(run('ADD'), link);
    await refused(run('DEL'), link);
    await refused(run('GC', 'c1', gcAll), link);
    expect(victimFiles()).toEqual(['keep']);
    expect(readFileSync(join(victim(), 'keep'), 'utf8')).toBe('precious');
    expect(await held()).toEqual([]);
    expect(readdirSync(tmpDir())).toEqual([]);
  });

  it('a dangling lock symlink: STATUS and ADD refuse it, naming it; its target is never created', async () => {
    setVictim();
    const link = join(netDir(), 'lock');
    plant('lock', join(victim(), 'created'));
    await refused(run('STATUS'), link, Code.notAvailable);
    await refused(run('ADD'), link);
    expect(victimFiles()).toEqual(['keep']);
  });

  const lockCases: [string, () => void][] = [
    ['a symlink to a directory', () => plant(LOCK_DIR, victim())],
    ['a dangling symlink', () => plant(LOCK_DIR, join(victim(), 'nothing'))],
    ['a symlink to a file', () => plant(LOCK_DIR, join(victim(), 'keep'))],
  ];
  for (const [what, make] of lockCases) {
    it(`.lock ${what}: ADD, DEL and GC fail at once naming it, not "try again" after 30 s`, async () => {
      setVictim();
      await run('ADD', 'before'); // a network directory in use
      make();
      const lock = join(netDir(), LOCK_DIR);
      const t0 = Date.now();
      await refused(run('ADD'), lock);
      await refused(run('DEL', 'before'), lock);
      await refused(run('GC', 'c1', gcAll), lock);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(victimFiles()).toEqual(['keep']);
      expect(await held()).toEqual(['before 10.0.0.2', 'before fd00::2']);
    });
  }

  it('.lock a regular file: withLock fails at once naming it', async () => {
    mkdirSync(netDir(), { recursive: true });
    writeFileSync(join(netDir(), LOCK_DIR), 'x');
    let ran = false;
    const t0 = Date.now();
    const err = await rejects(withLock(netDir(), () => (ran = true)));
    expect(Date.now() - t0).toBeLessThan(1000); // not after the 2 s stale time
    expect(err.code).toBe(Code.io);
    expect(err.message).toContain(join(netDir(), LOCK_DIR));
    expect(err.message).toMatch(/not a directory/);
    expect(ran).toBe(false);
  });

  it('an address file planted as a symlink is skipped by ADD, refused when requested, reported by GC; its target is never read or written', async () => {
    setVictim();
    plant('10.0.0.2', join(victim(), 'keep'));
    const link = join(netDir(), '10.0.0.2');
    expect((await run('ADD'))!.ips[0]!.address).toBe('10.0.0.3/29');
    await refused(run('ADD', 'c2', { runtimeConfig: { ips: ['10.0.0.2'] } }), link);
    await refused(run('GC', 'c1', gcAll), link);
    expect(await held()).toEqual([]); // the rest was freed
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(victim(), 'keep'), 'utf8')).toBe('precious');
    expect(victimFiles()).toEqual(['keep']);
  });

  it('last_reserved_ip.N planted as a symlink: ADD refuses it, naming it; its target is unchanged', async () => {
    mkdirSync(victim());
    writeFileSync(join(victim(), 'cursor'), '10.0.0.4');
    plant('last_reserved_ip.0', join(victim(), 'cursor'));
    await refused(run('ADD'), join(netDir(), 'last_reserved_ip.0'));
    expect(readFileSync(join(victim(), 'cursor'), 'utf8')).toBe('10.0.0.4');
    expect(await held()).toEqual([]);
  });

  it('an index entry planted as a symlink: DEL refuses it, naming it; GC removes the link, not its target', async () => {
    await run('ADD', 'c1');
    mkdirSync(victim());
    const target = join(victim(), 'entry');
    writeFileSync(target, JSON.stringify({ containerID: 'c1', ifname: 'eth0', ips: ['10.0.0.2', 'fd00::2'] }));
    const entry = join(netDir(), '.by-container', 'c1:eth0');
    fs.rmSync(entry);
    symlinkSync(target, entry);
    await refused(run('DEL', 'c1'), entry);
    await run('GC', 'c1', gcAll);
    expect(lstatSync(entry, { throwIfNoEntry: false })).toBeUndefined();
    expect(readdirSync(victim())).toEqual(['entry']);
  });

  it('.tmp a symlink: ADD, DEL and GC refuse it, naming it; nothing is written in its target', async () => {
    setVictim();
    await run('ADD', 'before');
    fs.rmSync(tmpDir(), { recursive: true });
    symlinkSync(victim(), tmpDir());
    await refused(run('ADD'), tmpDir());
    await refused(run('DEL', 'before'), tmpDir());
    await refused(run('GC', 'c1', gcAll), tmpDir());
    expect(victimFiles()).toEqual(['keep']);
  });
});

describe('vnet state (listAllocations) never reads through a symlink', () => {
  it('a symlinked address file is skipped', async () => {
    await run('ADD', 'c1');
    mkdirSync(victim());
    writeFileSync(join(victim(), 'evil'), 'evil\r\neth0');
    plant('10.0.0.5', join(victim(), 'evil'));
    expect(await held()).toEqual(['c1 10.0.0.2', 'c1 fd00::2']);
  });
});

describe('state files are 0600 and directories 0700, whatever the umask', () => {
  /** Mode of every entry under the network directory (and of the directory itself, as "."). */
  function modes(dir: string): Record<string, string> {
    const out: Record<string, string> = { '.': (lstatSync(dir).mode & 0o777).toString(8) };
    for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) out[f] = (lstatSync(join(dir, f)).mode & 0o777).toString(8);
    return out;
  }

  for (const mask of [0, 0o022]) {
    it(`under umask ${mask.toString(8).padStart(3, '0')}: the network directory, .by-container, .tmp, .lock, address files, index, cursors, lock and temps`, async () => {
      const old = process.umask(mask);
      try {
        await run('ADD', 'c1');
        // A host-local directory, indexed by our first DEL.
        mkdirSync(netDir('net2'), { recursive: true, mode: 0o755 });
        writeFileSync(join(netDir('net2'), '10.0.0.2'), 'old\r\neth0', { mode: 0o644 });
        await run('DEL', 'other', {}, 'net2');
        const lockMode = await withLock(netDir(), () => lstatSync(join(netDir(), LOCK_DIR)).mode & 0o777);
        const tmp = Store.forNetwork(dataDir(), 'net1').prepare({ containerId: 'c9', ifname: 'eth0' });
        const tmpMode = lstatSync(tmp).mode & 0o777;
        fs.rmSync(tmp);

        expect(modes(netDir())).toEqual({
          '.': '700',
          '.boot': '600',
          '.by-container': '700',
          '.by-container/c1:eth0': '600',
          '.tmp': '700',
          '10.0.0.2': '600',
          'fd00::2': '600',
          'last_reserved_ip.0': '600',
          'last_reserved_ip.1': '600',
          lock: '600',
        });
        expect(lockMode.toString(8)).toBe('700');
        expect(tmpMode.toString(8)).toBe('600');
        const net2 = modes(netDir('net2'));
        expect([net2['.by-container'], net2['.by-container/old:eth0'], net2['.tmp']]).toEqual(['700', '600', '700']);
      } finally {
        process.umask(old);
      }
    });
  }
});

/** Makes node's `fs[name]` throw ENOSPC on its `nth` call from now on (for store and lock code too); returns the undo. */
function failNth(name: 'writeSync' | 'closeSync', nth: number): () => void {
  const real = fs[name] as (...args: unknown[]) => unknown;
  let n = 0;
  (fs as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    if (++n === nth) throw Object.assign(new Error(`ENOSPC: no space left on device, ${name}`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    return real(...args);
  };
  syncBuiltinESMExports();
  return () => {
    (fs as unknown as Record<string, unknown>)[name] = real;
    syncBuiltinESMExports();
  };
}

/** A pid that is certainly dead: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

describe('temp files live only in <network>/.tmp/ and never leak', () => {
  it('a prepared address file is .tmp/<pid>-<random>, inside the network directory', () => {
    const tmp = Store.forNetwork(dataDir(), 'net1').prepare({ containerId: 'a', ifname: 'eth0' });
    expect(dirname(tmp)).toBe(tmpDir());
    expect(basename(tmp)).toMatch(new RegExp(`^${process.pid}-[0-9a-f]+$`));
    expect(readFileSync(tmp, 'utf8')).toBe('a\r\neth0');
  });

  // A dual-stack ADD on a fresh directory writes 5 files (2 address temps, the index, 2 cursors):
  // fail each in turn.
  const failures: ['writeSync' | 'closeSync', number][] = [1, 2, 3, 4, 5].map((n) => ['writeSync', n] as ['writeSync', number]);
  for (const [call, nth] of failures) {
    it(`ENOSPC in the ${call} #${nth} of an ADD: the ADD fails with code 5, leaving no temp and nothing held`, async () => {
      const net = `net-${call}-${nth}`;
      const undo = failNth(call, nth);
      let err;
      try {
        err = await rejects(run('ADD', 'c1', {}, net));
      } finally {
        undo();
      }
      expect(err.code).toBe(Code.io);
      expect(err.message).toMatch(/ENOSPC/);
      expect(readdirSync(tmpDir(net))).toEqual([]);
      expect(await held(net)).toEqual([]);
      const index = join(netDir(net), '.by-container');
      expect(existsSync(index) ? readdirSync(index) : []).toEqual([]);
      // And the next ADD works.
      expect((await run('ADD', 'c1', {}, net))!.ips).toHaveLength(2);
    });
  }

  for (const verb of ['ADD', 'DEL', 'GC'] as const) {
    it(`${verb} sweeps .tmp/ of temps whose writer is dead or that are older than 10 minutes, and keeps the rest`, async () => {
      await run('ADD', 'before');
      const dead = deadPid();
      const old = new Date(Date.now() - 3600_000);
      const put = (name: string, age?: Date) => {
        writeFileSync(join(tmpDir(), name), 'x\r\neth0');
        if (age) utimesSync(join(tmpDir(), name), age, age);
      };
      put(`${dead}-0a1b2c`); // a killed ADD's address temp
      mkdirSync(join(tmpDir(), `${dead}-0d0e0f`)); // a killed indexing
      writeFileSync(join(tmpDir(), `${dead}-0d0e0f`, 'x:eth0'), '{}');
      put('1-old', old); // pid 1 lives, but no temp lives for 10 minutes
      put('junk-old', old);
      put('1-fresh'); // a live writer's
      put(`${process.pid}-fresh`); // ours
      put('junk'); // no pid: kept until it is old
      await run(verb, verb === 'ADD' ? 'other' : 'before', verb === 'GC' ? { 'cni.dev/valid-attachments': [{ containerID: 'before', ifname: 'eth0' }] } : {});
      expect(readdirSync(tmpDir()).sort()).toEqual(['1-fresh', `${process.pid}-fresh`, 'junk'].sort());
    });
  }
});
