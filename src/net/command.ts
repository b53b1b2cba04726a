// One `ip` command as typed tokens, and the one place that turns it into text. A command is a
// list of keywords (from this code) and typed values (values.ts); nothing else fits the type.
//
// `ip -batch -` splits a line on whitespace, honours " and ' quoting, cuts at # (even inside
// quotes) and joins lines ending in \. A command whose every token is plain (letters, digits and
// . _ - : / @ + , =) goes into a batch line as is; any other token (an interface name may
// legally hold # " ' \) makes the command run alone, as an argv array that `ip` reads verbatim.
// A token that no argv can carry either (a control character) is refused: it can only be a bug,
// since the values were validated where they came in.
import { CniError, Code } from '../errors.js';
import type { Alias, CidrText, IfName, IpText, Mac } from './values.js';

type Keyword =
  | 'link' | 'addr' | 'route' | 'neigh'
  | 'add' | 'del' | 'set' | 'replace' | 'show'
  | 'dev' | 'name' | 'peer' | 'type' | 'veth' | 'netns' | 'up' | 'down'
  | 'mtu' | 'address' | 'alias' | 'via' | 'scope' | 'lladdr' | 'nud' | 'permanent' | 'default' | 'nodad'
  | 'bridge' | 'master' | 'nomaster' | 'bridge_slave' | 'hairpin' | 'promisc' | 'on' | 'metric'
  | 'proto' | 'boot' | 'static' | 'dhcp' | 'ra' | 'src';

/** The pod's network namespace as every child sees it: the descriptor we opened, on fd 3. */
export const POD_NETNS_REF = '/proc/self/fd/3';
type NsRef = typeof POD_NETNS_REF;

type Token = Keyword | IfName | IpText | CidrText | Mac | Alias | NsRef | number;
export type IpCmd = readonly Token[];

const PLAIN = /^[A-Za-z0-9._:/@+,=-]+$/;
// eslint-disable-next-line no-control-regex
const UNCARRIABLE = /[\x00-\x1f\x7f]/;

function text(tok: Token): string {
  const s = String(tok);
  if (s === '' || UNCARRIABLE.test(s)) {
    throw new CniError(Code.internal, `refusing to pass ${JSON.stringify(s)} to ip: not a value any command can carry`);
  }
  return s;
}

/** The batch line of a command, or undefined if it must run alone (see the header). */
export function batchLine(cmd: IpCmd): string | undefined {
  const parts = cmd.map(text);
  return parts.every((p) => PLAIN.test(p)) ? parts.join(' ') : undefined;
}

/** The argv of `ip` for a command run alone. */
export function argvOf(cmd: IpCmd): string[] {
  return cmd.map(text);
}

/** A command as a shell line a reader can paste: plain tokens bare, others single-quoted. */
export function shellWords(words: readonly (string | number)[]): string {
  return words.map((w) => shellQuote(String(w))).join(' ');
}

export function shellQuote(s: string): string {
  return PLAIN.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
