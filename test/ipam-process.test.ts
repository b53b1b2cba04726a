// vnet-ipam as a runtime (or another plugin) runs it: the built executable, one process per call.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, Lab, cniEnv, type Ran } from './helpers/lab.js';

const IPAM = join(BIN_DIR, 'vnet-ipam');
const lab = new Lab();
afterAll(() => lab.cleanup());

let n = 0;
function store(subnet: string) {
  const dataDir = join(lab.dir, `store${++n}`);
  const conf = { cniVersion: '1.0.0', name: 'procnet', ipam: { type: 'vnet-ipam', ranges: [[{ subnet }]], dataDir } };
  const dir = join(dataDir, 'procnet');
  /** Address files, as host-local would list them. */
  const held = () =>
    existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.') && f !== 'lock' && !f.startsWith('last_reserved_ip')) : [];
  return { conf, dir, held };
}

/** Runs vnet-ipam directly (IPAM touches no network; no namespace needed). */
function ipam(command: string, id: string, conf: object, onSpawn?: (kill: () => void) => void): Promise<Ran> {
  return new Promise((done) => {
    const env = { ...cniEnv(command, { id, netns: '/nonexistent' }), PATH: process.env.PATH, VNET_LOG_FILE: join(lab.dir, 'ipam.log') };
    const child = spawn(IPAM, [], { env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv });
    let stdout = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.on('close', (code, signal) => {
      let json: any;
      try {
        json = JSON.parse(stdout);
      } catch {}
      done({ code: code ?? (signal ? -1 : 1), stdout, stderr: signal ?? '', json });
    });
    child.stdin.end(JSON.stringify(conf));
    onSpawn?.(() => child.kill('SIGKILL'));
  });
}

describe('concurrent ADDs never double-allocate and never time out', () => {
  it('100 ADDs in 100 processes at once: 100 distinct addresses, zero errors', async () => {
    const s = store('10.60.0.0/24');
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => ipam('ADD', `burst-${i}`, s.conf)));
    const errors = results.filter((r) => r.code !== 0);
    expect(errors.map((r) => r.stdout)).toEqual([]);
    const ips = results.map((r) => r.json.ips[0].address);
    expect(new Set(ips).size).toBe(100);
    expect(s.held().sort()).toEqual(ips.map((a) => a.split('/')[0]).sort());
  });
});

describe('ADD/DEL churn leaves exactly what is still held', () => {
  it('500 ADD/DEL cycles, 10 in parallel; every 50th is kept', async () => {
    const s = store('10.61.0.0/24');
    const kept: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < 500) {
        const i = next++;
        const add = await ipam('ADD', `churn-${i}`, s.conf);
        expect(add.code, add.stdout).toBe(0);
        if (i % 50 === 0) kept.push(add.json.ips[0].address.split('/')[0]);
        else expect((await ipam('DEL', `churn-${i}`, s.conf)).code).toBe(0);
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    expect(kept).toHaveLength(10);
    expect(s.held().sort()).toEqual(kept.sort());
    // and each file names its holder, in host-local's format
    for (const ip of kept) expect(readFileSync(join(s.dir, ip), 'utf8')).toMatch(/^churn-\d+\r\neth0$/);
    // the index holds exactly the kept attachments
    expect(readdirSync(join(s.dir, '.by-container')).length).toBe(10);
  }, 180_000); // 1,000 processes: a hang guard for a loaded machine, not a timing claim
});

describe('an ADD killed mid-way blocks nobody and leaks nothing that DEL cannot release', () => {
  it('SIGKILLed ADDs at different moments; the next ADD succeeds; DEL of the killed ones leaves the store clean', async () => {
    const s = store('10.62.0.0/24');
    // A killed holder leaves its lock directory behind, never refreshed again.
    mkdirSync(join(s.dir, '.lock'), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const killed = ipam('ADD', `killed-${i}`, s.conf, (kill) => setTimeout(kill, 5 + i * 5));
      await killed;
      const after = await ipam('ADD', `after-${i}`, s.conf);
      expect(after.code, after.stdout).toBe(0);
    }
    for (let i = 0; i < 8; i++) {
      expect((await ipam('DEL', `killed-${i}`, s.conf)).code).toBe(0);
      expect((await ipam('DEL', `after-${i}`, s.conf)).code).toBe(0);
    }
    expect(s.held()).toEqual([]);
  });
});

describe('interoperability: the reference bridge plugin with "ipam": {"type": "vnet-ipam"}', () => {
  let node = '';
  let pod = '';
  beforeAll(() => {
    node = lab.ns('node');
    pod = lab.ns('pod');
  });
  it('ADD, CHECK and DEL work, and the pod reaches the bridge gateway', async () => {
    const s = store('10.63.0.0/24');
    const conf = { cniVersion: '1.0.0', name: 'procnet', type: 'bridge', bridge: `${lab.prefix}br`, isGateway: true, ipam: s.conf.ipam };
    const env = (cmd: string) => cniEnv(cmd, { id: `${lab.prefix}-br`, netns: pod });
    const add = await lab.run({ node, bin: '/usr/lib/cni/bridge', env: env('ADD'), stdin: conf });
    expect(add.code, add.stdout).toBe(0);
    expect(add.json.ips[0]).toMatchObject({ address: '10.63.0.2/24', gateway: '10.63.0.1' });
    expect(s.held()).toEqual(['10.63.0.2']);
    expect(lab.in(pod, ['ping', '-c', '1', '-W', '2', '10.63.0.1'])).toContain('1 received');
    const check = await lab.run({ node, bin: '/usr/lib/cni/bridge', env: env('CHECK'), stdin: { ...conf, prevResult: add.json } });
    expect(check.code, check.stdout).toBe(0);
    const del = await lab.run({ node, bin: '/usr/lib/cni/bridge', env: env('DEL'), stdin: conf });
    expect(del.code, del.stdout).toBe(0);
    expect(s.held()).toEqual([]);
  });
});

describe('nothing outlives what it belonged to: the first ADD of a new boot releases the previous boot’s addresses', () => {
  const bootNow = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  it('addresses stamped with another boot id are released before the first allocation; the log says which', async () => {
    const s = store('10.63.0.0/24');
    for (const id of ['old-0', 'old-1', 'old-2']) expect((await ipam('ADD', id, s.conf)).code).toBe(0);
    expect(readFileSync(join(s.dir, '.boot'), 'utf8').trim()).toBe(bootNow());
    expect(s.held().sort()).toEqual(['10.63.0.2', '10.63.0.3', '10.63.0.4']);
    // The machine reboots: the kernel's boot id changes, the files stay.
    writeFileSync(join(s.dir, '.boot'), '00000000-0000-4000-8000-000000000000\n', { mode: 0o600 });
    const first = await ipam('ADD', 'new-0', s.conf);
    expect(first.code, first.stdout).toBe(0);
    expect(s.held()).toEqual([first.json.ips[0].address.split('/')[0]]);
    expect(readdirSync(join(s.dir, '.by-container'))).toEqual(['new-0:eth0']);
    expect(readFileSync(join(s.dir, '.boot'), 'utf8').trim()).toBe(bootNow());
    expect(readFileSync(join(lab.dir, 'ipam.log'), 'utf8')).toMatch(/a new boot since this network's addresses were handed out \(boot 00000000-0000-4000-8000-000000000000, now [0-9a-f-]{36}\): released 3 of the previous boot: 10\.63\.0\.2, 10\.63\.0\.3, 10\.63\.0\.4/);
    // a DEL of a pod of the old boot, as a runtime may send after the reboot, is still fine
    expect((await ipam('DEL', 'old-1', s.conf)).code).toBe(0);
    expect(s.held()).toHaveLength(1);
  });
  it('a store with no stamp (new, or from an older vnet-ipam) releases nothing, and is stamped', async () => {
    const s = store('10.64.0.0/24');
    expect((await ipam('ADD', 'a', s.conf)).code).toBe(0);
    rmSync(join(s.dir, '.boot'));
    expect((await ipam('ADD', 'b', s.conf)).code).toBe(0);
    expect(s.held().sort()).toEqual(['10.64.0.2', '10.64.0.3']);
    expect(readFileSync(join(s.dir, '.boot'), 'utf8').trim()).toBe(bootNow());
  });
  it('a .boot that is a symlink is refused, naming it, and nothing is released or followed', async () => {
    const s = store('10.65.0.0/24');
    expect((await ipam('ADD', 'a', s.conf)).code).toBe(0);
    const target = join(lab.dir, 'boot-target');
    writeFileSync(target, 'not-this-boot\n');
    rmSync(join(s.dir, '.boot'));
    symlinkSync(target, join(s.dir, '.boot'));
    const r = await ipam('ADD', 'b', s.conf);
    expect(r.code).toBe(1);
    expect(r.json.msg).toMatch(/\.boot is a symbolic link/);
    expect(s.held()).toEqual(['10.65.0.2']);
    expect(readFileSync(target, 'utf8')).toBe('not-this-boot\n');
  });
});
