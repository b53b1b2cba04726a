#!/usr/bin/env node
// Build one native executable, dist/bin/vnet, and dist/bin/vnet-ipam (a hard link to it; main.ts
// picks the role from process.argv0, which is the name it was run by). No node needed to run it.
//
//   1. esbuild bundles src/main.ts into one script, dist/vnet.cjs: an IIFE (not `format: cjs`,
//      whose module.exports would throw in a snapshot, which has no `module`) calling require()
//      for built-ins only.
//   2. @yao-pkg/pkg (SEA mode, with this very node binary, stripped of its symbols first) makes a
//      blob of it and injects it into a copy of node. Two kinds of blob, named for where they run:
//      - portable (the default): the bundle with a V8 code cache. Runs on any x86-64 Linux node
//        (the baseline: QEMU's qemu64 CPU model, checked below under qemu-x86_64 when it is
//        installed); the bundle's top-level code runs in every call.
//      - this-cpu: a V8 startup snapshot, the bundle's top level run HERE, at build time (main.ts
//        hands over to run() with setDeserializeMainFunction). Faster to start, but node refuses
//        the snapshot on a CPU whose features V8 sees differ from this machine's ("Invalid
//        snapshot data in single executable binary", exit 14, before any of our code runs): for
//        nodes known to have this very CPU. Top-level code must not read the environment, argv,
//        the clock, or leave handles open (signal handlers, timers, sockets); a guard fails the
//        build when it reads CNI_*, VNET_* or PATH, or makes a timer.
//   3. pkg swallows injection errors (Promise.allSettled) and may leave a plain copy of node, so
//      the result is checked, and run, before it replaces dist/bin/vnet (atomically, by rename).
//
// Usage: node scripts/build.mjs [--sea portable|this-cpu|plain] [--entry FILE] [--bin-dir DIR] [--verbose]
//   --bin-dir: where vnet and vnet-ipam go, the bundle beside them (default: dist/bin, dist/vnet.cjs).
//   --sea (or VNET_SEA): portable by default; plain is the bundle alone, compiled in every call.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { withoutDebugTail } from './elf.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const { values: opts } = parseArgs({
  options: {
    entry: { type: 'string' },
    sea: { type: 'string', default: process.env.VNET_SEA || 'portable' },
    verbose: { type: 'boolean', default: false },
    'bin-dir': { type: 'string' },
  },
});

const workDirs = new Set(); // ours, under .tmp; removed on every exit path

const SEA_CONFIGS = {
  portable: { useSnapshot: false, useCodeCache: true },
  'this-cpu': { useSnapshot: true, useCodeCache: false },
  plain: { useSnapshot: false, useCodeCache: false },
};
const mode = opts.sea;
if (!(mode in SEA_CONFIGS)) fail(`unknown --sea ${mode} (want ${Object.keys(SEA_CONFIGS).join('|')})`);
// The CPU every portable build must start on: QEMU's qemu64 model (x86-64 with SSE3, CX16 and
// LAHF; no SSSE3, SSE4, POPCNT, AVX or BMI). The README's "Which build where" says the same.
const BASELINE_CPU = 'qemu64';

const entry = opts.entry ? path.resolve(opts.entry) : path.join(root, 'src', 'main.ts');
const bin = opts['bin-dir'] ? path.resolve(opts['bin-dir']) : path.join(root, 'dist', 'bin');
const bundle = opts['bin-dir'] ? path.join(bin, 'vnet.cjs') : path.join(root, 'dist', 'vnet.cjs');
const exe = path.join(bin, 'vnet');
const ipam = path.join(bin, 'vnet-ipam');
const tmpRoot = path.join(root, '.tmp');
// Must match postject's fuse and what node looks for; ':1' once a blob has been injected.
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

// Runs first in the bundle, and only does anything while a startup snapshot is being built. It
// watches the variables this project reads (CNI_*, VNET_*, PATH) and whole-env copies; library
// debug knobs (NODE_DEBUG and the like) and node's own reads may freeze, that is harmless.
const GUARD_ID = 'vnet:snapshot-guard';
const GUARD = `
import v8 from 'node:v8';
if (v8.startupSnapshot?.isBuildingSnapshot()) {
  const env = process.env;
  const seen = new Set();
  // Is the frame that touched process.env (Error, fromNode, [note,] trap, caller) node's own?
  // Node removes Error.stackTraceLimit while it builds a snapshot; lend it one for a moment.
  const fromNode = (i) => {
    const had = Object.prototype.hasOwnProperty.call(Error, 'stackTraceLimit');
    const old = Error.stackTraceLimit;
    Error.stackTraceLimit = 10;
    const stack = String(new Error().stack ?? '');
    if (had) Error.stackTraceLimit = old;
    else delete Error.stackTraceLimit;
    return /\\(?node:/.test(stack.split('\\n')[i] ?? '');
  };
  const note = (k) => { if (typeof k === 'string' && /^(CNI_|VNET_|PATH$)/.test(k) && !fromNode(4)) seen.add(k); };
  process.env = new Proxy(env, {
    get(t, k) { note(k); return Reflect.get(t, k); },
    has(t, k) { note(k); return Reflect.has(t, k); },
    ownKeys(t) { if (!fromNode(3)) seen.add('all of it'); return Reflect.ownKeys(t); },
  });
  // A timer made while the snapshot is built (even one cleared at once) leaves node's timer list
  // for its duration in the snapshot; a run's timer that lands in that stale list is never armed
  // (seen: lock waits that ended the process with no answer). Our code makes none then.
  const timers = new Set();
  const originals = {};
  for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
    const orig = (originals[name] = globalThis[name]);
    globalThis[name] = function (...args) {
      if (!fromNode(3)) timers.add(name);
      return orig.apply(this, args);
    };
  }
  v8.startupSnapshot.addSerializeCallback(() => {
    process.env = env;
    Object.assign(globalThis, originals);
    if (timers.size) {
      process.stderr.write('vnet-build: code run while the startup snapshot was built called ' + [...timers].join(', ') +
        '; a timer made then breaks the timers of every run (lock waits ended with no answer): skip it while v8.startupSnapshot.isBuildingSnapshot()\\n');
      process.exit(1);
    }
    if (seen.size === 0) return;
    process.stderr.write('vnet-build: top-level code read process.env (' + [...seen].join(', ') +
      ') while the startup snapshot was built, so the build-time value would be frozen in; read it inside a function\\n');
    process.exit(1);
  });
}
`;

const rel = (p) => path.relative(root, p);
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const secs = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

function fail(message) {
  for (const dir of workDirs) fs.rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`build: FAILED: ${message}\n`);
  process.exit(1);
}

function stage(message) {
  process.stdout.write(`build: ${message}\n`);
}

function warn(message) {
  process.stderr.write(`build: WARNING: ${message}\n`);
}

class BuildError extends Error {}

/** The line of a long error (V8 fatal dump, node stack) that says what went wrong. */
function summary(err) {
  const text = String(err instanceof Error ? err.message : err);
  if (text.includes('CheckGlobalAndEternalHandles')) {
    return 'V8 could not snapshot a live handle left by top-level code (a signal handler, timer or ' +
      'socket: create it inside a function, at run time)';
  }
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/^(Error while creating|\(node:\d+\)|\(Use `node|#|at |\d+: 0x|-----)/.test(l));
  const pick = [/vnet-build:/, /Check failed/, /^\w*Error\b/, /error/i].reduce((found, re) => found ?? lines.find((l) => re.test(l)), undefined) ?? lines[0] ?? 'unknown error';
  return pick.length > 300 ? `${pick.slice(0, 300)}...` : pick;
}

async function bundleStage() {
  if (!fs.existsSync(entry)) fail(`entry ${rel(entry)} does not exist`);
  const esbuild = await import('esbuild');
  const t0 = Date.now();
  let result;
  try {
    result = await esbuild.build({
      stdin: {
        contents: `import ${JSON.stringify(GUARD_ID)};\nimport ${JSON.stringify(entry)};\n`,
        resolveDir: root,
        sourcefile: 'vnet-entry.js',
        loader: 'js',
      },
      plugins: [
        {
          name: 'snapshot-guard',
          setup(b) {
            b.onResolve({ filter: /^vnet:snapshot-guard$/ }, (a) => ({ path: a.path, namespace: 'vnet' }));
            b.onLoad({ filter: /.*/, namespace: 'vnet' }, () => ({ contents: GUARD, loader: 'js', resolveDir: root }));
          },
        },
      ],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'iife',
      mainFields: ['module', 'main'],
      minify: true,
      legalComments: 'none',
      sourcemap: false,
      logLevel: 'warning',
    });
  } catch {
    fail('esbuild failed (see above)');
  }
  if (result.errors.length) fail('esbuild reported errors');
  stage(`bundled ${rel(entry)} -> ${rel(bundle)} (${kib(fs.statSync(bundle).size)}, ${secs(t0)})`);
}

/**
 * The node the blob is injected into: this very node without its symbol table and debug info
 * (the same code, a smaller file). binutils' strip would repack the file and move the text off the
 * offset its linker gave it (2 MiB-congruent with its address), so the kernel maps more of the
 * file per fault and every run's RSS grows; stripping after injection breaks the injected segment
 * (it segfaults). So we cut the file ourselves (elf.mjs): nothing before the cut changes. This
 * node itself when its layout is not that shape.
 */
function baseNode(work) {
  const copy = path.join(work, 'node');
  try {
    fs.writeFileSync(copy, withoutDebugTail(fs.readFileSync(process.execPath)), { mode: 0o755 });
    if (spawnSync(copy, ['-e', '0'], { env: {} }).status !== 0) throw new Error('the cut copy does not run');
    return copy;
  } catch (err) {
    warn(`keeping node whole (${err.message}): the executable carries its ${mib(fs.statSync(process.execPath).size)} with symbols`);
    return process.execPath;
  }
}

/** Blob + injection into <work>/vnet; returns its path. Throws BuildError. */
async function seaStage(mode, work) {
  // pkg makes its work directory under os.tmpdir() and runs `npx postject` there. A directory
  // inside the project lets npx find the local postject; one per build keeps builds apart.
  process.env.TMPDIR = work;
  const out = path.join(work, 'vnet');
  // pkg's CLI cannot take our node or SEA config (its --sea downloads node from nodejs.org), so
  // its sea() is called by its module path: package.json pins the exact version this was read
  // against, and a different one installed stops the build here, not somewhere inside pkg.
  const pinned = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies['@yao-pkg/pkg'];
  const installed = require('@yao-pkg/pkg/package.json').version;
  if (installed !== pinned) throw new BuildError(`@yao-pkg/pkg ${installed} is installed, the build was written for ${pinned} (package.json pins it): npm ci`);
  const { log } = require('@yao-pkg/pkg/lib-es5/log.js');
  log.info = () => {}; // pkg's "> Creating sea-config.json file..." chatter; warnings still show
  const sea = require('@yao-pkg/pkg/lib-es5/sea.js').default;
  const base = baseNode(work);
  try {
    await sea(bundle, {
      // output must be absolute: pkg resolves it after chdir-ing into its temp directory.
      targets: [{ platform: 'linux', arch: process.arch, nodeRange: 'node20', output: out }],
      nodePath: base,
      seaConfig: { disableExperimentalSEAWarning: true, ...SEA_CONFIGS[mode] },
    });
  } catch (err) {
    throw new BuildError(opts.verbose ? String(err?.message ?? err) : summary(err));
  }
  verifyInjected(out, base);
  return out;
}

// pkg bakes inside Promise.allSettled: a failed postject goes unreported and leaves either
// nothing or a plain copy of node at the output path. Check the file itself.
function verifyInjected(out, base) {
  if (!fs.existsSync(out)) throw new BuildError('pkg produced no executable (postject failed? try `npx postject --help`)');
  const buf = fs.readFileSync(out);
  const node = fs.readFileSync(base);
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  if (buf.length === node.length && sha(buf) === sha(node)) throw new BuildError('the executable is a plain copy of node: no blob injected');
  if (!buf.includes(`${FUSE}:1`)) throw new BuildError('no NODE_SEA_BLOB injected (the SEA fuse is not flipped)');
  if (buf.length <= node.length) throw new BuildError('the executable is no larger than node: no blob');
}

/** Run it as a CNI runtime would (minimal env) and as a human would; throws BuildError. */
function smoke(out) {
  const run = (args, extraEnv, input) =>
    spawnSync(out, args, {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...extraEnv },
      input,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: 10_000,
      encoding: 'utf8',
    });
  const show = (r) => `exit ${r.status}${r.signal ? ` signal ${r.signal}` : ''}; stdout: ${r.stdout.trim().slice(0, 300)}; stderr: ${r.stderr.trim().slice(0, 300)}`;
  // A plain node would run a script called "version" (or sit in a REPL if stdin were open).
  const v = run(['version'], {});
  const text = v.stdout + v.stderr;
  if (v.error || v.signal) throw new BuildError(`\`vnet version\` did not finish (${v.error?.message ?? v.signal})`);
  if (!/vnet/.test(text) || /^v\d+\.\d+\.\d+\s*$|Welcome to Node\.js|Cannot find module|node:internal/.test(text)) {
    throw new BuildError(`\`vnet version\` does not look like vnet: ${show(v)}`);
  }
  // The CNI VERSION verb: stdout must be exactly the JSON answer.
  const c = run([], { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  let answer;
  try {
    answer = JSON.parse(c.stdout);
  } catch {
    /* reported below */
  }
  if (c.status !== 0 || answer?.cniVersion !== '1.0.0' || !Array.isArray(answer?.supportedVersions)) {
    throw new BuildError(`CNI_COMMAND=VERSION gave no version answer: ${show(c)}`);
  }
}

/**
 * A portable build must answer VERSION on the baseline CPU: run it under qemu-x86_64 -cpu qemu64
 * (user-mode QEMU runs one binary on an emulated CPU). A node built for a newer CPU, or a blob
 * that pins one, fails here instead of on a user's node. Without qemu-user, a note says so.
 */
function baselineCheck(out) {
  const qemu = ['/usr/bin/qemu-x86_64', '/usr/bin/qemu-x86_64-static'].find((q) => fs.existsSync(q));
  if (process.arch !== 'x64') return `baseline not checked on ${process.arch}`;
  if (!qemu) {
    warn(`the baseline CPU (${BASELINE_CPU}) is not checked: qemu-x86_64 is missing (apt-get install qemu-user)`);
    return 'baseline not checked';
  }
  const r = spawnSync(qemu, ['-cpu', BASELINE_CPU, out], {
    env: { CNI_COMMAND: 'VERSION' },
    input: '{"cniVersion":"1.0.0"}',
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0 || !r.stdout.includes('"supportedVersions"')) {
    throw new BuildError(`the executable does not start on the baseline CPU (qemu-x86_64 -cpu ${BASELINE_CPU}): exit ${r.status}${r.signal ? ` signal ${r.signal}` : ''}; ${(r.stderr || r.stdout || r.error?.message || '').trim().slice(0, 300)}`);
  }
  return `starts on the baseline CPU (qemu-x86_64 -cpu ${BASELINE_CPU})`;
}

/** Move the checked executable into place; never leaves dist/bin/vnet half-written. */
function install(out) {
  fs.mkdirSync(bin, { recursive: true });
  const next = `${exe}.new-${process.pid}`;
  const nextIpam = `${ipam}.new-${process.pid}`;
  try {
    fs.renameSync(out, next);
  } catch (err) {
    if (err.code !== 'EXDEV') throw err;
    fs.copyFileSync(out, next);
  }
  fs.chmodSync(next, 0o755);
  fs.rmSync(nextIpam, { force: true });
  fs.linkSync(next, nextIpam);
  fs.renameSync(next, exe);
  fs.renameSync(nextIpam, ipam);
}

/** Leftovers of builds that were killed (pkg-sea dirs, our per-build dirs), older than 10 min. */
function cleanStale() {
  const cutoff = Date.now() - 10 * 60_000;
  for (const dir of [tmpRoot, path.join(tmpRoot, 'pkg-sea')]) {
    let names = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const p = path.join(dir, name);
      if (dir === tmpRoot && !name.startsWith('pkg-')) continue;
      try {
        if (fs.statSync(p).mtimeMs < cutoff) fs.rmSync(p, { recursive: true, force: true });
      } catch {
        /* raced with another build */
      }
    }
  }
  try {
    fs.rmdirSync(path.join(tmpRoot, 'pkg-sea')); // only if empty
  } catch {
    /* absent or in use */
  }
}

async function main() {
  await bundleStage();

  try {
    require.resolve('postject/package.json');
  } catch {
    fail('postject is not installed (run npm ci)');
  }
  // pkg runs `node --experimental-sea-config` and `npx` from PATH. The blob (above all a snapshot
  // or code cache) must come from the very node binary it is injected into; no registry lookups.
  const binDirs = [path.dirname(process.execPath), path.join(root, 'node_modules', '.bin')];
  process.env.PATH = [...binDirs, process.env.PATH ?? ''].join(path.delimiter);
  // A snapshot or code cache is tied to the V8 flags it was made with, and the executable runs
  // without any: a --max-old-space-size in NODE_OPTIONS here would make the snapshot unloadable.
  delete process.env.NODE_OPTIONS;
  process.env.npm_config_offline = 'true';
  process.env.npm_config_update_notifier = 'false';

  fs.mkdirSync(tmpRoot, { recursive: true });
  cleanStale();
  const t0 = Date.now();
  const work = fs.mkdtempSync(path.join(tmpRoot, 'pkg-build-'));
  workDirs.add(work);
  try {
    const out = await seaStage(mode, work);
    const size = fs.statSync(out).size;
    smoke(out);
    const baseline = mode === 'this-cpu' ? 'runs only on CPUs with the features V8 sees here' : baselineCheck(out);
    install(out);
    stage(`sea ${mode}: ${rel(exe)} = ${rel(ipam)} (${mib(size)}, ${secs(t0)}, smoke test passed; ${baseline})`);
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    fail(`sea ${mode}: ${err.message}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    workDirs.delete(work);
    cleanStale();
  }
}

main().catch((err) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)));
