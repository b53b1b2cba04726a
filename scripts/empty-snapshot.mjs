// A node executable whose V8 startup snapshot holds nothing but a main printing "{}", made the way
// the build makes ours (a SEA blob injected with postject). The bench runs it as the floor of any
// snapshot-built executable; the tests make it on QEMU's qemu64 CPU model (`cpu`) to get what a
// this-cpu build from another machine is here: node refuses its snapshot before any code runs.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// postject's fuse, as node looks for it (and scripts/build.mjs checks).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Makes dir/empty and returns its path; `cpu`: the blob is made under qemu-x86_64 -cpu <cpu>. */
export function emptySnapshotExe(dir, { cpu } = {}) {
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, 'empty');
  writeFileSync(join(dir, 'main.js'), "require('node:v8').startupSnapshot.setDeserializeMainFunction(() => require('node:fs').writeSync(1, '{}\\n'));\n");
  writeFileSync(join(dir, 'sea.json'), JSON.stringify({ main: join(dir, 'main.js'), output: join(dir, 'blob'), useSnapshot: true, disableExperimentalSEAWarning: true }));
  const make = [process.execPath, '--experimental-sea-config', join(dir, 'sea.json')];
  const argv = cpu ? ['qemu-x86_64', '-cpu', cpu, ...make] : make;
  execFileSync(argv[0], argv.slice(1), { stdio: 'ignore', env: { PATH: process.env.PATH } });
  copyFileSync(process.execPath, exe);
  execFileSync(process.execPath, [join(root, 'node_modules/postject/dist/cli.js'), exe, 'NODE_SEA_BLOB', join(dir, 'blob'), '--sentinel-fuse', FUSE], { stdio: 'ignore' });
  return exe;
}
