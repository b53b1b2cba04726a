// What the human commands share: a usage error (exit 2) and reading a .conf or .conflist file.
import { readFileSync } from 'node:fs';

export class UsageError extends Error {}

/** Reads a .conf or .conflist; for a list, the first plugin of type vnet with name and version. */
export function readNetConf(file: string): string {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!Array.isArray(json.plugins)) return JSON.stringify(json);
  const plugins = json.plugins as Record<string, unknown>[];
  const mine = plugins.find((p) => p.type === 'vnet') ?? plugins[0];
  if (!mine) throw new UsageError(`${file} has an empty plugin list`);
  // As libcni: the list's name and cniVersion win over any the plugin carries.
  return JSON.stringify({ ...mine, cniVersion: json.cniVersion, name: json.name });
}
