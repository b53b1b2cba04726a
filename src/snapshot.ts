// The this-cpu build's V8 startup snapshot: while it is made, the public verbs run once on
// throwaway input, so that what a first run compiles (zod's parsers, V8's functions on the way,
// node's spawn path) is in the snapshot instead of in every call. This is the only module that
// does work at build time; the build runs the event loop dry before it takes the snapshot, so
// everything here has ended by then, and nothing here may leave a timer or a handle.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv, type CniEnv } from './cni/env.js';
import { Code } from './errors.js';
import { resultAsVersion } from './cni/result.js';
import { MODES, parseNetConf } from './config/netconf.js';
import { runIpam } from './ipam/plugin.js';
import { batchLine } from './net/command.js';
import { processCount, startProcess } from './proc.js';
import { addInput, typedIpam } from './plan/input.js';
import { modeOf } from './plan/modes.js';
import type { IfName } from './net/values.js';

/** Runs every warm-up; returns what failed (only a head start lost: the build goes on). */
export async function warmUp(): Promise<string[]> {
  const settled = await Promise.allSettled([mainPlugin(), ipamPlugin(), spawn()]);
  processCount.n = 0;
  return settled.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error)?.message ?? r.reason)] : []));
}

/** The pure part of the main plugin's ADD, in every mode: config, plan, result. */
async function mainPlugin(): Promise<void> {
  const env = parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'warm-up', CNI_NETNS: '/x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: '/x' });
  for (const mode of MODES) {
    const conf = parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'warm-up', type: 'vnet', mode, mtu: 1500, ipMasq: true, ipam: { type: 'vnet-ipam' } }), 'ADD');
    const typed = typedIpam({ ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '0.0.0.0/0' }] }, 'warm-up', Code.internal);
    const input = addInput(conf, { containerId: env.containerId, ifname: env.ifname }, '/x', typed, { bridgeExists: false }, 1500);
    const plan = modeOf(mode).addPlan(input);
    for (const step of plan.steps) for (const cmd of step.ip ?? []) batchLine(cmd);
    resultAsVersion(modeOf(mode).result(input), conf.cniVersion);
  }
}

/** vnet-ipam's ADD, CHECK and DEL, whole, in a temp directory (its lock holders are synchronous: no timer). */
async function ipamPlugin(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'vnet-ipam-warm-up-'));
  try {
    const conf = {
      cniVersion: '1.1.0',
      name: 'warm-up',
      ipam: {
        type: 'vnet-ipam',
        dataDir,
        ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20', gateway: '10.0.0.1' }], [{ subnet: 'fd00::/64' }]],
        routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
      },
      runtimeConfig: { ips: ['10.0.0.11/24'] },
      args: { cni: { ips: ['fd00::11'] } },
    };
    const env = (command: CniEnv['command']): CniEnv => ({ command, containerId: 'warm-up', netns: '/x', ifname: 'eth0' as IfName, args: new Map(), path: [] });
    const result = await runIpam(env('ADD'), conf);
    await runIpam(env('CHECK'), { ...conf, prevResult: result });
    await runIpam(env('DEL'), conf);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** One child process, started and fed the way the plan's `ip` processes are. */
async function spawn(): Promise<void> {
  const prog = ['/usr/bin/true', '/bin/true'].find((p) => existsSync(p));
  if (prog) await startProcess([prog], { fd3: 0 }).finish('');
}
