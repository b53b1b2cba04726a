// Entry: the file we run as picks the role (vnet or vnet-ipam, like busybox); CNI_COMMAND picks
// the protocol or the human CLI. This is the one place that prints a result or an error.
// It exports nothing: in the V8 startup snapshot of the this-cpu build there is no `module`.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import v8 from 'node:v8';
import { parseEnv, checkArgs, type CniEnv } from './cni/env.js';
import { asCniError } from './errors.js';
import { resultAsVersion, type Result } from './cni/result.js';
import { caveats, unimplementedFields } from './config/unimplemented.js';
import { CURRENT_VERSION, versionAnswer } from './cni/version.js';
import { decodeStdin, decoded, logSettings, parseCommon, parseNetConf, type NetConf, type Stdin } from './config/netconf.js';
import { configureLog, log, stepDone, timing } from './log.js';
import { processCount } from './proc.js';
import { cli, type Role } from './cli/index.js';
import { markSnapshotBuild } from './build-kind.js';
import { warmUp } from './snapshot.js';
import { add } from './commands/add.js';
import { del } from './commands/del.js';
import { check } from './commands/check.js';
import { gc } from './commands/gc.js';
import { status } from './commands/status.js';
import { parseRequest, type Request } from './commands/request.js';
import { runIpam } from './ipam/plugin.js';

/** CNI_ARGS keys we understand; others need IgnoreUnknown=1 (kubelet always sends it). */
const KNOWN_ARGS = ['IP', 'MAC', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'];

function roleOf(argv0: string): Role {
  return basename(argv0).startsWith('vnet-ipam') ? 'vnet-ipam' : 'vnet';
}

async function plugin(role: Role): Promise<number> {
  // Whatever the caller's umask: state files 0600, directories 0700, the log 0600.
  process.umask(0o077);
  const stdin = decodeStdin(readStdin());
  let cniVersion = versionOf(stdin);
  // VERSION looks at nothing else and logs nothing: answer before any set-up (libcni sends it often).
  if (process.env.CNI_COMMAND === 'VERSION') return print(versionAnswer(cniVersion));
  // Before anything can fail: errors in the environment or the config go to the config's log too.
  configureLog({ ...logSettings(stdin), component: role });
  try {
    const env = parseEnv(process.env);
    let result: Result | undefined;
    if (role === 'vnet-ipam') {
      const { json } = parseCommon(stdin, env.command);
      checkArgs(env.args, KNOWN_ARGS);
      result = await ipamVerb(env, json);
    } else {
      const conf = parseNetConf(stdin, env.command);
      checkArgs(env.args, KNOWN_ARGS);
      result = await mainVerb(env, conf, decoded(stdin));
    }
    if (result) print(resultAsVersion(result, cniVersion));
    return 0;
  } catch (err) {
    const e = asCniError(err);
    log.error(`${process.env.CNI_COMMAND} failed: code ${e.code}: ${e.message}${e.details ? ` (${e.details})` : ''}`);
    if (e.code >= 999 && err instanceof Error && err.stack) log.debug(err.stack);
    if (!/^\d+\.\d+\.\d+$/.test(cniVersion)) cniVersion = CURRENT_VERSION;
    print(e.toJSON(cniVersion));
    return 1;
  }
}

async function mainVerb(env: CniEnv, conf: NetConf, stdin: Request['stdin']): Promise<Result | undefined> {
  configureLog({ file: conf.logFile, level: conf.logLevel, component: 'vnet' });
  log.info(
    `Processing ${env.command} command with args {ContainerID:${env.containerId} Netns:${env.netns ?? ''} IfName:${env.ifname} Args:${[...env.args].map(([k, v]) => `${k}=${v}`).join(';')} Path:${env.path.join(':')}}`,
  );
  stepDone('config');
  const done = (r?: Result) => {
    const t = timing();
    log.info(`${env.command} done in ${t.total.toFixed(1)} ms, ${processCount.n} process${processCount.n === 1 ? '' : 'es'} started (${t.text})`);
    return r;
  };
  if (env.command === 'ADD') {
    const ignored = unimplementedFields(stdin.json);
    if (ignored.length) log.warn(`config fields other plugins know and vnet does not implement: ${ignored.join('; ')}`);
    for (const c of caveats(stdin.json)) log.warn(c);
  }
  const req = parseRequest(env, conf, stdin);
  switch (req.command) {
    case 'ADD':
      return done(await add(req));
    case 'DEL':
      return done(void (await del(req)));
    case 'CHECK':
      return done(void (await check(req)));
    case 'STATUS':
      return done(void (await status(req)));
    case 'GC':
      return done(void (await gc(req)));
  }
}

/** vnet-ipam run on its own (by another plugin, or the reference bridge): it logs its own steps. */
async function ipamVerb(env: CniEnv, json: Record<string, unknown>): Promise<Result | undefined> {
  log.info(`Processing ${env.command} command with args {ContainerID:${env.containerId} IfName:${env.ifname}} for network ${String(json.name)}`);
  const r = await runIpam(env, json);
  log.info(`${env.command} done${r ? `: ${r.ips.map((i) => i.address).join(', ') || 'no address'}` : ''}`);
  return r;
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

/** The cniVersion the caller speaks, for VERSION and error answers; the newest if unknown. */
function versionOf({ json }: Stdin): string {
  const v = json?.cniVersion;
  return typeof v === 'string' && v ? v : CURRENT_VERSION;
}

function print(obj: unknown): number {
  process.stdout.write(JSON.stringify(obj) + '\n');
  return 0;
}

async function run(): Promise<void> {
  stepDone('start-up');
  const role = roleOf(process.argv0 || process.argv[1] || 'vnet');
  const code = process.env.CNI_COMMAND
    ? await plugin(role)
    : await cli(role, process.argv.slice(2));
  // Exit now: nothing is left to do once the answer is printed (stdout and the log are written
  // synchronously, pipes and files alike), and a timer or handle left by a library must not keep
  // the runtime waiting.
  process.exit(code);
}

// In a V8 startup snapshot (the this-cpu build) main runs when the snapshot is deserialised; every
// module is imported statically above so that their start-up work is in the snapshot already.
if (v8.startupSnapshot?.isBuildingSnapshot()) {
  markSnapshotBuild();
  void warmUp();
  v8.startupSnapshot.setDeserializeMainFunction(() => void run());
}
else void run();
