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
  const [links = []] = await ipJson(['link show']);
  const veths = (links as { ifname: string; ifalias?: string; address?: string; flags?: string[] }[]).filter((l) =>
    l.ifalias?.startsWith(ALIAS_PREFIX),
  );
  out.push(`Host veths made by vnet (${veths.length}):`);
  for (const l of veths) {
    const [net, cid, ...rest] = l.ifalias!.slice(ALIAS_PREFIX.length).split(':');
    out.push(`  ${l.ifname.padEnd(15)} ${l.address ?? ''} ${l.flags?.includes('UP') ? 'up  ' : 'down'} network ${net} container ${cid} ${rest.join(':')}`);
  }
  // Everything shown was read from files and links: print it, never let it drive the terminal.
  return out.map(escapeControls).join('\n') + '\n';
}
