// Turns a zod issue into the message a CNI error gives: the field, as the config spells it, what
// it must be, and what it was: `mode: must be one of transparent, bridge (got "brige")`,
// `mtu: must be between 68 and 65535 (got 65536)`, `hairpinMode: must be a boolean (got "yes")`.
// A given value is shown as JSON, cut short and with every control or bidi character escaped,
// so a message stays one line that says what the file holds.
import type * as z from 'zod/mini';
import { CniError, Code } from './errors.js';

/** "ipam.ranges[0][1].subnet" from a zod issue path. */
function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || 'config';
}

const SHOWN = 64;
// JSON.stringify escapes C0 controls and quotes; these it leaves as they are: DEL, C1 controls,
// the Unicode line and paragraph separators, and the bidi controls that reorder a terminal line.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
const escapeUnsafe = (s: string) => s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** A value as a message shows it: `"brige"`, `65536`, `true`, `null`, `[1,2]`, `an object`. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    const cut = value.length > SHOWN;
    const json = JSON.stringify(cut ? value.slice(0, SHOWN) : value);
    return escapeUnsafe(cut ? `${json.slice(0, -1)}…"` : json);
  }
  if (typeof value === 'bigint') return `${value}`;
  if (typeof value !== 'object' || value === null) return String(value);
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined;
  }
  if (json !== undefined && json.length <= SHOWN) return escapeUnsafe(json);
  return Array.isArray(value) ? `an array of ${value.length}` : 'an object';
}

/** What zod's expected types are called in a message. */
const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  bigint: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'an array',
  tuple: 'an array',
  null: 'null',
  nan: 'NaN',
};
const typeName = (t: string) => TYPE_NAMES[t] ?? `of type ${t}`;

// zod's own message when the schema set none; any other message is the schema's, and kept.
const DEFAULT_MESSAGE = 'Invalid input';

/** The schema a path leads to inside `schema`, through optional, default and the like. */
function schemaAt(schema: z.ZodMiniType | undefined, path: readonly PropertyKey[]): z.ZodMiniType | undefined {
  let s = unwrap(schema);
  for (const key of path) {
    const def = defOf(s);
    if (!def) return undefined;
    if (def.type === 'object' && typeof key === 'string') s = (def.shape as Record<string, z.ZodMiniType> | undefined)?.[key];
    else if (def.type === 'array' && typeof key === 'number') s = def.element as z.ZodMiniType;
    else if (def.type === 'record' && typeof key === 'string') s = def.valueType as z.ZodMiniType;
    else if (def.type === 'tuple' && typeof key === 'number') s = (def.items as z.ZodMiniType[] | undefined)?.[key];
    else return undefined;
    s = unwrap(s);
  }
  return s;
}

type Def = Record<string, unknown> & { type?: string };
const defOf = (s: z.ZodMiniType | undefined): Def | undefined => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;

function unwrap(s: z.ZodMiniType | undefined): z.ZodMiniType | undefined {
  for (let i = 0; i < 16; i++) {
    const def = defOf(s);
    if (!def) return s;
    if (['optional', 'nullable', 'default', 'prefault', 'nonoptional', 'readonly', 'catch'].includes(def.type ?? '')) {
      s = def.innerType as z.ZodMiniType;
    } else if (def.type === 'pipe') {
      s = def.in as z.ZodMiniType;
    } else return s;
  }
  return s;
}

interface Bounds {
  min?: { value: number | bigint; inclusive: boolean };
  max?: { value: number | bigint; inclusive: boolean };
  integer: boolean;
}

/** A number schema's limits, from its checks (zod keeps them there, not in the issue). */
function boundsOf(schema: z.ZodMiniType | undefined): Bounds | undefined {
  const def = defOf(schema);
  if (!def || (def.type !== 'number' && def.type !== 'bigint')) return undefined;
  const out: Bounds = { integer: def.type === 'bigint' || String(def.format ?? '').includes('int') };
  for (const check of (def.checks as { _zod?: { def?: Def } }[] | undefined) ?? []) {
    const c = check._zod?.def;
    if (c?.check === 'greater_than') out.min = { value: c.value as number, inclusive: c.inclusive === true };
    if (c?.check === 'less_than') out.max = { value: c.value as number, inclusive: c.inclusive === true };
  }
  return out;
}

const lower = (b: { value: number | bigint; inclusive: boolean }) => `${b.inclusive ? 'at least' : 'greater than'} ${b.value}`;
const upper = (b: { value: number | bigint; inclusive: boolean }) => `${b.inclusive ? 'at most' : 'less than'} ${b.value}`;

function numberRange(issue: z.core.$ZodIssue, schema: z.ZodMiniType | undefined): string {
  const found = boundsOf(schema);
  const b: Bounds = found ?? { integer: false };
  // Without the schema the issue tells the limit it broke, and only that one.
  if (issue.code === 'too_small') b.min ??= { value: issue.minimum as number, inclusive: issue.inclusive ?? true };
  if (issue.code === 'too_big') b.max ??= { value: issue.maximum as number, inclusive: issue.inclusive ?? true };
  if (b.min && b.max) {
    if (b.min.inclusive && b.max.inclusive) return `must be between ${b.min.value} and ${b.max.value}`;
    return `must be ${lower(b.min)} and ${upper(b.max)}`;
  }
  return `must be ${b.min ? lower(b.min) : upper(b.max!)}`;
}

function sizeRange(issue: z.core.$ZodIssue, unit: string): string {
  if (issue.code === 'too_small') {
    const min = Number(issue.minimum) + (issue.inclusive === false ? 1 : 0);
    return min === 1 ? 'must not be empty' : `must have at least ${min} ${unit}`;
  }
  if (issue.code === 'too_big') return `must have at most ${Number(issue.maximum) - (issue.inclusive === false ? 1 : 0)} ${unit}`;
  return '';
}

/** Each union member's expected type, when every member failed on the type alone. */
function unionTypes(issue: z.core.$ZodIssue): string[] | undefined {
  if (issue.code !== 'invalid_union') return undefined;
  const types: string[] = [];
  for (const branch of issue.errors) {
    const top = branch.filter((i) => i.path.length === 0);
    if (top.length !== 1 || top[0]!.code !== 'invalid_type') return undefined;
    types.push(top[0]!.expected);
  }
  return types.length ? types : undefined;
}

/** What is wrong, without the field: "must be one of transparent, bridge (got "brige")". */
function problem(issue: z.core.$ZodIssue, value: unknown, schema: z.ZodMiniType | undefined): string {
  const got = ` (got ${showValue(value)})`;
  const own = issue.message && issue.message !== DEFAULT_MESSAGE ? issue.message : undefined;
  switch (issue.code) {
    case 'invalid_type': {
      if (value === undefined) return own ?? 'missing';
      // z.int() reports "number" for a string: say integer, as the schema does.
      const expected = issue.expected === 'number' && boundsOf(schema)?.integer ? 'int' : issue.expected;
      return (own ?? `must be ${typeName(expected)}`) + got;
    }
    case 'invalid_value': {
      const allowed = issue.values.map((v) => (typeof v === 'string' ? v : showValue(v)));
      if (own) return own + got;
      if (value === undefined) return `missing (${allowed.length === 1 ? 'must be' : 'one of'} ${allowed.join(', ')})`;
      return (allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of ${allowed.join(', ')}`) + got;
    }
    case 'too_big':
    case 'too_small': {
      const length = typeof value === 'string' || Array.isArray(value) ? (value.length ? ` (got ${value.length})` : '') : got;
      if (own) return own + length;
      if (issue.origin === 'string') return sizeRange(issue, 'characters') + length;
      if (issue.origin === 'array' || issue.origin === 'set') return sizeRange(issue, 'items') + length;
      if (issue.origin === 'number' || issue.origin === 'bigint' || issue.origin === 'int') return numberRange(issue, schema) + got;
      return `out of range${got}`;
    }
    case 'not_multiple_of':
      return (own ?? `must be a multiple of ${issue.divisor}`) + got;
    case 'unrecognized_keys':
      return own ?? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => showValue(k)).join(', ')}`;
    case 'invalid_union': {
      const types = unionTypes(issue);
      return (own ?? (types ? `must be ${types.map(typeName).join(' or ')}` : 'matches none of the forms allowed')) + got;
    }
    case 'invalid_format':
      return (own ?? `must be a valid ${issue.format}`) + got;
    case 'custom':
      return (own ?? 'is not valid') + (value === undefined || (typeof value === 'object' && value !== null) ? '' : got);
    default:
      return own ?? `is not valid${got}`;
  }
}

/**
 * "ipam.ranges[0][0].subnet: missing" or "mtu: must be between 68 and 65535 (got 65536)", from a
 * zod issue. `schema` (the one that was run) lets a range message give both limits; without it
 * the message gives the limit that was broken.
 */
export function describeIssue(
  issue: z.core.$ZodIssue,
  input: unknown,
  prefix: readonly PropertyKey[] = [],
  schema?: z.ZodMiniType,
): string {
  let value: unknown = input;
  for (const key of issue.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return `${fieldPath([...prefix, ...issue.path])}: ${problem(issue, value, schemaAt(schema, issue.path))}`;
}

/** Every problem a schema finds in a value, one message each, in the order of the fields. */
export function describeIssues<S extends z.ZodMiniType>(schema: S, value: unknown, prefix: readonly PropertyKey[] = []): string[] {
  const parsed = schema.safeParse(value);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => describeIssue(issue, value, prefix, schema));
}

/** Runs a schema; the first problem becomes a code-7 error naming the field. */
export function validate<S extends z.ZodMiniType>(schema: S, value: unknown, prefix: readonly PropertyKey[] = [], what = ''): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new CniError(Code.invalidConfig, what + describeIssue(parsed.error.issues[0]!, value, prefix, schema));
}
