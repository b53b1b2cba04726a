// Golden plans: every mode's ADD and DEL plan, per layout, family and masquerade, built in-process
// from typed inputs (no root, no binary, no kernel) and compared with the text in
// test/__snapshots__/plans/. A plan is data: its sentences are the log and `vnet explain`, its
// commands are what runs on the node and in the pod, its expectations what CHECK reads back. A
// change to any of them shows here as a diff to review (`npx vitest run test/plans.test.ts -u`
// rewrites the files once the change is meant).
import { describe, expect, it } from 'vitest';
import { Code } from '../src/errors.js';
import type { NodeFacts } from '../src/net/facts.js';
import { addrOf, cidrOf, mac, type IfName } from '../src/net/values.js';
import type { BridgeConf, MasqConf, ModeName, NetConf } from '../src/config/netconf.js';
import { gcPlan, type Owned } from '../src/plan/gc.js';
import type { AddInput, PodIp } from '../src/plan/input.js';
import { modeOf } from '../src/plan/modes.js';
import { containerMac, hostVethName } from '../src/plan/names.js';
import type { Plan } from '../src/plan/plan.js';

const cidr = (s: string) => cidrOf('test', s, Code.internal);
const addr = (s: string) => addrOf('test', s, Code.internal);
const attachment = { containerId: 'c0ffee0123456789', ifname: 'eth0' };

/** One line per thing a step does, in order; what the executor and CHECK would see. */
function render(plan: Plan): string {
  const out: string[] = [];
  for (const s of plan.steps) {
    const flags = [s.side, s.lifecycle, ...(s.alone ? ['alone'] : []), ...(s.tolerate ? [`tolerates /${s.tolerate.source}/`] : []), ...(s.doneWhenGone ? [`done when ${s.doneWhenGone} is gone`] : [])];
    out.push(`# ${s.say}`, `  [${flags.join(', ')}]`);
    for (const c of s.ip ?? []) out.push(`  ip ${c.join(' ')}`);
    for (const l of s.nft ?? []) out.push(`  nft ${l}`);
    for (const [k, v] of s.sysctl ?? []) out.push(`  sysctl ${k}=${v}`);
    for (const c of s.restore ?? []) out.push(`  restore: ip ${c.join(' ')}`);
    for (const c of s.undo ?? []) out.push(`  undo: ip ${c.join(' ')}`);
    for (const l of s.nftUndo ?? []) out.push(`  undo: nft ${l}`);
    for (const e of s.expect ?? []) out.push(`  expect ${JSON.stringify(e)}`);
  }
  return `${out.join('\n')}\n`;
}

interface Layout {
  mode: ModeName;
  bridge: BridgeConf;
  masq?: MasqConf;
  v4: PodIp;
  v6: PodIp;
  viaHost: string[];
  facts?: NodeFacts;
}

const exclude = ['10.244.0.0/16', '10.220.0.0/16', 'fd00:244::/32', 'fd00:220::/32'].map(cidr);
const vnet4 = { cidr: cidr('10.224.0.10/16'), gateway: addr('10.224.0.1') };
const vnet6 = { cidr: cidr('fd00:224::10/64'), gateway: addr('fd00:224::1') };
const uplinkFacts = (moved: boolean): NodeFacts => ({
  bridgeExists: moved,
  mtu: 1500,
  uplink: {
    name: 'eth0' as IfName,
    mac: mac('00:0d:3a:00:02:04'),
    mtu: 1500,
    ...(moved ? { master: 'azure0' } : {}),
    addrs: [cidr('10.224.0.4/16'), cidr('fd00:224::4/64')],
    routes: [
      { dst: cidr('0.0.0.0/0'), gw: addr('10.224.0.1'), proto: 'dhcp' },
      { dst: cidr('::/0'), gw: addr('fd00:224::1'), proto: 'ra', metric: 1024 },
    ],
  },
});

const pod4 = { cidr: cidr('10.244.1.5/24'), gateway: addr('10.244.1.1') };
const pod6 = { cidr: cidr('fd00:244:1::5/64'), gateway: addr('fd00:244:1::1') };
const azureBridge = (moved: boolean): Layout => ({
  mode: 'bridge',
  bridge: { name: 'azure0' as IfName, isGateway: false, hairpin: true, promisc: false, uplink: 'eth0' as IfName },
  v4: vnet4,
  v6: vnet6,
  viaHost: ['169.254.20.10'],
  facts: uplinkFacts(moved),
});

const LAYOUTS: Record<string, Layout> = {
  transparent: { mode: 'transparent', bridge: { name: 'azure0' as IfName, isGateway: false, hairpin: false, promisc: false }, v4: vnet4, v6: vnet6, viaHost: ['169.254.20.10'] },
  overlay: { mode: 'transparent', bridge: { name: 'azure0' as IfName, isGateway: false, hairpin: false, promisc: false }, masq: { exclude }, v4: pod4, v6: pod6, viaHost: [] },
  kubenet: { mode: 'bridge', bridge: { name: 'cbr0' as IfName, isGateway: true, hairpin: true, promisc: false }, masq: { exclude }, v4: pod4, v6: pod6, viaHost: [] },
  'azure-bridge': azureBridge(false),
  'azure-bridge-moved': azureBridge(true),
};

function addInput(l: Layout, dual: boolean, podMac = containerMac('azure', attachment)): AddInput {
  return {
    network: 'azure',
    podMac,
    bridge: l.bridge,
    masq: l.masq,
    attachment,
    ifname: 'eth0' as IfName,
    netnsPath: '/var/run/netns/cni-1234',
    ips: dual ? [l.v4, l.v6] : [l.v4],
    routes: [{ dst: cidr('0.0.0.0/0') }, ...(dual ? [{ dst: cidr('::/0') }] : [])],
    mtu: 1500,
    ipsToRouteViaHost: l.viaHost.map(addr),
    facts: l.facts ?? { bridgeExists: false },
  };
}

describe('every mode’s ADD plan, per layout and family, is the golden one', () => {
  for (const [name, l] of Object.entries(LAYOUTS)) {
    for (const dual of [false, true]) {
      it(`${name}, ${dual ? 'dual stack' : 'IPv4'}`, async () => {
        await expect(render(modeOf(l.mode).addPlan(addInput(l, dual)))).toMatchFileSnapshot(`__snapshots__/plans/add-${name}-${dual ? 'dual' : 'v4'}.txt`);
      });
    }
  }
});

describe('every mode’s DEL plan, with the pod’s addresses known and without, is the golden one', () => {
  for (const [name, l] of Object.entries(LAYOUTS)) {
    if (name.endsWith('-moved')) continue;
    for (const known of [true, false]) {
      it(`${name}, ${known ? 'addresses known' : 'no address known'}`, async () => {
        const plan = modeOf(l.mode).delPlan({ network: 'azure', attachment, podMac: containerMac('azure', attachment), bridge: l.bridge, masq: l.masq, podIps: known ? [l.v4.cidr, l.v6.cidr] : [] });
        await expect(render(plan)).toMatchFileSnapshot(`__snapshots__/plans/del-${name}-${known ? 'known' : 'unknown'}.txt`);
      });
    }
  }
});

describe('a pod MAC the runtime chooses (runtimeConfig.mac) is the pod’s everywhere ADD puts one, and the veth’s alias records it', () => {
  for (const name of ['transparent', 'azure-bridge']) {
    it(name, async () => {
      const plan = modeOf(LAYOUTS[name]!.mode).addPlan(addInput(LAYOUTS[name]!, true, mac('0a:58:0a:f4:01:05')));
      await expect(render(plan)).toMatchFileSnapshot(`__snapshots__/plans/add-${name}-runtime-mac.txt`);
    });
  }
});

describe('GC’s plan removes exactly what no valid attachment owns', () => {
  const conf = { name: 'azure', mode: 'bridge', bridge: LAYOUTS.kubenet!.bridge, masq: { exclude } } as NetConf;
  const gone = { containerId: 'deadbeef', ifname: 'eth0' };
  const chose = { containerId: 'macchosen', ifname: 'eth0' };
  const kept = veth(attachment);
  function veth(a: { containerId: string; ifname: string }) {
    return hostVethName('azure', a);
  }
  const owned: Owned = {
    veths: [
      { name: kept, attachment, podMac: containerMac('azure', attachment) },
      { name: veth(gone), attachment: gone, podMac: containerMac('azure', gone) },
      // a pod whose MAC the runtime chose: its alias recorded it
      { name: veth(chose), attachment: chose, podMac: mac('0a:58:0a:f4:01:08') },
      // an alias cut at 255 bytes: the veth goes, its neighbour entries cannot be told
      { name: 'azvcut0', attachment: undefined },
      { name: 'bad name', attachment: undefined },
    ],
    neighbours: [
      { ip: addr('10.244.1.5'), mac: '02:00:00:00:00:01' },
      { ip: addr('10.244.1.6'), mac: containerMac('azure', gone) },
      { ip: addr('10.244.1.8'), mac: '0a:58:0a:f4:01:08' },
    ],
    masq: [
      { ip: addr('10.244.1.5'), tag: kept },
      { ip: addr('10.244.1.6'), tag: veth(gone) },
      { ip: addr('10.244.1.7'), tag: '' },
    ],
    macDnat: [{ ip: addr('10.244.1.6'), mac: mac('02:00:00:00:00:06'), tag: veth(gone) }],
    unread: [],
  };
  it('the stale veths, their neighbour entries (by the pod MAC each alias names) and every element whose tag is no valid veth; a name the kernel gave that is not a name is reported', async () => {
    const { plan, unremovable: problems } = gcPlan(conf, owned, new Set([kept]));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^cannot delete link "bad name": must not contain whitespace/);
    await expect(render(plan)).toMatchFileSnapshot('__snapshots__/plans/gc-kubenet.txt');
  });
});
