// Spec versions: which we speak, how they compare, which verbs each allows.
import { CniError, Code } from '../errors.js';
import type { Command } from './env.js';

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const CURRENT_VERSION = '1.1.0';

/** -1, 0 or 1, comparing dotted numeric versions ("0.3.1" < "0.4.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

export const atLeast = (v: string, min: string) => compareVersions(v, min) >= 0;

/** The config's cniVersion must be one we speak, and the verb must exist in that version. */
export function checkVersion(version: string, command: Command): void {
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(
      Code.incompatibleVersion,
      `incompatible CNI versions: config is "${version}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
      `config version ${version}; supported versions ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  const since = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' }[command as string];
  if (since && !atLeast(version, since)) {
    throw new CniError(
      Code.incompatibleVersion,
      `config version does not allow ${command}: cniVersion is "${version}", ${command} needs ${since} or later`,
    );
  }
}

export function versionAnswer(cniVersion: string) {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}
