import { describe, expect, it } from 'vitest';
import { CniError, Code, asCniError } from '../src/errors.js';
import { ALREADY_GONE } from '../src/net/ip.js';

describe('one error type carries a spec code; anything else becomes a plugin code', () => {
  it('prints as the spec’s error object, details only when present', () => {
    expect(new CniError(Code.invalidConfig, 'bad mtu').toJSON('1.0.0')).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'bad mtu' });
    expect(new CniError(1, 'x', 'both sides').toJSON('0.4.0')).toEqual({ cniVersion: '0.4.0', code: 1, msg: 'x', details: 'both sides' });
  });
  it('an unexpected exception is code 999 with its first line only, never a stack', () => {
    const e = asCniError(new TypeError('cannot read x\n    at foo (bar.js:1:1)'));
    expect(e.code).toBe(999);
    expect(e.message).toBe('cannot read x');
    expect(JSON.stringify(e.toJSON('1.0.0'))).not.toContain('bar.js');
  });
  it('a CniError passes through unchanged', () => {
    const e = new CniError(Code.tryAgain, 'busy');
    expect(asCniError(e)).toBe(e);
  });
});

describe('a removal whose object is already gone is done, for DEL and GC (ALREADY_GONE)', () => {
  it('matches what ip and nft say for a link, neighbour, route or element already gone, and nothing else', () => {
    for (const gone of [
      'Cannot find device "azv6416016b009"', // ip link del: the name is unknown
      'RTNETLINK answers: No such device', // the name resolved, then the link went (GC racing a DEL)
      'RTNETLINK answers: No such process', // neigh del, route del
      'Error: Could not process rule: No such file or directory', // nft delete element
      'Error: argument "azv1" is wrong: Device does not exist',
    ]) expect(ALREADY_GONE.test(gone), gone).toBe(true);
    for (const failure of ['RTNETLINK answers: Operation not permitted', 'RTNETLINK answers: File exists', 'Error: Could not process rule: Device or resource busy']) {
      expect(ALREADY_GONE.test(failure), failure).toBe(false);
    }
  });
});
