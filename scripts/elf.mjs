// The cut the build makes to the node it injects the blob into (see baseNode in build.mjs): the
// non-allocated sections that end an ELF64 little-endian executable (.comment, .debug_*, .symtab,
// .strtab) go, .shstrtab and the section headers move up to where the first of them began, and
// nothing before that changes, so everything the loader maps keeps its offset.

/** The executable without its non-allocated tail; throws when the file is not of that shape. */
export function withoutDebugTail(elf) {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error('not an ELF64 little-endian file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const [phoff, phentsize, phnum] = [Number(elf.readBigUInt64LE(0x20)), elf.readUInt16LE(0x36), elf.readUInt16LE(0x38)];
  const [shentsize, shnum, shstrndx] = [elf.readUInt16LE(0x3a), elf.readUInt16LE(0x3c), elf.readUInt16LE(0x3e)];
  const sh = (i) => ({
    at: shoff + i * shentsize,
    type: elf.readUInt32LE(shoff + i * shentsize + 4),
    flags: Number(elf.readBigUInt64LE(shoff + i * shentsize + 8)),
    offset: Number(elf.readBigUInt64LE(shoff + i * shentsize + 0x18)),
    size: Number(elf.readBigUInt64LE(shoff + i * shentsize + 0x20)),
    link: elf.readUInt32LE(shoff + i * shentsize + 0x28),
  });
  const all = Array.from({ length: shnum }, (_, i) => sh(i));
  // The tail: the longest run of non-allocated sections (other than .shstrtab) that ends the file.
  let first = shstrndx;
  while (first > 1 && !(all[first - 1].flags & 2) && all[first - 1].type !== 8) first--;
  if (first === shstrndx || shstrndx !== shnum - 1) throw new Error('no debug tail before .shstrtab');
  const cut = all[first].offset;
  const segEnd = Math.max(...Array.from({ length: phnum }, (_, i) => Number(elf.readBigUInt64LE(phoff + i * phentsize + 8) + elf.readBigUInt64LE(phoff + i * phentsize + 0x20))));
  const keptEnd = Math.max(...all.slice(0, first).map((x) => (x.type === 8 ? 0 : x.offset + x.size)));
  if (segEnd > cut || keptEnd > cut) throw new Error('a segment or a kept section reaches into the tail');
  if (all.slice(0, first).some((x) => x.link >= first)) throw new Error('a kept section links into the tail');
  const strtab = all[shstrndx];
  const newStr = cut;
  const newShoff = Math.ceil((newStr + strtab.size) / 8) * 8;
  const out = Buffer.alloc(newShoff + (first + 1) * shentsize);
  elf.copy(out, 0, 0, cut);
  elf.copy(out, newStr, strtab.offset, strtab.offset + strtab.size);
  elf.copy(out, newShoff, shoff, shoff + first * shentsize);
  elf.copy(out, newShoff + first * shentsize, strtab.at, strtab.at + shentsize);
  out.writeBigUInt64LE(BigInt(newStr), newShoff + first * shentsize + 0x18);
  out.writeBigUInt64LE(BigInt(newShoff), 0x28);
  out.writeUInt16LE(first + 1, 0x3c);
  out.writeUInt16LE(first, 0x3e);
  return out;
}
