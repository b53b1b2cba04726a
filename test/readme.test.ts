// The README says what the code does: its worked examples are computed again here, and the
// sentences it once had wrong (each contradicted by the code) do not come back.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sha1Hex } from '../src/hash.js';
import { hostVethName } from '../src/plan/names.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
/** The README on one line, so a sentence broken over lines still matches. */
const flat = readme.replace(/\s+/g, ' ');

describe('the veth names the README computes are the ones the code makes', () => {
  // $ printf %s KEY | sha1sum | cut -c1-11   # …
  // DIGEST
  const examples = [...readme.matchAll(/^\$ printf %s (\S+) \| sha1sum \| cut -c1-11 .*\n([0-9a-f]{11})$/gm)].map((m) => ({ key: m[1]!, digest: m[2]! }));

  it('Azure CNI’s key for the seed’s pod nginx in default gives azvc440f455693', () => {
    expect(examples).toContainEqual({ key: 'default.nginx', digest: 'c440f455693' });
    expect(sha1Hex('default.nginx').slice(0, 11)).toBe('c440f455693');
    expect(readme).toContain('azvc440f455693');
  });
  it('vnet’s key (network, container ID, ifname) gives the name hostVethName makes', () => {
    const ours = examples.find((e) => e.key.startsWith('azure:'));
    expect(ours).toBeDefined();
    const [network, containerId, ifname] = ours!.key.split(':') as [string, string, string];
    expect(sha1Hex(ours!.key).slice(0, 11)).toBe(ours!.digest);
    expect(hostVethName(network, { containerId, ifname })).toBe(`azv${ours!.digest}`);
  });
});

describe('the comparison with Azure CNI cites Azure’s source in every row', () => {
  const section = readme.split('## What differs from Azure CNI')[1]?.split('\n## ')[0] ?? '';
  const rows = section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| |'));
  it('has its rows', () => expect(rows.length).toBeGreaterThanOrEqual(10));
  for (const row of rows) {
    const [what, azure] = row.split(' | ');
    it(`${what!.slice(2)}: a file of Azure/azure-container-networking named`, () => expect(azure).toMatch(/`[a-z]+\/[\w/]+\.go`/));
  }
});

describe('sentences the README had wrong stay out', () => {
  const wrong: [string, RegExp][] = [
    ['the IPAM lock is proper-lockfile (it is src/ipam/lock.ts)', /the lock vnet-ipam holds \(proper-lockfile\)|locks? (with|by|through) proper-lockfile/i],
    ['address files are fsynced (nothing is)', /temporary name, fsynced|(?<!nothing is |not |never )fsynced, then/i],
    ['vnet-ipam and host-local each release what the other allocated (host-local cannot read the index)', /(each|either) (can )?release[sd]? what the other/i],
    ['undoing a half-done move is an advantage over Azure (Azure undoes it too)', /The move is undone if it fails half-way/],
    ['Azure races on shared objects (it serialises every call)', /never raced|Azure (CNI )?races/i],
    ['ebtables’ arpreply is lost (the request is kept on the node instead)', /arpreply` is the one thing lost/],
    ['the lab’s bridge layout is one L2 segment (it is routed, as Azure’s fabric)', /one L2 segment/],
  ];
  for (const [what, re] of wrong) it(`not: ${what}`, () => expect(flat).not.toMatch(re));

  it('no map points outside the repository', () => {
    for (const f of ['../README.md', '../src/README.md', '../scripts/README.md']) {
      expect(readFileSync(new URL(f, import.meta.url), 'utf8'), f).not.toMatch(/\.\.\/shared|DESIGN\.md/);
    }
  });
});
