// Which executable this is, for `vnet version`: one made with a V8 startup snapshot (the
// this-cpu build, which node refuses on a CPU unlike the build machine's) or a portable one.
// main.ts marks it while the snapshot is made, so the mark travels inside the snapshot.
let fromSnapshot = false;

export function markSnapshotBuild(): void {
  fromSnapshot = true;
}

export function buildKind(): string {
  return fromSnapshot
    ? "this-cpu (a V8 startup snapshot: starts only on CPUs with the build machine's features)"
    : 'portable (starts on any x86-64 Linux node)';
}
