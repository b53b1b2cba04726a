// The names derived from hashes are on-node and on-disk format: our SHA-1 and SHA-256 must be the
// standard ones, byte for byte, at every length around the 64-byte block edges.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { randomHex, sha1Hex, sha256Hex } from '../src/hash.js';

const std = (alg: string, s: string) => createHash(alg).update(s, 'utf8').digest('hex');
const samples = [
  '',
  'abc',
  'benchnet:c1:eth0',
  'bridge:kubenet:cbr0',
  'ü-ñ-日本-🙂', // multi-byte UTF-8
  ...Array.from({ length: 140 }, (_, n) => 'x'.repeat(n)), // every padding case, 1 to 3 blocks
  'k8s-pod-network:' + 'f'.repeat(64) + ':eth0',
  'a'.repeat(1000),
];

describe('names hash with standard SHA-1 and SHA-256', () => {
  it('SHA-1 equals node:crypto for every sample', () => {
    for (const s of samples) expect(sha1Hex(s), JSON.stringify(s)).toBe(std('sha1', s));
  });
  it('SHA-256 equals node:crypto for every sample', () => {
    for (const s of samples) expect(sha256Hex(s), JSON.stringify(s)).toBe(std('sha256', s));
  });
  it('the known answers (FIPS 180 "abc")', () => {
    expect(sha1Hex('abc')).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('temp and marker names get random hex', () => {
  it('n bytes as 2n hex digits, different each time', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => randomHex(6)));
    for (const s of seen) expect(s).toMatch(/^[0-9a-f]{12}$/);
    expect(seen.size).toBe(1000);
  });
});
