export function withoutDebugTail(elf: Buffer): Buffer;
