// The step log: where it goes, from the first error on, for both roles; and its rotation.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, BIN_DIR, Lab } from './helpers/lab.js';
import { escapeControls, LOG_HEADER, LOG_MAX_BYTES } from '../src/log.js';

const dir = mkdtempSync(join(tmpdir(), 'vtlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every call runs in a node namespace of this file's (the plugin never runs in the machine's own).
const lab = new Lab();
afterAll(() => lab.cleanup());
// Made in beforeAll, not at load: a file whose tests -t filters out runs no hook, cleanup included.
let node = '';
beforeAll(() => {
  node = lab.ns('lognode');
});

/** Runs a role with a clean environment (no VNET_LOG_FILE): the config alone says where to log. */
function call(role: 'vnet' | 'vnet-ipam', env: Record<string, string>, conf: object) {
  const r = spawnSync('nsenter', [`--net=${node}`, join(BIN_DIR, role)], { input: JSON.stringify(conf), encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
  return { code: r.status, json: JSON.parse(r.stdout || '{}') };
}
const conf = (logFile: string, over: object = {}) => ({
  cniVersion: '1.0.0', name: 'logtest', type: 'vnet', logFile, ipam: { type: 'vnet-ipam', subnet: '10.9.0.0/24', dataDir: join(dir, 'ipam') }, ...over,
});

describe('errors raised before the config is applied are logged where the config says', () => {
  const cases: [string, Record<string, string>, object, RegExp][] = [
    ['an unknown CNI_ARGS key', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, CNI_ARGS: 'FOO=1' }, {}, /FOO/],
    ['a missing container ID', { CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR }, {}, /CNI_CONTAINERID/],
    ['STATUS on a 1.0.0 config', { CNI_COMMAND: 'STATUS', CNI_PATH: BIN_DIR }, {}, /STATUS/],
    ['an invalid mode (ADD)', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, CNI_NETNS: '/nonexistent' }, { mode: 'nope' }, /mode/],
  ];
  for (const [what, env, over, msg] of cases) {
    it(`${what}: the error line is in logFile`, () => {
      const file = join(dir, `${what.replace(/\W+/g, '-')}.log`);
      const r = call('vnet', env, conf(file, over));
      expect(r.code).toBe(1);
      expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`\\[vnet\\] ERROR .*${msg.source}`));
    });
  }
  it('vnet-ipam run on its own reads logFile too', () => {
    const file = join(dir, 'ipam-alone.log');
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c-ipam', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, CNI_NETNS: '/proc/self/ns/net' };
    const r = call('vnet-ipam', env, conf(file));
    expect(r.code, JSON.stringify(r.json)).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/\[vnet-ipam\] ADD done: 10\.9\.0\.\d+\/24/);
    expect(call('vnet-ipam', { ...env, CNI_COMMAND: 'DEL' }, conf(file)).code).toBe(0);
  });
  it('a logFile that is not valid is left out, and the error names it', () => {
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, CNI_NETNS: '/nonexistent', VNET_LOG_FILE: join(dir, 'fallback.log') };
    const r = call('vnet', env, conf('relative.log'));
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/logFile/) });
    expect(existsSync('relative.log')).toBe(false);
    expect(readFileSync(join(dir, 'fallback.log'), 'utf8')).toMatch(/logFile/);
  });
});

describe('each line starts with the time in UTC (marked Z), the pid and the component', () => {
  it('whatever the caller’s TZ, the time is UTC', () => {
    const file = join(dir, 'utc.log');
    const before = Date.now();
    call('vnet', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c-utc', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, TZ: 'Asia/Kolkata' }, conf(file));
    const [header, first] = readFileSync(file, 'utf8').split('\n');
    expect(`${header}\n`).toBe(LOG_HEADER);
    const m = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{3})Z \[\d+\] \[vnet\] /.exec(first!);
    expect(m).not.toBeNull();
    const [y, mo, d, h, mi, s, ms] = m!.slice(1).map(Number) as [number, number, number, number, number, number, number];
    const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
    expect(t).toBeGreaterThanOrEqual(before - 1000);
    expect(t).toBeLessThanOrEqual(Date.now() + 1000);
  });
});

describe('the log rotates past 10 MiB: one older generation is kept as <file>.1', () => {
  it('a full log becomes .1 and the new lines start a new file', () => {
    const file = join(dir, 'rotate.log');
    writeFileSync(file, `${LOG_HEADER}old line\n`, { mode: 0o600 });
    truncateSync(file, LOG_MAX_BYTES);
    call('vnet', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c-rot', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR }, conf(file));
    expect(statSync(`${file}.1`).size).toBe(LOG_MAX_BYTES);
    expect(readFileSync(`${file}.1`, 'utf8').startsWith(`${LOG_HEADER}old line\n`)).toBe(true);
    expect(readFileSync(file, 'utf8').startsWith(LOG_HEADER)).toBe(true);
    expect(statSync(file).size).toBeLessThan(10_000);
    expect(readFileSync(file, 'utf8')).toMatch(/Processing DEL command .*c-rot/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe('the log cannot be aimed: only a *.log file the plugin created, never another existing file', () => {
  /** A failing ADD (no such netns), run in the test's node namespace, logging to `logFile`. */
  function aimed(logFile: string, over: Record<string, string> = {}) {
    const env = { PATH: process.env.PATH!, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c-aim', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, CNI_NETNS: '/nonexistent', ...over };
    const r = spawnSync('nsenter', [`--net=${node}`, BIN], { input: JSON.stringify(conf(logFile)), encoding: 'utf8', env, timeout: 20_000 });
    return { code: r.status, json: JSON.parse(r.stdout || '{}'), stderr: r.stderr, error: r.error };
  }
  const victims: [string, (p: string) => void, RegExp][] = [
    ['a regular file without the vnet header', (p) => writeFileSync(p, 'root data\n', { mode: 0o600 }), /no vnet log header/],
    ['a vnet log made readable by others (mode 644)', (p) => writeFileSync(p, `${LOG_HEADER}x\n`, { mode: 0o644 }), /mode 644, not 600/],
    ['a hard link to a vnet log (two names, one file)', (p) => { writeFileSync(`${p}.orig`, `${LOG_HEADER}x\n`, { mode: 0o600 }); linkSync(`${p}.orig`, p); }, /2 links/],
    ['a directory', (p) => mkdirSync(p), /not a regular file|EISDIR/],
    ['a symlink to a vnet log', (p) => { writeFileSync(`${p}.target`, `${LOG_HEADER}x\n`, { mode: 0o600 }); symlinkSync(`${p}.target`, p); }, /ELOOP/],
    ['a FIFO (would block every verb)', (p) => execFileSync('mkfifo', ['-m', '600', p]), /not a regular file/],
    // Its creator killed between create and header: no call waits for a header that will not come.
    ['an empty log an hour old', (p) => { writeFileSync(p, '', { mode: 0o600 }); utimesSync(p, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000)); }, /it has no header line, empty or cut short since .*: remove it to log again/],
  ];
  for (const [what, make, why] of victims) {
    it(`${what}: untouched, the verb still answers, stderr says why`, () => {
      const p = join(dir, `victim-${what.replace(/\W+/g, '-')}.log`);
      make(p);
      const before = lstatSync(p);
      const content = before.isFile() ? readFileSync(p) : undefined;
      const r = aimed(p);
      expect(r.error).toBeUndefined(); // no hang
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: 3, msg: expect.stringMatching(/namespace "\/nonexistent" does not exist/) });
      expect(r.stderr).toMatch(new RegExp(`vnet: not logging to .*${why.source}`));
      expect(lstatSync(p).mtimeMs).toBe(before.mtimeMs);
      if (content) expect(readFileSync(p)).toEqual(content);
      for (const other of [`${p}.orig`, `${p}.target`]) if (existsSync(other)) expect(readFileSync(other, 'utf8')).toBe(`${LOG_HEADER}x\n`);
    });
  }
  it('a logFile not named *.log (/etc/ld.so.preload, say) is a config error and no file is made', () => {
    const p = join(dir, 'ld.so.preload');
    const r = aimed(p, { VNET_LOG_FILE: join(dir, 'aim-fallback.log') });
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/logFile: must name a file ending in \.log/) });
    expect(existsSync(p)).toBe(false);
  });
  it('a new log is created 0600 with the header first', () => {
    const p = join(dir, 'fresh', 'vnet.log');
    aimed(p);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readFileSync(p, 'utf8')).toMatch(new RegExp(`^${LOG_HEADER.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*ERROR .*nonexistent`, 's'));
  });
});

describe('outside text never forges or hides a line: every Unicode line break, C1 and bidi control escaped', () => {
  it.each([
    ['U+2028 line separator', '\u2028', '\\u2028'],
    ['U+2029 paragraph separator', '\u2029', '\\u2029'],
    ['U+0085 next line (NEL)', '\u0085', '\\x85'],
    ['U+009B C1 CSI', '\u009b', '\\x9b'],
    ['U+202E right-to-left override', '\u202e', '\\u202e'],
    ['U+2066 left-to-right isolate', '\u2066', '\\u2066'],
    ['U+000D carriage return', '\r', '\\x0d'],
  ])('%s', (_what, raw, shown) => {
    expect(escapeControls(`a${raw}b`)).toBe(`a${shown}b`);
    const file = join(dir, `esc-${raw.charCodeAt(0)}.log`);
    // an unknown CNI_ARGS key is quoted in the error line
    call('vnet', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c-esc', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, CNI_ARGS: `FOO${raw}X=1` }, conf(file));
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(`FOO${shown}X`);
    expect(text).not.toContain(raw);
  });
});

describe('fields other plugins know and vnet does not implement: one warning line at ADD, never an error', () => {
  it('names each such field and its reason, not the fields nobody knows, and not their values', () => {
    const file = join(dir, 'unimplemented.log');
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c-unimpl', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, CNI_NETNS: '/nonexistent' };
    // The ADD fails at the namespace (nothing is changed); the warning is logged before.
    const r = call('vnet', env, conf(file, { addIf: 'eth0\u001b[31m', macspoofchk: true, fooBar: 1, vlan: 100 }));
    expect(r.json.msg).toMatch(/nonexistent/);
    const warn = readFileSync(file, 'utf8').split('\n').filter((l) => / WARN /.test(l));
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatch(/config fields other plugins know and vnet does not implement: addIf: not implemented by vnet, ignored: kubenet.*; macspoofchk: .*; vlan: /);
    expect(warn[0]).not.toMatch(/fooBar|\u001b|\[31m/);
  });
});

describe('a call that finds the log just created by another, its header not yet written, waits for it and logs', () => {
  it('the log exists empty, its creator paused two seconds between create and header (a loaded node, a VM under emulation, as CI saw once): the call holds it open, waits, and logs its line', async () => {
    const file = join(dir, 'paused.log');
    closeSync(openSync(file, 'wx', 0o600));
    // The config comes from a file, not a pipe: what is written to a pipe waits for the event loop,
    // which the loop below does not let run, and the call would not even start before the header.
    const confFile = join(dir, 'paused.json');
    writeFileSync(confFile, JSON.stringify(conf(file)));
    const stdin = openSync(confFile, 'r');
    const env = { PATH: process.env.PATH!, CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c-race', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR };
    const child = spawn('nsenter', [`--net=${node}`, join(BIN_DIR, 'vnet')], { env, stdio: [stdin, 'pipe', 'pipe'] });
    closeSync(stdin);
    let stderr = '';
    child.stderr!.on('data', (b) => (stderr += b));
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    const holds = () => {
      try {
        return readdirSync(`/proc/${child.pid}/fd`).some((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`) === file);
      } catch {
        return false;
      }
    };
    // A tight loop, not the event loop: the moment the call holds the empty log open (it is then
    // waiting for the header), the "creator" pauses two seconds, then writes the header.
    const until = Date.now() + 20_000;
    while (Date.now() < until && !holds());
    expect(holds(), 'the call opened the empty log and waits on it').toBe(true);
    await new Promise((r) => setTimeout(r, 2000));
    appendFileSync(file, LOG_HEADER);
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/not logging/);
    expect(readFileSync(file, 'utf8')).toMatch(/Processing DEL command with args \{ContainerID:c-race /);
  });
});
