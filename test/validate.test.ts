// `vnet validate`, the messages of every config parse, and the CLI's usage errors, all through
// the built binary. The broken corpus is test/conflists/broken/, its expected messages, per rule,
// in test/conflists/expected.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { describeIssue, describeIssues, showValue } from '../src/issue.js';
import { netConfSchema, parseNetConf } from '../src/config/netconf.js';
import { overlappingPair } from '../src/net/address.js';
import { BIN, BIN_DIR, Lab } from './helpers/lab.js';

const CORPUS = 'test/conflists';
const expected = JSON.parse(readFileSync(join(CORPUS, 'expected.json'), 'utf8')) as {
  broken: Record<string, Record<string, string[]>>;
  ok: Record<string, string>;
};

const tmp = mkdtempSync(join(tmpdir(), 'vnet-validate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// PATH points nowhere and the log goes to a scratch file: validate runs nothing and logs nothing.
const env = { PATH: '/nonexistent', VNET_LOG_FILE: join(tmp, 'vnet.log') };
const vnet = (args: string[]) => spawnSync(BIN, args, { encoding: 'utf8', env });
const lines = (text: string) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

describe('every conflist in conf/ validates ok', () => {
  // What conf/ ships (conf/seeds/ has its own test, test/seeds.test.ts), and what validate says of each.
  const SHIPPED: Record<string, string> = {
    '10-azure-bridge.conflist': '2 plugins, vnet at plugins[0]',
    '10-azure-dual-stack.conflist': '2 plugins, vnet at plugins[0]',
    '10-azure-overlay.conflist': '2 plugins, vnet at plugins[0]',
    '10-azure-transparent.conflist': '2 plugins, vnet at plugins[0]',
    '10-kubenet.conflist': '2 plugins, vnet at plugins[0]',
  };
  it('conf/ holds exactly these network configs', () => {
    expect(readdirSync('conf').filter((f) => /\.conf(list)?$/.test(f)).sort()).toEqual(Object.keys(SHIPPED).sort());
  });
  for (const [f, summary] of Object.entries(SHIPPED)) {
    it(f, () => {
      const file = join('conf', f);
      const r = vnet(['validate', file]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${file}: ok (${summary})\n`);
    });
  }
  it('all of them at once: one line each, exit 0', () => {
    const files = Object.keys(SHIPPED).map((f) => join('conf', f));
    const r = vnet(['validate', ...files]);
    expect(r.status).toBe(0);
    expect(lines(r.stdout)).toEqual(files.map((f) => `${f}: ok (${SHIPPED[f.slice('conf/'.length)]})`));
  });
});

describe('the good corpus validates ok, saying what vnet checked', () => {
  for (const [f, summary] of Object.entries(expected.ok)) {
    it(f, () => {
      const file = join(CORPUS, 'ok', f);
      const r = vnet(['validate', file]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${file}: ok (${summary})\n`);
    });
  }
  it('every file in ok/ has its summary in expected.json', () => {
    expect(readdirSync(join(CORPUS, 'ok')).sort()).toEqual(Object.keys(expected.ok).sort());
  });
});

// One describe per rule, named after it: each broken file, its exact messages, in order.
for (const [rule, files] of Object.entries(expected.broken)) {
  describe(rule, () => {
    for (const [f, messages] of Object.entries(files)) {
      it(f, () => {
        const file = join(CORPUS, 'broken', f);
        const r = vnet(['validate', file]);
        expect(lines(r.stderr)).toEqual(messages.map((m) => `${file}: ${m}`));
        expect(r.stdout).toBe('');
        expect(r.status).toBe(1);
      });
    }
  });
}

describe('the broken corpus is all covered', () => {
  const listed = Object.values(expected.broken).flatMap((files) => Object.keys(files));
  it('every file in broken/ is listed once in expected.json, and there are at least 15', () => {
    expect(listed.length).toBe(new Set(listed).size);
    expect(readdirSync(join(CORPUS, 'broken')).sort()).toEqual([...listed].sort());
    expect(listed.length).toBeGreaterThanOrEqual(15);
  });
  it('each problem is one line of stderr, of printable text', () => {
    for (const f of listed) {
      const r = vnet(['validate', join(CORPUS, 'broken', f)]);
      // eslint-disable-next-line no-control-regex
      expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028-\u202e]/);
    }
  });
});

describe('several files: one line each, exit 1 when any is invalid', () => {
  it('ok lines on stdout, problems on stderr', () => {
    const good = 'conf/10-kubenet.conflist';
    const bad = join(CORPUS, 'broken', 'mode-enum.conflist');
    const r = vnet(['validate', good, bad]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${good}: ok (2 plugins, vnet at plugins[0])\n`);
    expect(r.stderr).toBe(`${bad}: plugins[0].mode: must be one of transparent, bridge (got "brige")\n`);
  });
  it('all valid: exit 0', () => {
    const r = vnet(['validate', 'conf/10-kubenet.conflist', join(CORPUS, 'ok', 'single.conf')]);
    expect(r.status).toBe(0);
    expect(lines(r.stdout)).toHaveLength(2);
  });
});

describe('a file that cannot be read is invalid (exit 1), named with the reason', () => {
  it('a missing file', () => {
    const file = join(tmp, 'nope.conflist');
    const r = vnet(['validate', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`${file}: cannot read: ENOENT (no such file)\n`);
  });
  it('a directory', () => {
    const r = vnet(['validate', tmp]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`${tmp}: cannot read: a directory, not a file\n`);
  });
  it('a file name with a newline is escaped', () => {
    const file = join(tmp, 'a\nb.conflist');
    writeFileSync(file, '{}');
    const r = vnet(['validate', file]);
    expect(r.status).toBe(1);
    expect(lines(r.stderr).every((l) => l.startsWith(`${tmp}/a\\x0ab.conflist: `))).toBe(true);
  });
});

describe('the list gives each plugin its name and cniVersion, as libcni does', () => {
  it("a plugin's own bad name or version does not count: the list's replace them", () => {
    const file = join(tmp, 'own.conflist');
    const list = JSON.parse(readFileSync('conf/10-kubenet.conflist', 'utf8'));
    Object.assign(list.plugins[0], { name: 'bad name', cniVersion: '9.9.9' });
    writeFileSync(file, JSON.stringify(list));
    const r = vnet(['validate', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  it('a bad list name is reported once, and the plugins are still checked', () => {
    const file = join(tmp, 'both.conflist');
    const list = JSON.parse(readFileSync('conf/10-kubenet.conflist', 'utf8'));
    Object.assign(list, { name: '../etc', cniVersion: '0.0.1' });
    list.plugins[0].mode = 'kubenet';
    writeFileSync(file, JSON.stringify(list));
    expect(lines(vnet(['validate', file]).stderr)).toEqual([
      `${file}: cniVersion: must be one of 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0 (got "0.0.1")`,
      `${file}: name: invalid network name: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ (got "../etc")`,
      `${file}: plugins[0].mode: must be one of transparent, bridge (got "kubenet")`,
    ]);
  });
});

// ---- the messages of every config parse ----

/** The CNI error the plugin answers for a config, parsed before anything else happens. */
function pluginError(conf: object, role: 'vnet' | 'vnet-ipam' = 'vnet'): { code: number; msg: string } {
  const r = spawnSync(join(BIN_DIR, role), [], {
    encoding: 'utf8',
    input: JSON.stringify(conf),
    env: { ...env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' },
  });
  expect(r.status).toBe(1);
  return JSON.parse(r.stdout);
}
const conf = (over: object) => ({ cniVersion: '1.0.0', name: 'n', type: 'vnet', ipam: { type: 'vnet-ipam', subnet: '10.9.0.0/24' }, ...over });

describe('an enum error says the allowed values and what was given', () => {
  it('ADD: mode', () => {
    expect(pluginError(conf({ mode: 'brige' }))).toEqual({
      cniVersion: '1.0.0',
      code: 7,
      msg: 'invalid network config: mode: must be one of transparent, bridge (got "brige")',
    });
  });
  it('ADD: logLevel, a number given', () => {
    expect(pluginError(conf({ logLevel: 3 })).msg).toBe('invalid network config: logLevel: must be one of debug, info, warn, error, off (got 3)');
  });
  it('a single allowed value, and a missing one', () => {
    const s = z.object({ kind: z.literal('vnet'), version: z.enum(['1.0.0', '1.1.0']) });
    expect(describeIssues(s, { kind: 'x' })).toEqual(['kind: must be vnet (got "x")', 'version: missing (one of 1.0.0, 1.1.0)']);
  });
});

describe('a number range error says the limits and what was given', () => {
  it('ADD: mtu above the range', () => {
    expect(pluginError(conf({ mtu: 65536 })).msg).toBe('invalid network config: mtu: must be between 68 and 65535 (got 65536)');
  });
  it('ADD: mtu below the range', () => {
    expect(pluginError(conf({ mtu: 67 })).msg).toBe('invalid network config: mtu: must be between 68 and 65535 (got 67)');
  });
  it('mtu 0 is the reference plugins’ "not set" (calico’s conflist has it), not an error; -1 and "0" are', () => {
    expect(parseNetConf(JSON.stringify(conf({ mtu: 0 })), 'ADD').mtu).toBeUndefined();
    expect(pluginError(conf({ mtu: -1 })).msg).toBe('invalid network config: mtu: must be between 68 and 65535 (got -1)');
    expect(pluginError(conf({ mtu: '0' })).msg).toBe('invalid network config: mtu: must be an integer (got "0")');
  });
  it('without the schema (a field parsed on its own), the limit that was broken', () => {
    const field = netConfSchema.shape.mtu;
    const r = field.safeParse(70000);
    expect(r.success).toBe(false);
    expect(describeIssue(r.error!.issues[0]!, 70000, ['mtu'])).toBe('mtu: must be at most 65535 (got 70000)');
  });
  it('one-sided and exclusive limits; sizes of strings and arrays', () => {
    const s = z.object({
      a: z.number().check(z.gt(0)),
      b: z.number().check(z.gte(1), z.lt(10)),
      c: z.string().check(z.maxLength(3)),
      d: z.array(z.string()).check(z.minLength(2)),
      e: z.array(z.string()).check(z.minLength(1)),
    });
    expect(describeIssues(s, { a: 0, b: 10, c: 'abcd', d: ['x'], e: [] })).toEqual([
      'a: must be greater than 0 (got 0)',
      'b: must be at least 1 and less than 10 (got 10)',
      'c: must have at most 3 characters (got 4)',
      'd: must have at least 2 items (got 1)',
      'e: must not be empty',
    ]);
  });
});

describe('a type error says the expected type and what was given', () => {
  it('ADD: a boolean given as text', () => {
    expect(pluginError(conf({ hairpinMode: 'yes' })).msg).toBe('invalid network config: hairpinMode: must be true or false (got "yes")');
  });
  it('ADD: an integer given as text, and as a fraction', () => {
    expect(pluginError(conf({ mtu: '1500' })).msg).toBe('invalid network config: mtu: must be an integer (got "1500")');
    expect(pluginError(conf({ mtu: 1500.5 })).msg).toBe('invalid network config: mtu: must be an integer (got 1500.5)');
  });
  it('ADD: an array given as a string', () => {
    expect(pluginError(conf({ ipsToRouteViaHost: '169.254.20.10' })).msg).toBe(
      'invalid network config: ipsToRouteViaHost: must be an array (got "169.254.20.10")',
    );
  });
  it('vnet-ipam ADD: a route mtu given as text', () => {
    const c = conf({ type: 'vnet-ipam', ipam: { type: 'vnet-ipam', subnet: '10.9.0.0/24', routes: [{ dst: '0.0.0.0/0', mtu: '1500' }] } });
    expect(pluginError(c, 'vnet-ipam').msg).toBe('ipam.routes[0].mtu: must be a number (got "1500")');
  });
  it('unions, unknown fields, long and hostile values', () => {
    const s = z.strictObject({ u: z.union([z.string(), z.number()]), o: z.object({ x: z.string() }) });
    expect(describeIssues(s, { u: true, o: [1, 2, 3], extra: 1 })).toEqual([
      'u: must be a string or a number (got true)',
      'o: must be an object (got [1,2,3])',
      'config: unknown field "extra"',
    ]);
    expect(showValue('x'.repeat(100))).toBe(`"${'x'.repeat(64)}…"`);
    expect(showValue('a\u202eb\u0085c\n')).toBe('"a\\u202eb\\u0085c\\n"');
    expect(showValue({ a: 'x'.repeat(100) })).toBe('an object');
    expect(showValue(Array(100).fill(1))).toBe('an array of 100');
  });
  it('missing stays "missing"', () => {
    expect(pluginError({ cniVersion: '1.0.0', name: 'n', type: 'vnet-ipam', ipam: { ranges: [[{ gateway: '10.0.0.1' }]] } }, 'vnet-ipam').msg).toBe(
      'ipam.ranges[0][0].subnet: missing',
    );
  });
});

// ---- usage ----

describe('bad usage exits 2, everywhere', () => {
  const conflist = 'conf/10-azure-transparent.conflist';
  const cases: [string, string[], RegExp][] = [
    ['validate without a file', ['validate'], /^vnet validate: name the file to check/],
    ['validate with an unknown option', ['validate', '--strict', conflist], /^vnet validate: unknown option '--strict'\n/],
    ['explain with an unknown option', ['explain', '--conf', conflist, '--container-id', 'c1', '--netns', '/x', '--bogus'], /^vnet explain: unknown option '--bogus'\n/],
    ['explain with an option missing its value', ['explain', '--conf'], /^vnet explain: option '--conf <value>' argument missing\n/],
    ['explain with a stray argument', ['explain', 'extra'], /^vnet explain: unexpected argument 'extra'\n/],
    ['state with an unknown option', ['state', '--bogus'], /^vnet state: .*--bogus/],
    ['version with an argument', ['version', 'x'], /^vnet version: takes no arguments \(got "x"\)\n/],
    ['help for no such command', ['help', 'nope'], /^vnet help: no command "nope"/],
    ['an unknown command', ['frobnicate'], /^vnet: unknown command "frobnicate"\n/],
  ];
  for (const [what, args, err] of cases) {
    it(what, () => {
      const r = vnet(args);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(err);
      expect(r.status).toBe(2);
    });
  }
  it('an option name with a newline is shown escaped', () => {
    const r = vnet(['explain', '--a\nb']);
    expect(r.status).toBe(2);
    expect(lines(r.stderr)[0]).toBe("vnet explain: unknown option '--a\\x0ab'");
  });
  it('COMMAND --help and help COMMAND print the help, exit 0', () => {
    for (const args of [['validate', '--help'], ['explain', '-h'], ['help', 'validate']]) {
      const r = vnet(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('vnet validate FILE…');
    }
  });
  it('the help documents the exit codes', () => {
    expect(vnet(['help']).stdout).toContain('2 bad usage');
  });
});

describe('explain names its flags, not the variables they stand for', () => {
  const base = ['explain', '--conf', 'conf/10-azure-transparent.conflist', '--netns', '/var/run/netns/pod-a'];
  it('--ifname', () => {
    const r = vnet([...base, '--container-id', 'c1', '--ifname', 'eth0\nx']);
    expect(r.status).toBe(2);
    expect(lines(r.stderr)[0]).toBe('vnet explain: invalid --ifname "eth0\\nx": must not contain whitespace');
    expect(r.stderr).not.toContain('CNI_IFNAME');
    const long = vnet([...base, '--container-id', 'c1', '--ifname', 'a'.repeat(16)]);
    expect(long.status).toBe(2);
    expect(long.stderr).toContain(`invalid --ifname "${'a'.repeat(16)}": longer than 15 bytes`);
  });
  it('--container-id', () => {
    const r = vnet([...base, '--container-id', '../etc']);
    expect(r.status).toBe(2);
    expect(lines(r.stderr)[0]).toBe('vnet explain: invalid --container-id "../etc": must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$');
    expect(r.stderr).not.toContain('CNI_CONTAINERID');
  });
});

describe('the CLI reads only regular files of sane size: validate, state --conf and explain --conf', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());
  let node = '';
  beforeAll(() => {
    node = lab.ns('cli');
  });
  const fifo = join(tmp, 'fifo.conflist');
  execFileSync('mkfifo', [fifo]);
  const big = join(tmp, 'big.conflist');
  writeFileSync(big, `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"vnet","pad":"${'x'.repeat(2 * 1024 * 1024)}"}]}`);
  const cases: [string, string, RegExp][] = [
    ['/dev/zero (endless)', '/dev/zero', /not a regular file \(a device, FIFO or socket\)/],
    ['a FIFO (would block)', fifo, /not a regular file \(a device, FIFO or socket\)/],
    ['a directory', tmp, /a directory, not a file/],
    ['a 2 MiB file', big, /\d+ bytes, more than a config file's 1048576/],
  ];
  const run = (args: string[]) => spawnSync('/usr/bin/nsenter', [`--net=${node}`, BIN, ...args], { encoding: 'utf8', env, timeout: 20_000 });
  for (const [what, file, why] of cases) {
    it(`${what}: refused at once, naming why`, () => {
      const v = run(['validate', file]);
      expect(v.error).toBeUndefined();
      expect(v.stderr).toMatch(why);
      expect(v.status).toBe(1);
      for (const args of [['state', '--conf', file], ['explain', '--conf', file, '--container-id', 'c1', '--netns', '/proc/self/ns/net']]) {
        const r = run(args);
        expect(r.error).toBeUndefined();
        expect(r.stderr).toMatch(new RegExp(`cannot read .*: ${why.source}`));
        expect(r.status).toBe(2);
      }
    });
  }
});

describe('overlapping ipMasqExclude entries are refused where the config is read (an nftables interval set cannot hold both)', () => {
  /** The reference answer: every pair compared (quadratic, for small lists only). */
  function bruteForce(list: string[]): boolean {
    const span = (t: string) => {
      const [ip, len] = t.split('/') as [string, string];
      const v6 = ip.includes(':');
      const bits = v6 ? 128 : 32;
      const value = v6 ? BigInt(`0x${ip.split(':').map((g) => g.padStart(4, '0')).join('')}`) : ip.split('.').reduce((a, o) => (a << 8n) | BigInt(o), 0n);
      const host = (1n << BigInt(bits - Number(len))) - 1n;
      return { v6, lo: value & ~host, hi: (value & ~host) | host };
    };
    const s = list.map(span);
    return s.some((a, i) => s.some((b, j) => i < j && a.v6 === b.v6 && a.lo <= b.hi && b.lo <= a.hi));
  }
  it('agrees with every pair compared, over 2,000 random lists of both families', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let k = 0; k < 2000; k++) {
      const list = Array.from({ length: 1 + rnd(6) }, () =>
        rnd(3) === 0 ? `fd00:0:0:${rnd(4).toString(16)}:0:0:0:0/${48 + rnd(17)}` : `10.${rnd(4)}.${rnd(4) * 64}.0/${14 + rnd(13)}`,
      );
      expect(overlappingPair(list) !== undefined, JSON.stringify(list)).toBe(bruteForce(list));
    }
  });
  it('names the two entries, in the order of the list', () => {
    expect(overlappingPair(['192.168.0.0/24', '10.0.0.0/8', '10.1.0.0/16'])).toEqual(['10.0.0.0/8', '10.1.0.0/16']);
    expect(overlappingPair(['10.1.0.0/16', '192.168.0.0/24', '10.0.0.0/8'])).toEqual(['10.1.0.0/16', '10.0.0.0/8']);
    expect(overlappingPair(['10.0.0.0/8', 'fd00::/8'])).toBeUndefined();
  });
  it('a list of 50,000 disjoint entries is checked in one pass (sorted), not pair by pair', () => {
    const list = Array.from({ length: 50_000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    expect(overlappingPair(list)).toBeUndefined();
    expect(overlappingPair([...list, '10.100.0.0/16'])).toEqual(['10.100.0.0/24', '10.100.0.0/16']);
  });
  it('ADD refuses it with code 7 before anything runs, as validate does', () => {
    const lab = new Lab();
    const node = lab.ns('ovl');
    const r = spawnSync('/usr/bin/nsenter', [`--net=${node}`, BIN], {
      encoding: 'utf8',
      env: { ...env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '/nonexistent', CNI_PATH: BIN_DIR },
      input: JSON.stringify({ cniVersion: '1.0.0', name: 'k', type: 'vnet', ipMasq: true, ipMasqExclude: ['10.0.0.0/8', '10.244.0.0/16'], ipam: { type: 'vnet-ipam', subnet: '10.244.0.0/24' } }),
    });
    lab.cleanup();
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 7, msg: expect.stringMatching(/ipMasqExclude: 10\.0\.0\.0\/8 and 10\.244\.0\.0\/16 overlap/) });
  });
});

describe('fields other plugins know and vnet does not implement: validate warns, the file stays valid', () => {
  it("AKS's kubenet conflist with vnet's bridge mode: ok, addIf named with its reason, and promiscMode without hairpinMode named with what to set", () => {
    const file = join(tmp, 'kubenet-unimpl.conflist');
    writeFileSync(file, JSON.stringify({
      cniVersion: '0.3.1', name: 'kubenet',
      plugins: [
        { type: 'vnet', mode: 'bridge', bridge: 'cbr0', mtu: 1500, addIf: 'eth0', isGateway: true, ipMasq: false, promiscMode: true, hairpinMode: false, fooBar: '\u001b[31m',
          ipam: { type: 'vnet-ipam', subnet: '10.244.1.0/24', routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'portmap', capabilities: { portMappings: true }, externalSetMarkChain: 'KUBE-MARK-MASQ' },
      ],
    }));
    const r = vnet(['validate', file]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${file}: ok (2 plugins, vnet at plugins[0])\n`);
    expect(lines(r.stderr)).toEqual([
      expect.stringMatching(new RegExp(`^${file}: warning: plugins\\[0\\]\\.addIf: not implemented by vnet, ignored: kubenet's conflist template`)),
      expect.stringMatching(new RegExp(`^${file}: warning: plugins\\[0\\]: promiscMode without hairpinMode: .*set hairpinMode: true$`)),
    ]);
    // hairpinMode on, or no promiscMode: no such warning
    for (const over of [{ hairpinMode: true }, { promiscMode: false }]) {
      writeFileSync(file, JSON.stringify({ cniVersion: '0.3.1', name: 'kubenet', plugins: [{ type: 'vnet', mode: 'bridge', bridge: 'cbr0', isGateway: true, promiscMode: true, ...over, ipam: { type: 'vnet-ipam', subnet: '10.244.1.0/24' } }] }));
      expect(vnet(['validate', file]).stderr).toBe('');
    }
  });
  it('cniVersion 1.1.0: valid, with a warning that containerd 1.6 and 1.7 cannot read it', () => {
    const file = join(tmp, 'v110.conflist');
    writeFileSync(file, JSON.stringify({ cniVersion: '1.1.0', name: 'n', plugins: [{ type: 'vnet', ipam: { type: 'vnet-ipam', subnet: '10.9.0.0/24' } }] }));
    const r = vnet(['validate', file]);
    expect(r.status).toBe(0);
    expect(lines(r.stderr)).toEqual([`${file}: warning: cniVersion: "1.1.0" cannot be read by libcni before 1.2 (containerd 1.6 and 1.7, Debian 12's among them): "1.0.0" works everywhere and loses only GC and STATUS`]);
  });
  it('an invalid file gets its problems and the warnings, and exits 1', () => {
    const file = join(tmp, 'unimpl-bad.conf');
    writeFileSync(file, JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'vnet', mode: 'nope', vlan: 7, ipam: { type: 'vnet-ipam', subnet: '10.9.0.0/24' } }));
    const r = vnet(['validate', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/mode: must be one of/);
    expect(r.stderr).toMatch(/warning: vlan: not implemented by vnet, ignored: the reference bridge's VLAN tag/);
  });
});
