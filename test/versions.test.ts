import { describe, expect, it } from 'vitest';
import { CniError } from '../src/errors.js';
import { parseResult, resultAsVersion, type Result } from '../src/cni/result.js';
import { COMMANDS, type Command } from '../src/cni/env.js';
import { SUPPORTED_VERSIONS, checkVersion, compareVersions, versionAnswer } from '../src/cni/version.js';

const full: Result = {
  interfaces: [
    { name: 'azv0123456789a', mac: 'aa:aa:aa:aa:aa:aa' },
    { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/var/run/netns/p', mtu: 1500 },
  ],
  ips: [
    { address: '10.220.2.11/24', gateway: '169.254.1.1', interface: 1 },
    { address: '10.220.2.12/24', interface: 1 },
    { address: 'fd00::11/64', gateway: 'fd00::1', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1', mtu: 1400 }, { dst: '::/0', gw: 'fd00::1' }],
  dns: { nameservers: ['10.0.0.10'], search: ['svc.cluster.local'] },
};

// The spec's released versions, and the verbs that came later (SPEC.md: CHECK in 0.4.0, STATUS
// and GC in 1.1.0; VERSION, ADD and DEL in every version).
const RELEASED = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const SINCE: Record<Command, string> = { ADD: '0.1.0', DEL: '0.1.0', VERSION: '0.1.0', CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

/** What checkVersion does with a cniVersion and a verb: 0 (allowed) or the CniError's code. */
const code = (v: string, cmd: Command) => {
  try {
    checkVersion(v, cmd);
    return 0;
  } catch (e) {
    if (!(e instanceof CniError)) throw e;
    return e.code;
  }
};

describe('supported versions: 0.1.0 to 1.1.0, compared numerically', () => {
  it('a config of every released version is accepted, and VERSION lists exactly those, oldest first, whatever the caller speaks', () => {
    for (const v of RELEASED) {
      expect(code(v, 'ADD'), v).toBe(0);
      expect(code(v, 'DEL'), v).toBe(0);
      expect(versionAnswer(v)).toEqual({ cniVersion: v, supportedVersions: RELEASED });
    }
  });
  it('any other cniVersion is refused with code 1: unreleased, malformed, padded', () => {
    for (const v of ['0.5.0', '1.2.0', '2.0.0', '0.3.2', '1.0', '1', '01.0.0', '1.0.0 ', ' 1.0.0', 'v1.0.0', '1.0.0-rc1', '']) {
      expect(code(v, 'ADD'), JSON.stringify(v)).toBe(1);
    }
  });
  it('compares by number, not by string, and the list is in order', () => {
    expect(compareVersions('0.10.0', '0.4.0')).toBe(1);
    expect(compareVersions('0.4.0', '0.10.0')).toBe(-1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    for (let i = 1; i < SUPPORTED_VERSIONS.length; i++) expect(compareVersions(SUPPORTED_VERSIONS[i - 1]!, SUPPORTED_VERSIONS[i]!)).toBe(-1);
  });
});

describe('verbs allowed per version (code 1 otherwise)', () => {
  it('an unsupported cniVersion is code 1 with both sides in details', () => {
    try {
      checkVersion('2.0.0', 'ADD');
      expect.unreachable();
    } catch (e) {
      expect((e as CniError).code).toBe(1);
      expect((e as CniError).details).toContain('2.0.0');
      expect((e as CniError).details).toContain('1.1.0');
    }
  });
  it('CHECK needs 0.4.0, STATUS and GC need 1.1.0, ADD, DEL and VERSION any: every verb at every version', () => {
    for (const v of RELEASED) {
      for (const cmd of COMMANDS) {
        const allowed = compareVersions(v, SINCE[cmd]) >= 0;
        expect(code(v, cmd), `${cmd} at ${v}`).toBe(allowed ? 0 : 1);
        if (!allowed) expect(() => checkVersion(v, cmd)).toThrow(`config version does not allow ${cmd}: cniVersion is "${v}", ${cmd} needs ${SINCE[cmd]} or later`);
      }
    }
  });
});

describe('results are printed in the config version’s shape', () => {
  it('0.1.0 and 0.2.0: first ip4 and first ip6, routes split by family, no interfaces', () => {
    for (const v of ['0.1.0', '0.2.0']) {
      expect(resultAsVersion(full, v)).toEqual({
        cniVersion: v,
        ip4: { ip: '10.220.2.11/24', gateway: '169.254.1.1', routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }] },
        ip6: { ip: 'fd00::11/64', gateway: 'fd00::1', routes: [{ dst: '::/0', gw: 'fd00::1' }] },
        dns: full.dns,
      });
    }
  });
  it('0.3.0, 0.3.1 and 0.4.0: ips carry "version", interfaces and routes without 1.1.0 fields', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
      const r = resultAsVersion(full, v) as { ips: { version: string }[]; interfaces: object[]; routes: object[] };
      expect(r.ips.map((i) => i.version)).toEqual(['4', '4', '6']);
      expect(r.interfaces[1]).toEqual({ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/var/run/netns/p' });
      expect(r.routes[0]).toEqual({ dst: '0.0.0.0/0', gw: '169.254.1.1' });
    }
  });
  it('1.0.0: no "version" in ips, no route mtu', () => {
    const r = resultAsVersion(full, '1.0.0') as { ips: object[]; routes: object[] };
    expect(r.ips[0]).toEqual({ interface: 1, address: '10.220.2.11/24', gateway: '169.254.1.1' });
    expect(r.routes[0]).toEqual({ dst: '0.0.0.0/0', gw: '169.254.1.1' });
  });
  it('1.1.0: route and interface mtu kept', () => {
    const r = resultAsVersion(full, '1.1.0') as { interfaces: { mtu?: number }[]; routes: { mtu?: number }[] };
    expect(r.routes[0]!.mtu).toBe(1400);
    expect(r.interfaces[1]!.mtu).toBe(1500);
  });
  it('0.2.0 without any IP cannot be expressed: code 1', () => {
    expect(() => resultAsVersion({ interfaces: [], ips: [], routes: [], dns: {} }, '0.2.0')).toThrow(CniError);
  });
  it('empty lists are left out, as the reference plugins print them', () => {
    expect(resultAsVersion({ interfaces: [], ips: [{ address: '10.0.0.2/24' }], routes: [], dns: {} }, '1.0.0')).toEqual({
      cniVersion: '1.0.0',
      ips: [{ address: '10.0.0.2/24' }],
    });
  });
});

describe('prevResult of any version parses into the internal result and back (every pair)', () => {
  // What survives a trip through a version: 0.2.0 keeps one address per family.
  const survives = (v: string): Result => {
    if (compareVersions(v, '0.3.0') < 0) {
      return {
        interfaces: [],
        ips: [{ address: '10.220.2.11/24', gateway: '169.254.1.1' }, { address: 'fd00::11/64', gateway: 'fd00::1' }],
        routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }, { dst: '::/0', gw: 'fd00::1' }],
        dns: full.dns,
      };
    }
    if (compareVersions(v, '1.1.0') < 0) {
      return {
        ...full,
        interfaces: full.interfaces.map(({ mtu: _m, ...i }) => i),
        routes: full.routes.map((r) => ({ dst: r.dst, gw: r.gw })),
      };
    }
    return full;
  };
  for (const from of SUPPORTED_VERSIONS) {
    for (const to of SUPPORTED_VERSIONS) {
      it(`${from} -> ${to}`, () => {
        const internal = parseResult(resultAsVersion(full, from));
        expect(internal).toEqual(survives(from));
        const out = resultAsVersion(internal, to);
        expect(out.cniVersion).toBe(to);
        expect(parseResult(out)).toEqual(survives(compareVersions(from, to) < 0 ? from : to));
      });
    }
  }
  it('a malformed prevResult is code 6 naming the field', () => {
    try {
      parseResult({ ips: [{ address: 5 }] }, 'prevResult');
      expect.unreachable();
    } catch (e) {
      expect((e as CniError).code).toBe(6);
      expect((e as CniError).message).toContain('ips[0].address');
    }
  });
});
