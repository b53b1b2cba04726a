#!/usr/bin/env node
// The benchmark: vnet side by side with the reference Go plugins and `node -e 0`, in one run,
// reported as medians and ratios. It creates its own namespaces (prefix vb<pid>) and data dirs
// and deletes them by name at the end, even on failure. dist/bin is the default (portable) build;
// the bench also makes the this-cpu build (a V8 startup snapshot) in its temp dir and runs the two
// side by side, so that what portability costs is a ratio of the same run. Run as root after
// `npm run build`:
//   node scripts/bench.mjs [--runs 30] [--quick] [--out FILE] [--readme]
// --readme also writes the table into scripts/README.md, between <!-- bench --> and <!-- /bench -->.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBenchTable } from './bench-table.mjs';
import { emptySnapshotExe } from './empty-snapshot.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist/bin');
const REF = '/usr/lib/cni';
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    quick: { type: 'boolean' },
    inner: { type: 'string' },
    out: { type: 'string', default: join(root, '.tmp', 'bench.md') },
    // Also put the table into scripts/README.md (its Speed section), between <!-- bench --> and <!-- /bench -->.
    readme: { type: 'boolean' },
  },
});
const RUNS = Number(values.runs);

const sh = (argv, input) => execFileSync(argv[0], argv.slice(1), { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (x) => `${x.toFixed(1)} ms`;

function timed(argv, env, input) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, ...env }, input, encoding: 'utf8' });
  const t = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} ${env.CNI_COMMAND ?? ''} failed: ${r.stdout}${r.stderr}`);
  return { t, out: r.stdout };
}

// ---- outer: make the lab, run this script again inside the node namespace, clean up ----
if (!values.inner) {
  if (process.getuid() !== 0) throw new Error('bench: run as root (it creates network namespaces)');
  if (!existsSync(join(BIN, 'vnet'))) throw new Error('bench: dist/bin/vnet missing: npm run build first');
  const p = `vb${process.pid}`;
  const made = [];
  const dir = mkdtempSync(join(tmpdir(), `${p}-`));
  try {
    for (const n of ['node', 'vnet', ...Array.from({ length: 2 }, (_, i) => `pod${i}`)]) {
      sh(['ip', 'netns', 'add', `${p}-${n}`]);
      made.push(`${p}-${n}`);
    }
    sh(['ip', '-n', `${p}-node`, 'link', 'set', 'lo', 'up']);
    // The node's NIC into a namespace playing the VNet: Azure's bridge layout moves it onto azure0.
    sh(['ip', '-n', `${p}-node`, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vnet0', 'netns', `${p}-vnet`]);
    sh(['ip', '-n', `${p}-node`, 'addr', 'add', '10.87.0.4/16', 'dev', 'eth0']);
    sh(['ip', '-n', `${p}-node`, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', `${p}-vnet`, 'addr', 'add', '10.87.0.1/16', 'dev', 'vnet0']);
    sh(['ip', '-n', `${p}-vnet`, 'link', 'set', 'vnet0', 'up']);
    sh(['ip', '-n', `${p}-node`, 'route', 'add', 'default', 'via', '10.87.0.1']);
    console.log(`build      ${sh([process.execPath, join(root, 'scripts/build.mjs'), '--sea', 'this-cpu', '--bin-dir', join(dir, 'this-cpu')]).trim().split('\n').pop()}`);
    const r = spawnSync('ip', ['netns', 'exec', `${p}-node`, process.execPath, fileURLToPath(import.meta.url), '--inner', JSON.stringify({ p, dir }), '--runs', String(RUNS), '--out', values.out, ...(values.quick ? ['--quick'] : [])], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
    if (r.status === 0 && values.readme) {
      const file = join(root, 'scripts', 'README.md');
      console.log(`${writeBenchTable(file, readFileSync(values.out, 'utf8'))}: the benchmark table is updated`);
    }
  } finally {
    for (const n of made) spawnSync('ip', ['netns', 'del', n]);
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  await inner(JSON.parse(values.inner));
}

async function inner({ p, dir }) {
  const rows = [];
  let burstWall;
  let burstCpu;
  const report = (section, name, value, base) => {
    rows.push({ section, name, value, ratio: base ? value / base : undefined });
    console.log(`${section.padEnd(10)} ${name.padEnd(52)} ${ms(value).padStart(10)}${base ? `  ×${(value / base).toFixed(2)}` : ''}`);
  };
  const THIS_CPU = join(dir, 'this-cpu');
  const cni = (command, extra = {}) => ({ CNI_COMMAND: command, CNI_IFNAME: 'eth0', CNI_PATH: `${BIN}:${REF}`, VNET_LOG_FILE: join(dir, 'vnet.log'), ...extra });

  // 1. Start-up: one VERSION call each, interleaved so that machine noise hits all alike.
  const starters = [
    ['node -e 0', [process.execPath, '-e', '0'], {}],
    ['vnet VERSION', [join(BIN, 'vnet')], cni('VERSION')],
    ['vnet-ipam VERSION', [join(BIN, 'vnet-ipam')], cni('VERSION')],
    ['vnet VERSION (this-cpu build)', [join(THIS_CPU, 'vnet')], cni('VERSION')],
    ['host-local VERSION (Go)', [join(REF, 'host-local')], cni('VERSION')],
    ['bridge VERSION (Go)', [join(REF, 'bridge')], cni('VERSION')],
    ['ptp VERSION (Go)', [join(REF, 'ptp')], cni('VERSION')],
  ];
  // The floors, in the same run: a node executable whose startup snapshot holds nothing of ours
  // (what any snapshot-built plugin starts from), and one `ip -batch` with nothing to do, alone
  // and through nsenter (what each of a plan's processes costs before its first command).
  const empty = emptySnapshotFloor(dir);
  if (empty) starters.push(['empty-snapshot executable (floor of a node snapshot)', [empty], {}]);
  starters.push(['ip -batch, empty (floor of one ip process)', ['/usr/sbin/ip', '-batch', '/dev/null'], {}]);
  starters.push(['nsenter + ip -batch, empty (the pod-side floor)', ['/usr/bin/nsenter', `--net=/var/run/netns/${p}-pod1`, '/usr/sbin/ip', '-batch', '/dev/null'], {}]);
  const st = starters.map(() => []);
  for (let i = 0; i < RUNS; i++) starters.forEach(([, argv, env], k) => st[k].push(timed(argv, env, '{"cniVersion":"1.0.0"}').t));
  const nodeBase = median(st[0]);
  starters.forEach(([name], k) => report('start-up', name, median(st[k]), nodeBase));

  // 2. ADD/DEL of a pod: vnet transparent vs the reference ptp (veth + host /32 routes, the
  //    closest Go equivalent), each with its own IPAM, interleaved.
  const pods = [`/var/run/netns/${p}-pod0`, `/var/run/netns/${p}-pod1`];
  const vnetConf = JSON.stringify({ cniVersion: '1.0.0', name: 'benchnet', type: 'vnet', mtu: 1500, ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.78.0.0/16' }]], dataDir: join(dir, 'ipam-a') } });
  const vnetHl = JSON.stringify({ ...JSON.parse(vnetConf), ipam: { type: 'host-local', ranges: [[{ subnet: '10.79.0.0/16' }]], dataDir: join(dir, 'ipam-b') } });
  const ptpConf = JSON.stringify({ cniVersion: '1.0.0', name: 'benchptp', type: 'ptp', mtu: 1500, ipam: { type: 'host-local', ranges: [[{ subnet: '10.80.0.0/16' }]], dataDir: join(dir, 'ipam-c') } });
  // Bridge mode, kubenet's layout, against the reference bridge plugin (each on a bridge of its own).
  const kubenet = (type, bridge, subnet, ipam) => JSON.stringify({ cniVersion: '1.0.0', name: `bench${bridge}`, type, mode: 'bridge', bridge, isGateway: true, mtu: 1500, ipam: { ranges: [[{ subnet, gateway: subnet.replace(/0\/24$/, '1') }]], dataDir: join(dir, `ipam-${bridge}`), ...ipam } });
  const flows = [
    ['vnet transparent + vnet-ipam (in-process)', join(BIN, 'vnet'), vnetConf, pods[0]],
    ['vnet transparent + host-local (exec)', join(BIN, 'vnet'), vnetHl, pods[0]],
    ['ptp + host-local (Go reference)', join(REF, 'ptp'), ptpConf, pods[1]],
    ['vnet bridge (kubenet) + vnet-ipam', join(BIN, 'vnet'), kubenet('vnet', 'vbr0', '10.83.0.0/24', { type: 'vnet-ipam' }), pods[0]],
    ['vnet bridge (kubenet, ipMasq) + vnet-ipam', join(BIN, 'vnet'), JSON.stringify({ ...JSON.parse(kubenet('vnet', 'vbr1', '10.84.0.0/24', { type: 'vnet-ipam' })), ipMasq: true }), pods[0]],
    ['bridge + host-local (Go reference)', join(REF, 'bridge'), kubenet('bridge', 'rbr0', '10.85.0.0/24', { type: 'host-local' }), pods[1]],
    ['bridge (Go reference) + vnet-ipam (exec)', join(REF, 'bridge'), kubenet('bridge', 'rbr1', '10.86.0.0/24', { type: 'vnet-ipam' }), pods[1]],
    ['vnet bridge (Azure, uplink eth0) + vnet-ipam', join(BIN, 'vnet'), JSON.stringify({ cniVersion: '1.0.0', name: 'benchazure', type: 'vnet', mode: 'bridge', bridge: 'azure0', uplink: 'eth0', mtu: 1500, ipam: { type: 'vnet-ipam', ranges: [[{ subnet: '10.87.0.0/16', rangeStart: '10.87.1.0', rangeEnd: '10.87.1.250', gateway: '10.87.0.1' }]], dataDir: join(dir, 'ipam-azure') } }), pods[0]],
    // The same two vnet flows with the this-cpu build (its own vnet-ipam first on CNI_PATH: in-process).
    ['vnet transparent + vnet-ipam (this-cpu build)', join(THIS_CPU, 'vnet'), JSON.stringify({ ...JSON.parse(vnetConf), name: 'benchtc', ipam: { ...JSON.parse(vnetConf).ipam, ranges: [[{ subnet: '10.77.0.0/16' }]] } }), pods[1], { CNI_PATH: `${THIS_CPU}:${REF}` }],
    ['vnet bridge (kubenet) + vnet-ipam (this-cpu build)', join(THIS_CPU, 'vnet'), kubenet('vnet', 'vbr2', '10.76.0.0/24', { type: 'vnet-ipam' }), pods[1], { CNI_PATH: `${THIS_CPU}:${REF}` }],
  ];
  const adds = flows.map(() => []);
  const checks = flows.map(() => []);
  const dels = flows.map(() => []);
  const procs = flows.map(() => '');
  // Each flow logs to a file of its own: its last ADD line says how many processes it started,
  // and every verb's last line says where its time went (see timing() in src/log.ts).
  const logOf = (k) => join(dir, `flow-${k}.log`);
  const lastAddDone = (k) =>
    (existsSync(logOf(k)) ? readFileSync(logOf(k), 'utf8') : '').split('\n').filter((l) => /ADD done/.test(l)).pop()?.replace(/.*ADD done in [\d.]+ ms, /, '') ?? '';
  for (let i = 0; i < RUNS; i++) {
    flows.forEach(([name, bin, conf, netns, extra], k) => {
      const env = cni('ADD', { CNI_CONTAINERID: `bench-${i}`, CNI_NETNS: netns, VNET_LOG_FILE: logOf(k), ...extra });
      const added = timed([bin], env, conf);
      adds[k].push(added.t);
      if (i === RUNS - 1 && name.startsWith('vnet')) procs[k] = lastAddDone(k);
      checks[k].push(timed([bin], { ...env, CNI_COMMAND: 'CHECK' }, JSON.stringify({ ...JSON.parse(conf), prevResult: JSON.parse(added.out) })).t);
      dels[k].push(timed([bin], { ...env, CNI_COMMAND: 'DEL' }, conf).t);
    });
  }
  flows.forEach(([name], k) => report('pod', `ADD  ${name}`, median(adds[k]), nodeBase));
  flows.forEach(([name], k) => report('pod', `CHECK ${name}`, median(checks[k]), nodeBase));
  flows.forEach(([name], k) => report('pod', `DEL  ${name}`, median(dels[k]), nodeBase));
  flows.forEach(([name], k) => procs[k] && console.log(`pod        one ADD, ${name}: ${procs[k]} (from its log)`));
  // Where the time goes inside vnet, transparent and kubenet, from the plugin's own log lines.
  const inside = [0, 3].flatMap((k) => ['ADD', 'CHECK', 'DEL'].map((verb) => ({ flow: flows[k][0], verb, ...stepMedians(logOf(k), verb) })));
  for (const r of inside) console.log(`inside     ${r.verb} ${r.flow}: ${r.text}`);

  // 3. IPAM alone, ADD then DEL, at 10 and at 60,000 allocations in one /16.
  if (!values.quick) {
    for (const n of [10, 60000]) {
      const plugins = [
        ['vnet-ipam', join(BIN, 'vnet-ipam')],
        ['host-local (Go)', join(REF, 'host-local')],
      ];
      const confs = plugins.map(([name]) => {
        const dataDir = join(dir, `fill-${name.split(' ')[0]}-${n}`);
        populate(dataDir, 'fill', n, name === 'vnet-ipam');
        // 180,000 small files are dirty now: flushed in the background, they would slow what follows.
        spawnSync('sync');
        return JSON.stringify({ cniVersion: '1.0.0', name: 'fill', ipam: { type: 'x', ranges: [[{ subnet: '10.81.0.0/16' }]], dataDir } });
      });
      const a = plugins.map(() => []);
      const d = plugins.map(() => []);
      for (let i = 0; i < RUNS; i++) {
        plugins.forEach(([, bin], k) => {
          const env = cni('ADD', { CNI_CONTAINERID: `probe-${i}`, CNI_NETNS: '/nonexistent' });
          a[k].push(timed([bin], env, confs[k]).t);
          d[k].push(timed([bin], { ...env, CNI_COMMAND: 'DEL' }, confs[k]).t);
        });
      }
      plugins.forEach(([name], k) => report('ipam', `ADD  ${name} at ${n} allocations`, median(a[k]), nodeBase));
      plugins.forEach(([name], k) => report('ipam', `DEL  ${name} at ${n} allocations`, median(d[k]), nodeBase));
    }

    // 4. Burst: 100 ADDs at once, separate processes; three rounds, each on a fresh store, the
    //    median wall reported (one round swings with whatever else the machine does).
    for (const [name, bin] of [
      ['vnet-ipam', join(BIN, 'vnet-ipam')],
      ['host-local (Go)', join(REF, 'host-local')],
    ]) {
      const rounds = [];
      for (let round = 0; round < 3; round++) {
        const dataDir = join(dir, `burst-${name.split(' ')[0]}-${round}`);
        const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'burst', ipam: { type: 'x', ranges: [[{ subnet: '10.82.0.0/16' }]], dataDir } });
        spawnSync('sync'); // nothing of the earlier sections left to write back meanwhile
        const c0 = childTicks();
        const t0 = process.hrtime.bigint();
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => run(bin, cni('ADD', { CNI_CONTAINERID: `burst-${i}`, CNI_NETNS: '/nonexistent' }), conf)),
        );
        const wall = Number(process.hrtime.bigint() - t0) / 1e6;
        const errors = results.filter((r) => r.code !== 0).length;
        const ips = new Set(results.map((r) => r.ip).filter(Boolean));
        rounds.push({ wall, errors, ips: ips.size, cpu: (childTicks() - c0) * 10 });
      }
      const errors = Math.max(...rounds.map((r) => r.errors));
      const ips = Math.min(...rounds.map((r) => r.ips));
      const wall = median(rounds.map((r) => r.wall));
      report('burst', `100 parallel ADDs, ${name}: ${errors} errors, ${ips} distinct IPs (median of 3 rounds)`, wall);
      if (name === 'vnet-ipam') {
        burstWall = wall;
        // What the wall is made of: CPU per call under contention, and how busy both cores were.
        const r = rounds.find((x) => x.wall === wall) ?? rounds[0];
        burstCpu = { perCall: r.cpu / 100, busy: r.cpu / (availableParallelism() * r.wall) };
        console.log(`burst      vnet-ipam: ${burstCpu.perCall.toFixed(1)} ms CPU per call during the burst, cores busy ${(burstCpu.busy * 100).toFixed(0)}% of the wall`);
      }
    }
  }

  // 5. Peak RSS and CPU time per call, from /usr/bin/time (a few runs each, not timed).
  const usage = (argv, env, input) => {
    const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', ...argv], { env: { PATH: process.env.PATH, ...env }, input, encoding: 'utf8' });
    const [rss, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
    return { rss, cpu: (user + sys) * 1000 };
  };
  const rssOf = (argv, env, input, n = 5) => {
    const us = Array.from({ length: n }, () => usage(argv, env, input));
    return { rss: median(us.map((u) => u.rss)), cpu: median(us.map((u) => u.cpu)) };
  };
  // Fresh copies of both executables: a file run thousands of times may have its text collapsed
  // into huge pages by khugepaged, and max RSS counts those shared pages whole (measured: the same
  // vnet binary at 60 MiB from a hot file, 45 MiB from a fresh copy). Both sides alike.
  const fresh = join(dir, 'rss-bin');
  mkdirSync(fresh, { recursive: true });
  copyFileSync(process.execPath, join(fresh, 'node'));
  copyFileSync(join(BIN, 'vnet'), join(fresh, 'vnet'));
  linkSync(join(fresh, 'vnet'), join(fresh, 'vnet-ipam'));
  // CPU time per call: the children's user+system time from /proc/self/stat (in ticks), over many
  // sequential calls, since one call is below /usr/bin/time's 10 ms resolution.
  const cpuPerCall = (mk, n = 40) => {
    const t0 = childTicks();
    for (let i = 0; i < n; i++) {
      const [argv, env, input] = mk(i);
      spawnSync(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, ...env }, input });
    }
    return ((childTicks() - t0) * 10) / n; // ms, at 100 ticks per second
  };
  const ipamCpu = cpuPerCall((i) => [[join(BIN, 'vnet-ipam')], cni('ADD', { CNI_CONTAINERID: `cpu-${i}`, CNI_NETNS: '/nonexistent' }), JSON.stringify({ cniVersion: '1.0.0', name: 'cpu', ipam: { type: 'x', ranges: [[{ subnet: '10.89.0.0/16' }]], dataDir: join(dir, 'cpu') } })]);
  const nodeCpu = cpuPerCall(() => [[process.execPath, '-e', '0'], {}, '']);
  console.log(`cpu        node -e 0 ${nodeCpu.toFixed(1)} ms, vnet-ipam ADD ${ipamCpu.toFixed(1)} ms per call (children's user+sys over 40 calls)`);
  const nodeUse = rssOf([join(fresh, 'node'), '-e', '0'], {}, '');
  const versionUse = rssOf([join(fresh, 'vnet')], cni('VERSION'), '{"cniVersion":"1.0.0"}');
  const ipamConf = JSON.stringify({ cniVersion: '1.0.0', name: 'rss', ipam: { type: 'x', ranges: [[{ subnet: '10.88.0.0/16' }]], dataDir: join(dir, 'rss') } });
  const ipamUse = rssOf([join(fresh, 'vnet-ipam')], cni('ADD', { CNI_CONTAINERID: 'rss', CNI_NETNS: '/nonexistent' }), ipamConf, 1);
  // CNI_PATH = the fresh copies: found there, vnet-ipam is this very file and runs in-process.
  const addUse = usage([join(fresh, 'vnet')], cni('ADD', { CNI_CONTAINERID: 'rss-add', CNI_NETNS: pods[0], CNI_PATH: fresh }), vnetConf);
  const emptyUse = empty ? rssOf([copyTo(empty, join(fresh, 'empty'))], {}, '') : undefined;
  timed([join(BIN, 'vnet')], cni('DEL', { CNI_CONTAINERID: 'rss-add', CNI_NETNS: pods[0] }), vnetConf);
  for (const [name, u] of [['node -e 0', nodeUse], ['empty-snapshot executable', emptyUse], ['vnet VERSION', versionUse], ['vnet-ipam ADD', ipamUse], ['vnet ADD transparent', addUse]].filter(([, u]) => u)) {
    console.log(`rss        ${name.padEnd(52)} ${`${(u.rss / 1024).toFixed(1)} MiB`.padStart(10)}  ×${(u.rss / nodeUse.rss).toFixed(2)}   cpu ${u.cpu.toFixed(0)} ms`);
  }

  // 6. The targets (issue 12), as ratios of this run.
  const at = (name) => rows.find((r) => r.name === name)?.value;
  const ptpDelCost = at('DEL  ptp + host-local (Go reference)') - at('ptp VERSION (Go)');
  // What bounds each target, in this run's numbers: the floors above and the plugin's own steps.
  const emptyAt = at('empty-snapshot executable (floor of a node snapshot)');
  const ipFloor = at('ip -batch, empty (floor of one ip process)');
  const podFloor = at('nsenter + ip -batch, empty (the pod-side floor)');
  const steps = (k, verb) => inside.find((r) => r.flow === flows[k][0] && r.verb === verb) ?? { text: 'no log lines', step: {} };
  const startUp = (k, verb) => `start-up ${ms(steps(k, verb).step['start-up'] ?? NaN)} (in-process; node -e 0 from exec to exit: ${ms(nodeBase)})`;
  const addBound = (k) =>
    `${startUp(k, 'ADD')}, then ${steps(k, 'ADD').text.replace(/^start-up [\d.]+ ms, then /, '')} ms; ` +
    `floors: one ip process ${ms(ipFloor)}, nsenter + ip ${ms(podFloor)}`;
  const targets = [
    ['VERSION ≤ 1.05× node -e 0', at('vnet VERSION') / nodeBase, 1.05,
      emptyAt ? `a node snapshot holding nothing starts at ${(emptyAt / nodeBase).toFixed(2)}×; ours holds our modules (+${ms(at('vnet VERSION') - emptyAt)} to deserialise)` : ''],
    ['ADD transparent ≤ 1.25× node -e 0', at('ADD  vnet transparent + vnet-ipam (in-process)') / nodeBase, 1.25, addBound(0)],
    ['ADD bridge (kubenet) ≤ 1.25× node -e 0', at('ADD  vnet bridge (kubenet) + vnet-ipam') / nodeBase, 1.25, addBound(3)],
    ['DEL transparent ≤ node -e 0 + (ptp DEL − ptp VERSION)', at('DEL  vnet transparent + vnet-ipam (in-process)') / (nodeBase + ptpDelCost), 1,
      `${startUp(0, 'DEL')}, then ${steps(0, 'DEL').text.replace(/^start-up [\d.]+ ms, then /, '')} ms (IPAM and the veth side by side: the kernel's teardown ends it; ptp's DEL − VERSION: ${ms(ptpDelCost)})`],
    ['CHECK transparent ≤ 1.2× node -e 0', at('CHECK vnet transparent + vnet-ipam (in-process)') / nodeBase, 1.2,
      `${startUp(0, 'CHECK')}, then ${steps(0, 'CHECK').text.replace(/^start-up [\d.]+ ms, then /, '')} ms (the reads: one ip process on the node, nsenter + ip in the pod)`],
    ['peak RSS ≤ 1.15× node -e 0', addUse.rss / nodeUse.rss, 1.15, emptyUse ? `a node snapshot holding nothing: ${(emptyUse.rss / nodeUse.rss).toFixed(2)}×` : ''],
    ...(burstWall ? [['burst wall ≤ 1.3 × (100 × ADD CPU ÷ cores)', burstWall / ((100 * ipamCpu) / availableParallelism()), 1.3, `CPU per call under 100 at once ${burstCpu ? `${burstCpu.perCall.toFixed(1)} ms (sequential: ${ipamCpu.toFixed(1)})` : '?'}; cores busy ${burstCpu ? (burstCpu.busy * 100).toFixed(0) : '?'}% of the wall, the rest waits for the network's lock (polled, 5 to 50 ms, jittered)`]] : []),
    ...(at('ADD  vnet-ipam at 60000 allocations') ? [
      ['scale: ADD at 60,000 ≤ 1.1× at 10', at('ADD  vnet-ipam at 60000 allocations') / at('ADD  vnet-ipam at 10 allocations'), 1.1, 'lookups in a directory of 60,000 files (the store reads no listing on ADD or DEL)'],
      ['scale: DEL at 60,000 ≤ 1.1× at 10', at('DEL  vnet-ipam at 60000 allocations') / at('DEL  vnet-ipam at 10 allocations'), 1.1, 'lookups in a directory of 60,000 files (the store reads no listing on ADD or DEL)'],
    ] : []),
  ];
  for (const [name, ratio, limit, bound] of targets) console.log(`target     ${name.padEnd(60)} ${ratio.toFixed(2)} ${ratio <= limit ? 'met' : `NOT met: ${bound}`}`);

  // The two builds side by side (README: "Which build where"), as ratios to node -e 0.
  const builds = [['portable (default, dist/bin)', ''], ['this-cpu (V8 startup snapshot)', ' (this-cpu build)']].map(([build, tag]) => {
    const r = (name) => (at(name) / nodeBase).toFixed(2);
    const cells = [r(tag ? 'vnet VERSION (this-cpu build)' : 'vnet VERSION'),
      ...['ADD ', 'CHECK', 'DEL '].map((v) => r(`${v} vnet transparent + vnet-ipam${tag || ' (in-process)'}`)),
      ...['ADD ', 'DEL '].map((v) => r(`${v} vnet bridge (kubenet) + vnet-ipam${tag}`))];
    console.log(`build      ${build.padEnd(34)} VERSION ${cells[0]}, transparent ADD ${cells[1]} CHECK ${cells[2]} DEL ${cells[3]}, kubenet ADD ${cells[4]} DEL ${cells[5]}`);
    return `| ${build} | ${cells.join(' | ')} | ${(statSync(join(tag ? THIS_CPU : BIN, 'vnet')).size / 2 ** 20).toFixed(1)} MiB |`;
  });

  const md = [
    `Benchmark of ${new Date().toISOString().slice(0, 10)}: \`node scripts/bench.mjs --runs ${RUNS}${values.quick ? ' --quick' : ''}\` (npm run bench), ` +
      `${cpus()[0]?.model ?? 'cpu'} × ${availableParallelism()}, Linux ${release()}, node ${process.version}; medians of ${RUNS} interleaved runs; ratios to \`node -e 0\` (${ms(nodeBase)}) in the same run.`,
    '',
    '| section | what | median | × node -e 0 |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.section} | ${r.name} | ${ms(r.value)} | ${r.ratio ? r.ratio.toFixed(2) : ''} |`),
    `| rss | node -e 0 / vnet VERSION / vnet-ipam ADD / vnet ADD | ${[nodeUse, versionUse, ipamUse, addUse].map((u) => `${(u.rss / 1024).toFixed(1)} MiB`).join(' / ')} | ${[versionUse, ipamUse, addUse].map((u) => (u.rss / nodeUse.rss).toFixed(2)).join(' / ')} |`,
    ...(emptyUse ? [`| rss | empty-snapshot executable | ${(emptyUse.rss / 1024).toFixed(1)} MiB | ${(emptyUse.rss / nodeUse.rss).toFixed(2)} |`] : []),
    `| size | vnet executable / node / the bundle in it | ${[join(BIN, 'vnet'), process.execPath].map((f) => `${(statSync(f).size / 2 ** 20).toFixed(1)} MiB`).join(' / ')} / ${(statSync(join(root, 'dist', 'vnet.cjs')).size / 1024).toFixed(0)} KiB | ${(statSync(join(BIN, 'vnet')).size / statSync(process.execPath).size).toFixed(2)} |`,
    `| cpu | node -e 0 / vnet-ipam ADD, per call | ${nodeCpu.toFixed(1)} / ${ipamCpu.toFixed(1)} ms | ${(ipamCpu / nodeCpu).toFixed(2)} |`,
    ...flows.flatMap(([name], k) => (procs[k] ? [`| processes | one ADD, ${name} | ${procs[k].replace(/ started.*/, '')} | |`] : [])),
    '',
    'Inside vnet (medians of its own log lines: each step\'s end after the previous one, in ms):',
    '',
    '| verb | flow | start-up, then each step |',
    '|---|---|---|',
    ...inside.map((r) => `| ${r.verb} | ${r.flow} | ${r.text} |`),
    '',
    'The two builds, as ratios to `node -e 0` in this run (the portable one starts on any x86-64 node; the this-cpu one only on CPUs like the build machine\'s):',
    '',
    '| build | VERSION | ADD transparent | CHECK transparent | DEL transparent | ADD kubenet | DEL kubenet | size |',
    '|---|---|---|---|---|---|---|---|',
    ...builds,
    '',
    '| target | measured | | what bounds it (this run) |',
    '|---|---|---|---|',
    ...targets.map(([name, ratio, limit, bound]) => `| ${name} | ${ratio.toFixed(2)} | ${ratio <= limit ? 'met' : '**not met**'} | ${ratio <= limit ? '' : bound} |`),
  ].join('\n');
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, md + '\n');
  console.log(`\nwrote ${values.out}`);
}

/** Medians, step by step, of a verb's "done in" lines in a log (see timing() in src/log.ts). */
function stepMedians(file, verb) {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  const by = new Map();
  for (const l of lines) {
    const m = new RegExp(`\\] ${verb} done in [\\d.]+ ms, .*\\(start-up ([\\d.]+) ms, then (.*)\\)$`).exec(l);
    if (!m) continue;
    const steps = [['start-up', Number(m[1])], ...m[2].split(', ').map((s) => { const i = s.lastIndexOf(' '); return [s.slice(0, i), Number(s.slice(i + 1))]; })];
    for (const [name, v] of steps) by.set(name, [...(by.get(name) ?? []), v]);
  }
  const step = Object.fromEntries([...by].map(([name, vs]) => [name, median(vs)]));
  const [first, ...rest] = Object.entries(step);
  const text = first ? `${first[0]} ${first[1].toFixed(1)} ms, then ${rest.map(([n, v]) => `${n} ${v.toFixed(1)}`).join(', ')}` : 'no log lines';
  return { step, text };
}

function copyTo(src, dst) {
  copyFileSync(src, dst);
  return dst;
}

/** The floor of a node snapshot (scripts/empty-snapshot.mjs); undefined, with a note, if it cannot be made here. */
function emptySnapshotFloor(dir) {
  try {
    const exe = emptySnapshotExe(join(dir, 'empty-sea'));
    if (execFileSync(exe, [], { encoding: 'utf8', env: {} }).trim() !== '{}') throw new Error('it does not answer {}');
    return exe;
  } catch (err) {
    console.log(`floor      no empty-snapshot executable: ${err.message.split('\n')[0]}`);
    return undefined;
  }
}

/** This process's children's CPU (user + system), in ticks of 10 ms, from /proc/self/stat. */
function childTicks() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return Number(f[13]) + Number(f[14]); // cutime, cstime
}

function run(bin, env, input) {
  return new Promise((done) => {
    const c = spawn(bin, [], { env: { PATH: process.env.PATH, ...env } });
    let out = '';
    c.stdout.on('data', (b) => (out += b));
    c.on('close', (code) => {
      let ip;
      try {
        ip = JSON.parse(out).ips?.[0]?.address;
      } catch {}
      done({ code, ip });
    });
    c.stdin.end(input);
  });
}

// Fills a host-local-format store with n allocations from 10.81.0.2 on (vnet-ipam's index too).
function populate(dataDir, network, n, index) {
  const d = join(dataDir, network);
  mkdirSync(join(d, '.by-container'), { recursive: true });
  let last = '';
  for (let i = 0; i < n; i++) {
    const v = 0x0a510002 + i;
    const ip = [24, 16, 8, 0].map((s) => (v >>> s) & 255).join('.');
    writeFileSync(join(d, ip), `fill-${i}\r\neth0`);
    if (index) writeFileSync(join(d, '.by-container', `fill-${i}:eth0`), JSON.stringify({ containerID: `fill-${i}`, ifname: 'eth0', ips: [ip] }));
    last = ip;
  }
  if (!index) rmSync(join(d, '.by-container'), { recursive: true });
  writeFileSync(join(d, 'last_reserved_ip.0'), last);
}
