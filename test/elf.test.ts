// The cut the build makes to its base node (scripts/elf.mjs), on a small ELF64 little-endian
// executable made here, shaped like node's: allocated sections, .bss, then .comment, .debug_*,
// .symtab, .strtab and .shstrtab last. Needs neither root nor a build.
import { describe, expect, it } from 'vitest';
import { withoutDebugTail } from '../scripts/elf.mjs';

const SHT = { null: 0, progbits: 1, symtab: 2, strtab: 3, nobits: 8 } as const;
const ALLOC = 2;

interface Section {
  name: string;
  type: number;
  flags: number;
  size: number;
  /** File offset; for NOBITS, where it would start. */
  offset: number;
  link?: number;
  entsize?: number;
}

const filled = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (seed + i * 7) & 0xff));

/** Section names in order, a string table for them, and the file laid out as node's is. */
function synthetic() {
  const names = ['', '.text', '.rodata', '.data', '.bss', '.comment', '.debug_info', '.debug_str', '.symtab', '.strtab', '.shstrtab'];
  let shstr = '\0';
  const nameAt = new Map<string, number>([['', 0]]);
  for (const n of names.slice(1)) {
    nameAt.set(n, shstr.length);
    shstr += `${n}\0`;
  }
  const sections: Section[] = [
    { name: '', type: SHT.null, flags: 0, size: 0, offset: 0 },
    { name: '.text', type: SHT.progbits, flags: ALLOC | 4, size: 0x80, offset: 0x100 },
    { name: '.rodata', type: SHT.progbits, flags: ALLOC, size: 0x30, offset: 0x180 },
    { name: '.data', type: SHT.progbits, flags: ALLOC | 1, size: 0x20, offset: 0x1b0 },
    { name: '.bss', type: SHT.nobits, flags: ALLOC | 1, size: 0x100, offset: 0x1d0 },
    { name: '.comment', type: SHT.progbits, flags: 0x30, size: 0x10, offset: 0x1d0, entsize: 1 },
    { name: '.debug_info', type: SHT.progbits, flags: 0, size: 0x40, offset: 0x1e0 },
    { name: '.debug_str', type: SHT.progbits, flags: 0x30, size: 0x20, offset: 0x220, entsize: 1 },
    { name: '.symtab', type: SHT.symtab, flags: 0, size: 0x48, offset: 0x240, link: 9, entsize: 24 },
    { name: '.strtab', type: SHT.strtab, flags: 0, size: 0x10, offset: 0x288 },
    { name: '.shstrtab', type: SHT.strtab, flags: 0, size: shstr.length, offset: 0x298 },
  ];
  const shoff = Math.ceil((0x298 + shstr.length) / 8) * 8;
  const elf = Buffer.alloc(shoff + sections.length * 64);
  // ELF header: 64-bit, little-endian, version 1, an x86-64 executable.
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(elf, 0);
  elf.writeUInt16LE(2, 0x10);
  elf.writeUInt16LE(62, 0x12);
  elf.writeUInt32LE(1, 0x14);
  elf.writeBigUInt64LE(0x401100n, 0x18);
  elf.writeBigUInt64LE(0x40n, 0x20); // e_phoff
  elf.writeBigUInt64LE(BigInt(shoff), 0x28);
  elf.writeUInt16LE(64, 0x34);
  elf.writeUInt16LE(56, 0x36);
  elf.writeUInt16LE(2, 0x38);
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(sections.length, 0x3c);
  elf.writeUInt16LE(sections.length - 1, 0x3e);
  // Two PT_LOADs: headers, .text and .rodata; then .data (and .bss, in memory only).
  const load = (i: number, flags: number, offset: number, filesz: number, memsz: number) => {
    const at = 0x40 + i * 56;
    elf.writeUInt32LE(1, at);
    elf.writeUInt32LE(flags, at + 4);
    elf.writeBigUInt64LE(BigInt(offset), at + 8);
    elf.writeBigUInt64LE(BigInt(0x400000 + offset), at + 0x10);
    elf.writeBigUInt64LE(BigInt(0x400000 + offset), at + 0x18);
    elf.writeBigUInt64LE(BigInt(filesz), at + 0x20);
    elf.writeBigUInt64LE(BigInt(memsz), at + 0x28);
    elf.writeBigUInt64LE(0x1000n, at + 0x30);
  };
  load(0, 5, 0, 0x1b0, 0x1b0);
  load(1, 6, 0x1b0, 0x20, 0x120);
  sections.forEach((s, i) => {
    if (s.type !== SHT.nobits && s.name !== '.shstrtab') filled(s.size, i * 31).copy(elf, s.offset);
    const at = shoff + i * 64;
    elf.writeUInt32LE(nameAt.get(s.name)!, at);
    elf.writeUInt32LE(s.type, at + 4);
    elf.writeBigUInt64LE(BigInt(s.flags), at + 8);
    if (s.flags & ALLOC) elf.writeBigUInt64LE(BigInt(0x400000 + s.offset), at + 0x10);
    elf.writeBigUInt64LE(BigInt(s.offset), at + 0x18);
    elf.writeBigUInt64LE(BigInt(s.size), at + 0x20);
    elf.writeUInt32LE(s.link ?? 0, at + 0x28);
    elf.writeBigUInt64LE(s.type === SHT.null ? 0n : 1n, at + 0x30);
    elf.writeBigUInt64LE(BigInt(s.entsize ?? 0), at + 0x38);
  });
  Buffer.from(shstr, 'latin1').copy(elf, 0x298);
  return { elf, shoff };
}

/** Reads an ELF64 LE file's section table back, checking that it hangs together. */
function sectionsOf(elf: Buffer) {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const [shentsize, shnum, shstrndx] = [elf.readUInt16LE(0x3a), elf.readUInt16LE(0x3c), elf.readUInt16LE(0x3e)];
  expect(shentsize).toBe(64);
  expect(shoff % 8).toBe(0);
  expect(shoff + shnum * shentsize).toBe(elf.length);
  expect(shstrndx).toBeLessThan(shnum);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return { at, nameOff: elf.readUInt32LE(at), type: elf.readUInt32LE(at + 4), offset: Number(elf.readBigUInt64LE(at + 0x18)), size: Number(elf.readBigUInt64LE(at + 0x20)) };
  });
  const strtab = raw[shstrndx]!;
  expect(strtab.type).toBe(SHT.strtab);
  expect(strtab.offset + strtab.size).toBeLessThanOrEqual(shoff);
  const names = elf.subarray(strtab.offset, strtab.offset + strtab.size);
  return raw.map((s) => ({ ...s, name: names.toString('latin1', s.nameOff, names.indexOf(0, s.nameOff)) }));
}

describe('withoutDebugTail: the non-allocated sections that end the file go, nothing before them moves', () => {
  const { elf, shoff } = synthetic();
  const out = withoutDebugTail(elf);
  const cut = 0x1d0; // where .comment, the tail's first section, began

  it('the synthetic input reads as made', () => {
    expect(sectionsOf(elf).map((s) => s.name)).toEqual(['', '.text', '.rodata', '.data', '.bss', '.comment', '.debug_info', '.debug_str', '.symtab', '.strtab', '.shstrtab']);
  });

  it('keeps the allocated sections and .shstrtab, drops .comment, .debug_*, .symtab and .strtab', () => {
    expect(sectionsOf(out).map((s) => s.name)).toEqual(['', '.text', '.rodata', '.data', '.bss', '.shstrtab']);
  });

  it('a valid ELF: e_shnum, e_shstrndx and e_shoff point at the moved table, .shstrtab sits at the cut', () => {
    expect(out.readUInt16LE(0x3c)).toBe(6);
    expect(out.readUInt16LE(0x3e)).toBe(5);
    const shstrtab = sectionsOf(out)[5]!;
    expect(shstrtab.offset).toBe(cut);
    expect(Number(out.readBigUInt64LE(0x28))).toBe(Math.ceil((cut + shstrtab.size) / 8) * 8);
    expect(out.subarray(cut, cut + shstrtab.size)).toEqual(elf.subarray(0x298, 0x298 + shstrtab.size));
    expect(out.length).toBeLessThan(elf.length);
  });

  it('every byte before the cut is the same but the three header fields; the kept section headers are the same but .shstrtab\'s offset', () => {
    const header = Buffer.from(out.subarray(0, 0x40));
    Buffer.from(elf.subarray(0x28, 0x30)).copy(header, 0x28);
    Buffer.from(elf.subarray(0x3c, 0x40)).copy(header, 0x3c);
    expect(header).toEqual(elf.subarray(0, 0x40));
    expect(out.subarray(0x40, cut)).toEqual(elf.subarray(0x40, cut));
    const newShoff = Number(out.readBigUInt64LE(0x28));
    expect(out.subarray(newShoff, newShoff + 5 * 64)).toEqual(elf.subarray(shoff, shoff + 5 * 64));
    const strHeader = Buffer.from(out.subarray(newShoff + 5 * 64, newShoff + 6 * 64));
    Buffer.from(elf.subarray(shoff + 10 * 64 + 0x18, shoff + 10 * 64 + 0x20)).copy(strHeader, 0x18);
    expect(strHeader).toEqual(elf.subarray(shoff + 10 * 64, shoff + 11 * 64));
  });

  it('a file without a tail (one cut already) is refused, so the build keeps node whole', () => {
    expect(() => withoutDebugTail(out)).toThrow('no debug tail before .shstrtab');
  });

  it('refuses a tail that a segment or a kept section reaches into, or that a kept section links to', () => {
    const long = Buffer.from(elf);
    long.writeBigUInt64LE(0x30n, 0x40 + 56 + 0x20); // the second PT_LOAD's file size, past .data
    expect(() => withoutDebugTail(long)).toThrow('a segment or a kept section reaches into the tail');
    const linked = Buffer.from(elf);
    linked.writeUInt32LE(8, shoff + 3 * 64 + 0x28); // .data links to .symtab
    expect(() => withoutDebugTail(linked)).toThrow('a kept section links into the tail');
  });

  it('refuses what is not an ELF64 little-endian file', () => {
    const message = 'not an ELF64 little-endian file';
    expect(() => withoutDebugTail(Buffer.from('#!/bin/sh\nexec node "$@"\n'.repeat(4)))).toThrow(message);
    const elf32 = Buffer.from(elf);
    elf32[4] = 1;
    expect(() => withoutDebugTail(elf32)).toThrow(message);
    const bigEndian = Buffer.from(elf);
    bigEndian[5] = 2;
    expect(() => withoutDebugTail(bigEndian)).toThrow(message);
  });
});
