#!/usr/bin/env node
// The nodes' own IPv4 network, from `docker network inspect kind` or `podman network inspect kind`
// on stdin: Docker lists it under IPAM.Config[].Subnet, podman (4.x) under subnets[].subnet. Both
// engines give kind's network an IPv6 subnet too; the first IPv4 one is printed.
//   docker network inspect kind | node scripts/kind/node-net.mjs
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

const isV4Cidr = (s) => typeof s === 'string' && isIPv4(s.split('/')[0]) && /^\/([0-9]|[12][0-9]|3[0-2])$/.test(s.slice(s.indexOf('/')));

/** The first IPv4 subnet of an inspect answer (either engine's shape), or an Error saying why not. */
export function nodeNet(text) {
  let networks;
  try {
    networks = JSON.parse(text);
  } catch {
    return new Error('the inspect output is not JSON');
  }
  const net = Array.isArray(networks) ? networks[0] : undefined;
  if (!net || typeof net !== 'object') return new Error('the inspect output holds no network');
  const subnets = [...(net.IPAM?.Config ?? []).map((c) => c?.Subnet), ...(net.subnets ?? []).map((s) => s?.subnet)];
  const v4 = subnets.find(isV4Cidr);
  return v4 ?? new Error(`no IPv4 subnet among ${JSON.stringify(subnets)}`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const found = nodeNet(readFileSync(0, 'utf8'));
  if (found instanceof Error) {
    process.stderr.write(`node-net.mjs: ${found.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${found}\n`);
}
