// `vnet validate FILE…`: a .conflist (or a single plugin's .conf) checked with the plugin's own
// parsers, every problem reported, nothing run. The list is read as libcni reads it: JSON, a
// network name, a cniVersion we speak, a non-empty "plugins" array of objects with a "type"; each
// plugin is given the list's name and cniVersion (libcni injects both, over the plugin's own).
//
// The plugin's parsers stop at the first problem (an ADD answers one error). Here each parser is
// the authority on whether a section is valid: when it accepts the section nothing is reported;
// when it refuses it, every problem found in it is reported, its own first error among them:
//   - a `vnet` plugin: parseNetConf as for ADD, and all the issues of the very schemas it runs
//     (netconf.ts); the rules it checks after them (ipMasq needs bridge mode) once they pass;
//     ADD's need for an `ipam` section (commands/add.ts);
//   - an `ipam` section vnet-ipam reads (type vnet-ipam, or host-local under vnet: the same
//     format), and a plugin of type vnet-ipam: parseIpamConfig, and then each range, range set,
//     overlap and route through the same functions it calls (ipam/range.ts, net/values.ts).
// Lines go out as `FILE: field.path: problem`; every value is shown as JSON, control characters
// escaped. Exit 0 when every file is valid, 1 when one is not or cannot be read, 2 on bad usage.
// A field vnet does not implement is a warning (`FILE: warning: …`), which leaves the file valid.
import { parseArgs } from 'node:util';
import * as z from 'zod/mini';
import { CniError, Code } from '../errors.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from '../cni/version.js';
import { describeIssues, showValue } from '../issue.js';
import { commonSchema, netConfSchema, networkNameProblem, parseNetConf } from '../config/netconf.js';
import { caveats, unimplementedFields } from '../config/unimplemented.js';
import { ipamConfSchema, parseIpamConfig, parseIpamLocation } from '../ipam/config.js';
import { checkNoOverlap, resolveRange, resolveRangeSet, type Range, type RawRange } from '../ipam/range.js';
import { escapeControls } from '../log.js';
import { addrOf, dstOf } from '../net/values.js';
import { readConfText, UsageError } from './conf.js';

const VALIDATE_USAGE = 'vnet validate FILE…  (a .conflist, or a single plugin config: .conf or .json)';

/** What `vnet validate` prints and its exit status. */
interface ValidateRun {
  status: 0 | 1;
  stdout: string;
  stderr: string;
}

export function validate(args: string[]): ValidateRun {
  const { positionals: files } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
  if (!files.length) throw new UsageError(`name the file to check: ${VALIDATE_USAGE}`);
  const out: string[] = [];
  const err: string[] = [];
  let invalid = false;
  for (const file of files) {
    const r = checkFile(file);
    if (r.problems.length) invalid = true;
    const name = escapeControls(file);
    if (r.problems.length) err.push(...r.problems.map((p) => `${name}: ${escapeControls(p)}`));
    else out.push(`${name}: ok (${r.summary})`);
    err.push(...r.warnings.map((w) => `${name}: warning: ${escapeControls(w)}`));
  }
  const text = (lines: string[]) => lines.map((l) => l + '\n').join('');
  return { status: invalid ? 1 : 0, stdout: text(out), stderr: text(err) };
}

interface FileCheck {
  /** One message per problem, each naming its field: `plugins[0].mode: must be one of …`. */
  problems: string[];
  /** When there is none: `2 plugins, vnet at plugins[0]`. */
  summary: string;
  /** Fields of vnet's plugin that other plugins know and vnet ignores (config/unimplemented.ts). */
  warnings: string[];
}

/** Reads and checks one file; a .conflist is a list, anything else one plugin's config. */
function checkFile(file: string): FileCheck {
  let text: string;
  try {
    text = readConfText(file);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return { problems: [`cannot read: ${why}${READ_ERRORS[why] ? ` (${READ_ERRORS[why]})` : ''}`], summary: '', warnings: [] };
  }
  return checkText(text, file.endsWith('.conflist'));
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  ENOTDIR: 'a path component is not a directory',
};

/** libcni's reading of a file's text: `list` for a .conflist, else one plugin's config. */
function checkText(text: string, list: boolean): FileCheck {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { problems: [jsonProblem(e as Error, text)], summary: '', warnings: [] };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { problems: [`must hold a JSON object (got ${showValue(json)})`], summary: '', warnings: [] };
  }
  const obj = json as Record<string, unknown>;
  const problems = list ? describeIssues(listSchema, obj) : describeIssues(confFileSchema, obj).map((p) => confHint(p, obj));

  // The values every plugin is given: the list's own, or stand-ins when they are in error (that
  // error is reported once, above), so that each plugin's other fields are still checked.
  const name = typeof obj.name === 'string' && !networkNameProblem(obj.name) ? obj.name : 'validate';
  const okVersion = (SUPPORTED_VERSIONS as readonly string[]).includes(obj.cniVersion as string);
  const cniVersion = okVersion ? (obj.cniVersion as string) : obj.cniVersion === undefined && !list ? undefined : CURRENT_VERSION;

  const entries: [string, unknown][] = list ? (Array.isArray(obj.plugins) ? obj.plugins.map((p, i) => [`plugins[${i}]`, p]) : []) : [['', obj]];
  const ours: string[] = [];
  const warnings: string[] = [];
  if (obj.cniVersion === '1.1.0') {
    warnings.push('cniVersion: "1.1.0" cannot be read by libcni before 1.2 (containerd 1.6 and 1.7, Debian 12\'s among them): "1.0.0" works everywhere and loses only GC and STATUS');
  }
  for (const [at, entry] of entries) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) continue;
    const plugin = entry as Record<string, unknown>;
    const ipamType = isObject(plugin.ipam) ? plugin.ipam.type : undefined;
    const found: string[] = [];
    if (plugin.type === 'vnet') {
      found.push(...mainProblems(plugin, name, cniVersion));
      warnings.push(...unimplementedFields(plugin).map((w) => under(at, w)), ...caveats(plugin).map((w) => under(at, w)));
      ours.push(at ? `vnet at ${at}` : 'vnet');
    }
    // vnet-ipam reads the section when vnet (or any plugin) names it, or when it is run itself.
    const readsIpam =
      ipamType === 'vnet-ipam' || (plugin.type === 'vnet' && ipamType === 'host-local') || plugin.type === 'vnet-ipam';
    if (readsIpam) {
      found.push(...ipamProblems(plugin, name));
      if (plugin.type === 'vnet-ipam') ours.push(at ? `vnet-ipam at ${at}` : 'vnet-ipam');
      else if (plugin.type !== 'vnet') ours.push(`vnet-ipam at ${at ? `${at}.` : ''}ipam`);
    }
    problems.push(...found.map((p) => under(at, p)));
  }
  const typed = entries.filter(([, e]) => isObject(e) && typeof e.type === 'string' && e.type !== '');
  if (!ours.length && typed.length === entries.length && entries.length) {
    problems.push(
      list
        ? 'plugins: none is of type "vnet" or uses vnet-ipam: nothing here for vnet to check'
        : `type: ${showValue(obj.type)} is not vnet, and vnet-ipam is not its IPAM: nothing here for vnet to check`,
    );
  }
  const n = entries.length;
  return { problems: inFileOrder(dedupe(problems), obj), summary: `${n} plugin${n === 1 ? '' : 's'}, ${ours.join(', ')}`, warnings };
}

// ---- the list ----

const listSchema = z.looseObject({
  cniVersion: z.enum(SUPPORTED_VERSIONS),
  name: commonSchema.shape.name,
  plugins: z.array(z.looseObject({ type: z.string().check(z.minLength(1)) })).check(z.minLength(1)),
});

/** A single plugin's config: the version may be left out (the spec's default, 0.1.0). */
const confFileSchema = z.looseObject({
  cniVersion: z.optional(z.enum(SUPPORTED_VERSIONS)),
  name: commonSchema.shape.name,
  type: z.string().check(z.minLength(1)),
});

/** A list written to a .conf file: libcni reads it as one plugin's config, without a type. */
function confHint(problem: string, obj: Record<string, unknown>): string {
  return problem === 'type: missing' && Array.isArray(obj.plugins)
    ? 'type: missing (this file has "plugins": a list must be named *.conflist; any other file is read as one plugin\'s config)'
    : problem;
}

/** "not valid JSON: line 3, column 5: Expected ',' or '}' after property value". */
function jsonProblem(err: Error, text: string): string {
  if (!text.trim()) return 'not valid JSON: the file is empty';
  const m = /^(.*?)(?: in JSON)? at position (\d+)/s.exec(err.message);
  if (!m) return `not valid JSON: ${err.message}`;
  const pos = Number(m[2]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `not valid JSON: line ${line}, column ${column}: ${m[1]}`;
}

// ---- the main plugin ----

/** Every problem parseNetConf would refuse ADD for, field by field. */
function mainProblems(plugin: Record<string, unknown>, name: string, cniVersion: string | undefined): string[] {
  const conf = { ...plugin, name, ...(cniVersion === undefined ? {} : { cniVersion }) };
  const out: string[] = [];
  try {
    parseNetConf(JSON.stringify(conf), 'ADD');
  } catch (e) {
    if (!(e instanceof CniError)) throw e;
    out.push(...describeIssues(commonSchema, conf), ...describeIssues(netConfSchema, conf));
    const first = ownField(e.message.replace(/^invalid network config: /, ''), plugin);
    if (!out.includes(first)) out.push(first);
  }
  // commands/add.ts: "ipam: required for ADD".
  if (plugin.ipam === undefined) out.push('ipam: required for ADD');
  return out;
}

// ---- vnet-ipam ----

/** A range no one would write, standing in where a config needs one to reach another check. */
const STAND_IN = [[{ subnet: '192.0.2.0/24' }]];

/** Every problem parseIpamConfig would refuse the section for. */
function ipamProblems(plugin: Record<string, unknown>, name: string): string[] {
  const conf: Record<string, unknown> = { ...plugin, name };
  let first: string;
  try {
    parseIpamConfig(conf);
    return [];
  } catch (e) {
    if (!(e instanceof CniError)) throw e;
    first = e.message;
  }
  const out = describeIssues(ipamConfSchema, conf);
  const note = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof CniError)) throw e;
      out.push(e.message);
      return undefined;
    }
  };
  const ipam = isObject(conf.ipam) ? conf.ipam : {};

  // Ranges, in the parser's order: the legacy one (ipam.subnet) first, then each set.
  const ranges: Range[] = [];
  const legacy = rawRange(ipam);
  if (ipam.subnet != null) {
    const r = legacy && note(() => resolveRange(legacy, 'ipam'));
    if (r) ranges.push(r);
  } else if (['rangeStart', 'rangeEnd', 'gateway'].some((k) => ipam[k] != null)) {
    const { rangeStart, rangeEnd, gateway } = ipam;
    note(() => parseIpamConfig({ name, ipam: { rangeStart, rangeEnd, gateway, ranges: STAND_IN } }));
  }
  if (Array.isArray(ipam.ranges)) {
    ipam.ranges.forEach((set: unknown, i: number) => {
      if (!Array.isArray(set)) return;
      const raws = set.map(rawRange);
      const resolved = raws.map((raw, k) => raw && note(() => resolveRange(raw, `ipam.ranges[${i}][${k}]`)));
      if (raws.every((r): r is RawRange => r !== undefined) && resolved.every((r) => r !== undefined)) {
        note(() => resolveRangeSet(raws, `ipam.ranges[${i}]`)); // one family; none empty
      }
      ranges.push(...resolved.filter((r): r is Range => r !== undefined));
    });
  }
  // Every overlapping pair, not only the first (the parser's message for each).
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) note(() => checkNoOverlap([ranges[i]!, ranges[j]!]));
  }

  if (Array.isArray(ipam.routes)) {
    ipam.routes.forEach((r: unknown, i: number) => {
      if (!isObject(r)) return;
      if (typeof r.dst === 'string') note(() => dstOf(`ipam.routes[${i}].dst`, r.dst as string, Code.invalidConfig));
      if (typeof r.gw === 'string') note(() => addrOf(`ipam.routes[${i}].gw`, r.gw as string, Code.invalidConfig));
    });
  }
  if (typeof ipam.dataDir === 'string') note(() => parseIpamLocation({ name, ipam: { dataDir: ipam.dataDir } }));
  if (typeof ipam.resolvConf === 'string') note(() => parseIpamConfig({ name, ipam: { ranges: STAND_IN, resolvConf: ipam.resolvConf } }));
  if (conf.runtimeConfig != null || conf.args != null) {
    note(() => parseIpamConfig({ name, ipam: { ranges: STAND_IN }, runtimeConfig: conf.runtimeConfig, args: conf.args }));
  }
  if (!out.includes(first)) out.unshift(first);
  return dedupe(out);
}

/** A range whose fields have the types the parser needs, or undefined (its schema says why). */
function rawRange(r: unknown): RawRange | undefined {
  if (!isObject(r) || typeof r.subnet !== 'string') return undefined;
  const opt = (v: unknown) => (v === null || v === undefined ? undefined : typeof v === 'string' ? v : null);
  const [rangeStart, rangeEnd, gateway] = [opt(r.rangeStart), opt(r.rangeEnd), opt(r.gateway)];
  if (rangeStart === null || rangeEnd === null || gateway === null) return undefined;
  return { subnet: r.subnet, rangeStart, rangeEnd, gateway };
}

// ---- messages ----

/** A field path at the start of a message: `ipam.ranges[0][1].subnet: …`. */
const FIELD = /^([A-Za-z_$][\w$]*(?:\[\d+\]|\.[A-Za-z_$][\w$]*)*): /;

/**
 * A message of a plugin's config placed in the file: `plugins[0].` before its field, and before
 * the other fields of the plugin it names ("overlaps ipam.ranges[0][0]"), in a message that
 * quotes no value (a quoted value is the file's text, left as it is).
 */
function under(at: string, problem: string): string {
  if (!at) return problem;
  const placed = FIELD.test(problem) ? `${at}.${problem}` : `${at}: ${problem}`;
  return placed.includes('"') ? placed : placed.replace(/(?<=[ (])ipam\./g, `${at}.ipam.`);
}

/**
 * Problems in the order their fields come in the file (a missing field first among its
 * siblings); a message without a field, and those of one field, keep their order.
 */
function inFileOrder(problems: string[], root: unknown): string[] {
  const position = (problem: string): number[] => {
    const path = FIELD.exec(problem)?.[1];
    if (!path) return [];
    const out: number[] = [];
    let node: unknown = root;
    for (const [, index, key] of path.matchAll(/\[(\d+)\]|\.?([A-Za-z_$][\w$]*)/g)) {
      if (index !== undefined) {
        out.push(Number(index));
        node = Array.isArray(node) ? node[Number(index)] : undefined;
      } else {
        out.push(isObject(node) ? Object.keys(node).indexOf(key!) : -1);
        node = isObject(node) ? node[key!] : undefined;
      }
    }
    return out;
  };
  const compare = (a: number[], b: number[]) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  };
  return problems
    .map((problem, i) => ({ problem, i, at: position(problem) }))
    .sort((x, y) => compare(x.at, y.at) || x.i - y.i)
    .map((x) => x.problem);
}

/**
 * A rule checked after the schema names its field in words ("ipMasq is implemented in bridge
 * mode only…"): the field goes in front, as in every other message.
 */
function ownField(message: string, plugin: Record<string, unknown>): string {
  if (FIELD.test(message)) return message;
  const word = message.split(' ', 1)[0]!;
  return Object.hasOwn(plugin, word) && word !== message ? `${word}: ${message.slice(word.length + 1)}` : message;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const dedupe = (lines: string[]) => [...new Set(lines)];
