// `vnet state`: what vnet-ipam holds on disk, and the node's azv veths with their attachments.
import { parseArgs } from 'node:util';
import { listAllocations } from '../ipam/plugin.js';
import { escapeControls } from '../log.js';
import { ipJson } from '../net/ip.js';
import { ALIAS_PREFIX } from '../plan/names.js';
import { readNetConf } from './conf.js';

export async function state(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: { conf: { type: 'string' }, 'data-dir': { type: 'string' }, network: { type: 'string' } },
    strict: true,
  });
  let network = values.network;
  let dataDir = values['data-dir'];
  if (values.conf) {
    const conf = JSON.parse(readNetConf(values.conf)) as { name?: string; ipam?: { dataDir?: string } };
    network ??= conf.name;
    dataDir ??= conf.ipam?.dataDir;
  }
  dataDir ??= '/var/lib/cni/networks';
  const out: string[] = [];
  if (network) {
    const allocs = listAllocations(dataDir, network);
    out.push(`Addresses held in ${dataDir}/${network}/ (${allocs.length}):`);
    for (const a of allocs) out.push(`  ${a.ip.padEnd(40)} ${a.containerId} ${a.ifname}`);
  }
  const [linkRows = [], links = [], bridges = []] = await ipJson(['link show', 'addr show', 'link show type bridge']);
  type Row = { ifname: string; ifalias?: string; address?: string; flags?: string[]; master?: string; addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[] };
  const rows = links as Row[];
  // `addr show` has no alias: take it from `link show`.
  for (const r of rows) r.ifalias = (linkRows as Row[]).find((l) => l.ifname === r.ifname)?.ifalias;
  const veths = rows.filter((l) => l.ifalias?.startsWith(ALIAS_PREFIX));
  // Bridges that hold one of our veths: shared, left in place by DEL (and an uplink moved onto one stays there).
  const ours = (bridges as Row[]).filter((b) => veths.some((v) => v.master === b.ifname) || rows.some((r) => r.master === b.ifname && r.ifname === 'eth0'));
  if (ours.length) out.push(`Bridges (${ours.length}):`);
  for (const b of ours) {
    const row = rows.find((r) => r.ifname === b.ifname);
    const addrs = (row?.addr_info ?? []).filter((a) => a.scope !== 'link' && a.scope !== 'host').map((a) => `${a.local}/${a.prefixlen}`);
    const ports = rows.filter((r) => r.master === b.ifname).map((r) => r.ifname);
    out.push(`  ${b.ifname.padEnd(15)} ${b.address ?? ''} ${b.flags?.includes('UP') ? 'up  ' : 'down'} ${addrs.join(' ') || '(no address)'}; ports: ${ports.join(' ') || 'none'}`);
  }
  out.push(`Host veths made by vnet (${veths.length}):`);
  for (const l of veths) {
    const [net, cid, ...rest] = l.ifalias!.slice(ALIAS_PREFIX.length).split(':');
    out.push(`  ${l.ifname.padEnd(15)} ${l.address ?? ''} ${l.flags?.includes('UP') ? 'up  ' : 'down'} network ${net} container ${cid} ${rest.join(':')}${l.master ? ` (port of ${l.master})` : ''}`);
  }
  // Everything shown was read from files and links: print it, never let it drive the terminal.
  return out.map(escapeControls).join('\n') + '\n';
}
