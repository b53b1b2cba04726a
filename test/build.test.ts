// The snapshot build refuses what would freeze build-time state into every run: top-level reads
// of the environment, and timers (a timer made while the snapshot is built leaves node's timer
// list in it, and a run's timer landing in that stale list never fires: lock waits then ended
// the process with no answer). Each case builds a tiny entry into a directory of its own.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN } from './helpers/lab.js';

const dir = mkdtempSync(join(tmpdir(), 'vtbuild-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function build(name: string, source: string) {
  const entry = join(dir, `${name}.ts`);
  writeFileSync(entry, source);
  const out = join(dir, name);
  const r = spawnSync(process.execPath, ['scripts/build.mjs', '--sea', 'this-cpu', '--entry', entry, '--bin-dir', out], { encoding: 'utf8', env: { PATH: process.env.PATH! } });
  return { ...r, made: existsSync(join(out, 'vnet')) };
}

const main = `import v8 from 'node:v8';
v8.startupSnapshot.setDeserializeMainFunction(() => {
  process.stdout.write(process.env.CNI_COMMAND ? JSON.stringify({ cniVersion: '1.0.0', supportedVersions: ['1.0.0'] }) + '\\n' : 'vnet (test entry)\\n');
});
`;
describe('the this-cpu (snapshot) build refuses build-time timers and environment reads', () => {
  it('a timer made at build time (even cleared at once) fails the build, naming it', () => {
    const r = build('timer', `${main}clearInterval(setInterval(() => {}, 1000));\n`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/called setInterval; a timer made then breaks the timers of every run/);
    expect(r.made).toBe(false);
  });
  it('a top-level read of CNI_COMMAND fails the build, naming it', () => {
    const r = build('env', `${main}export const c = process.env.CNI_COMMAND;\n`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/read process.env \(CNI_COMMAND\)/);
    expect(r.made).toBe(false);
  });
  it('the same entry without them builds', () => {
    const r = build('clean', main);
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(r.status).toBe(0);
    expect(r.made).toBe(true);
  });
});

describe('the this-cpu build is named for what it is: it says so, and the baseline CPU refuses it', () => {
  it('builds from src/main.ts, says `build: this-cpu`, and does not start under qemu-x86_64 -cpu qemu64', () => {
    const out = join(dir, 'this-cpu');
    const r = spawnSync(process.execPath, ['scripts/build.mjs', '--sea', 'this-cpu', '--bin-dir', out], { encoding: 'utf8', env: { PATH: process.env.PATH! } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/sea this-cpu: .* runs only on CPUs with the features V8 sees here/);
    expect(spawnSync(join(out, 'vnet'), ['version'], { encoding: 'utf8' }).stdout).toMatch(/^build: this-cpu \(a V8 startup snapshot/m);
    const q = spawnSync('qemu-x86_64', ['-cpu', 'qemu64', join(out, 'vnet'), 'version'], { encoding: 'utf8', timeout: 120_000 });
    expect(q.status).toBe(14);
    expect(q.stderr).toMatch(/Invalid snapshot data in single executable binary/);
  }, 120_000);
});

/** Section names and LOAD segments (offset, address) of an ELF64 little-endian file. */
function elfLayout(file: string) {
  const b = readFileSync(file);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const [shentsize, shnum, shstrndx] = [b.readUInt16LE(0x3a), b.readUInt16LE(0x3c), b.readUInt16LE(0x3e)];
  const strOff = Number(b.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18));
  const names = Array.from({ length: shnum }, (_, i) => {
    const at = strOff + b.readUInt32LE(shoff + i * shentsize);
    return b.toString('latin1', at, b.indexOf(0, at));
  });
  const [phoff, phentsize, phnum] = [Number(b.readBigUInt64LE(0x20)), b.readUInt16LE(0x36), b.readUInt16LE(0x38)];
  const loads = Array.from({ length: phnum }, (_, i) => phoff + i * phentsize)
    .filter((at) => b.readUInt32LE(at) === 1)
    .map((at) => [Number(b.readBigUInt64LE(at + 8)), Number(b.readBigUInt64LE(at + 0x10))]);
  return { names, loads };
}

describe('the executable is node without its symbols and debug info, the rest where node had it', () => {
  it('no .symtab, .strtab or .debug_* section; node’s segments at node’s offsets; smaller than node', () => {
    const ours = elfLayout(BIN);
    expect(ours.names.filter((n) => /^\.(symtab|strtab|debug_)/.test(n))).toEqual([]);
    const node = elfLayout(process.execPath);
    // node's own LOAD segments come first, unmoved (a repacked text maps more of the file per fault)
    expect(ours.loads.slice(0, node.loads.length)).toEqual(node.loads);
    expect(statSync(BIN).size).toBeLessThan(statSync(process.execPath).size);
  });
});
