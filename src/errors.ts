// The one error type of the plugin. Everything that fails throws a CniError; main.ts prints it
// once, as the spec's error JSON on stdout.

/** Spec error codes (SPEC.md section 5, "Error"), plus ours from 100 up. */
export const Code = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgain: 11,
  notAvailable: 50,
  notAvailableLimited: 51,
  // Ours. The reference plugins put every plugin-specific failure under 999; we keep a few apart.
  ipamExhausted: 100,
  // An address or attachment already taken: a requested address another attachment holds, or an
  // ADD of an attachment that is already wired (or already holds an address).
  addressInUse: 101,
  alreadyAttached: 101,
  datapath: 102,
  checkFailed: 103,
  internal: 999,
} as const;
type CniCode = number;

export class CniError extends Error {
  constructor(
    readonly code: CniCode,
    message: string,
    readonly details = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string): Record<string, string | number> {
    const out: Record<string, string | number> = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

/** Wraps anything thrown into a CniError; a non-CniError is a bug or an OS failure. */
/** errno codes that mean the node is out of something (descriptors, processes, memory): try again later. */
export const OUT_OF_RESOURCES = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM']);

export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const errno = (err as { code?: unknown } | undefined)?.code;
  if (typeof errno === 'string' && OUT_OF_RESOURCES.has(errno)) {
    return new CniError(Code.tryAgain, `the node is out of resources (${errno}): ${firstLine(msg)}; try again later`, '', { cause: err });
  }
  return new CniError(Code.internal, firstLine(msg), '', { cause: err });
}

export function firstLine(s: string): string {
  return s.split('\n', 1)[0]!.trim();
}
