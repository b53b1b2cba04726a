import { describe, expect, it } from 'vitest';
import { checkArgs, parseArgs, parseEnv } from '../src/cni/env.js';
import { CniError } from '../src/errors.js';

const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

function codeOf(fn: () => unknown): { code: number; msg: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return { code: e.code, msg: e.message };
    throw e;
  }
  throw new Error('expected a CniError');
}

describe('required variables per verb (code 4, all missing ones named)', () => {
  it('ADD without CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME names all three', () => {
    const { code, msg } = codeOf(() => parseEnv({ CNI_COMMAND: 'ADD' }));
    expect(code).toBe(4);
    expect(msg).toBe('required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing');
  });
  it('DEL does not need CNI_NETNS, and an empty one is absent', () => {
    const env = parseEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' });
    expect(env.netns).toBeUndefined();
  });
  it('CHECK needs CNI_NETNS', () => {
    expect(codeOf(() => parseEnv({ ...base, CNI_COMMAND: 'CHECK', CNI_NETNS: '' })).msg).toContain('CNI_NETNS');
  });
  it('VERSION validates nothing else (libcni sends dummies)', () => {
    expect(parseEnv({ CNI_COMMAND: 'VERSION', CNI_CONTAINERID: '!!bad!!', CNI_IFNAME: 'a/b' }).command).toBe('VERSION');
  });
  it('STATUS and GC need no container', () => {
    expect(parseEnv({ CNI_COMMAND: 'STATUS' }).command).toBe('STATUS');
    expect(parseEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/x' }).path).toEqual(['/x']);
  });
  it('an unknown CNI_COMMAND is code 4', () => {
    expect(codeOf(() => parseEnv({ CNI_COMMAND: 'FROB' })).code).toBe(4);
  });
  it('a missing CNI_COMMAND is code 4', () => {
    expect(codeOf(() => parseEnv({})).code).toBe(4);
  });
});

describe('container ID must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$', () => {
  it.each(['abc', 'A1_b.c-d', '0'])('accepts %s', (id) => {
    expect(parseEnv({ ...base, CNI_CONTAINERID: id }).containerId).toBe(id);
  });
  it.each(['-abc', '_x', 'a b', 'a/b', 'a;b', '.a'])('rejects %j with code 4', (id) => {
    expect(codeOf(() => parseEnv({ ...base, CNI_CONTAINERID: id })).code).toBe(4);
  });
});

describe('ifname: at most 15 bytes, not . or .., no /, : or whitespace', () => {
  it.each(['eth0', 'a'.repeat(15), 'net1.100'])('accepts %s', (n) => {
    expect(parseEnv({ ...base, CNI_IFNAME: n }).ifname).toBe(n);
  });
  it.each(['a'.repeat(16), '.', '..', 'a/b', 'a:b', 'a b', 'a\tb', 'ééééééééé'])('rejects %j with code 4', (n) => {
    expect(codeOf(() => parseEnv({ ...base, CNI_IFNAME: n })).code).toBe(4);
  });
});

describe('CNI_ARGS: KEY=VALUE pairs separated by ;, unknown keys need IgnoreUnknown', () => {
  it('parses pairs, values may contain =', () => {
    expect([...parseArgs('A=1;B=x=y;;')]).toEqual([
      ['A', '1'],
      ['B', 'x=y'],
    ]);
  });
  it('a pair without = is code 4', () => {
    expect(codeOf(() => parseArgs('A=1;B')).code).toBe(4);
  });
  it('unknown keys fail without IgnoreUnknown and pass with it', () => {
    expect(codeOf(() => checkArgs(parseArgs('FOO=1'), ['IP'])).msg).toContain('FOO');
    expect(() => checkArgs(parseArgs('IgnoreUnknown=1;FOO=1'), ['IP'])).not.toThrow();
    expect(() => checkArgs(parseArgs('IgnoreUnknown=true;FOO=1'), ['IP'])).not.toThrow();
    expect(() => checkArgs(parseArgs('IP=10.0.0.2'), ['IP'])).not.toThrow();
  });
});
