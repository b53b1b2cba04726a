// The step log: where it goes, from the first error on, for both roles; and its rotation.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, BIN_DIR } from './helpers/lab.js';
import { LOG_MAX_BYTES } from '../src/log.js';

const dir = mkdtempSync(join(tmpdir(), 'vtlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a role with a clean environment (no VNET_LOG_FILE): the config alone says where to log. */
function call(role: 'vnet' | 'vnet-ipam', env: Record<string, string>, conf: object) {
  const r = spawnSync(join(BIN_DIR, role), [], { input: JSON.stringify(conf), encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
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
    const m = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{3})Z \[\d+\] \[vnet\] /.exec(readFileSync(file, 'utf8'));
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
    writeFileSync(file, 'old line\n');
    truncateSync(file, LOG_MAX_BYTES);
    call('vnet', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c-rot', CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR }, conf(file));
    expect(statSync(`${file}.1`).size).toBe(LOG_MAX_BYTES);
    expect(readFileSync(`${file}.1`, 'utf8').startsWith('old line\n')).toBe(true);
    expect(statSync(file).size).toBeLessThan(10_000);
    expect(readFileSync(file, 'utf8')).toMatch(/Processing DEL command .*c-rot/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
