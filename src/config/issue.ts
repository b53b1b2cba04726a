// Turns a zod issue into the message a CNI error gives: the field, as the config spells it, and
// what is wrong with it.
import type * as z from 'zod/mini';
import { CniError, Code } from '../cni/errors.js';

/** "ipam.ranges[0][1].subnet" from a zod issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || 'config';
}

/** "ipam.ranges[0][0].subnet: missing" or "…: expected string, got number", from a zod issue. */
export function describeIssue(issue: z.core.$ZodIssue, input: unknown, prefix: readonly PropertyKey[] = []): string {
  let value: unknown = input;
  for (const key of issue.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  const what =
    issue.code === 'invalid_type' ? (value === undefined ? 'missing' : `expected ${issue.expected}, got ${got}`) : issue.message;
  return `${fieldPath([...prefix, ...issue.path])}: ${what}`;
}

/** Runs a schema; the first problem becomes a code-7 error naming the field. */
export function validate<S extends z.ZodMiniType>(schema: S, value: unknown, prefix: readonly PropertyKey[] = [], what = ''): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new CniError(Code.invalidConfig, what + describeIssue(parsed.error.issues[0]!, value, prefix));
}
