import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readlink, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniError, Code } from '../src/errors.js';
import { ipamEnv, rejects, useTempDataDir } from './helpers/ipam.js';
import { LOCK_DIR, LOCK_STALE_MS, withLock } from '../src/ipam/lock.js';
import { runIpam } from '../src/ipam/plugin.js';

let dataDir: string;
useTempDataDir('vnet-ipam-lock-', (d) => (dataDir = d));

const env = ipamEnv;
const conf = () => ({ cniVersion: '1.1.0', name: 'net1', ipam: { type: 'vnet-ipam', dataDir, ranges: [[{ subnet: '10.0.0.0/24' }]] } });
const dir = () => join(dataDir, 'net1');
const lockDir = () => join(dir(), LOCK_DIR);

const gone = async (path: string) => stat(path).then(
  () => false,
  () => true,
);

describe('the lock is released after the critical section, whatever happens in it', () => {
  it('after success and after a throw', async () => {
    await runIpam(env('ADD'), conf());
    expect(await gone(lockDir())).toBe(true);
    await expect(runIpam(env('ADD'), conf())).rejects.toBeInstanceOf(CniError);
    expect(await gone(lockDir())).toBe(true);
  });
});

describe('a lock held by a live process makes others wait, then give up with code 11', () => {
  it('times out as "try again later"', async () => {
    await mkdir(dir(), { recursive: true });
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const holding = withLock(dir(), () => {
      entered();
      return new Promise<void>((r) => (release = r));
    });
    // The holder is in its critical section, so the lock is taken, before the waiter starts.
    await inside;
    expect(await gone(lockDir())).toBe(false);
    const err = await rejects(withLock(dir(), async () => 'never', { timeoutMs: 300 }));
    expect(err.code).toBe(Code.tryAgain);
    expect(err.message).toMatch(/timed out after 0\.3s waiting for the lock .*\.lock; try again later/);
    release();
    await holding;
    expect(await withLock(dir(), async () => 'now')).toBe('now');
  });
});

describe('a lock is stale only when its holder is dead, and then taken at once', () => {
  it('a lock directory with no marker, older than the stale time, is taken over', async () => {
    await mkdir(lockDir(), { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await utimes(lockDir(), old, old);
    const r = await runIpam(env('ADD'), conf());
    expect(r?.ips[0]?.address).toBe('10.0.0.2/24');
  });
  it('a marker naming a pid that no longer runs (or runs as another process) is taken over at once', async () => {
    await mkdir(lockDir(), { recursive: true });
    const ns = (await readlink('/proc/self/ns/pid')).replace(/\D/g, '');
    // pid 1 started long before this test; the start time in the marker is not pid 1's
    await writeFile(join(lockDir(), `1.12345678901.${ns}.abcdef`), '');
    // taken on the first try: with no time at all to wait, the lock is still had
    expect(await withLock(dir(), () => 'taken', { timeoutMs: 0 })).toBe('taken');
  });
  it('a dead holder’s marker that cannot be removed (a directory under that name) is refused with code 5, not retried without end', async () => {
    const ns = (await readlink('/proc/self/ns/pid')).replace(/\D/g, '');
    const marker = join(lockDir(), `1.12345678901.${ns}.abcdef`);
    await mkdir(join(marker, 'inside'), { recursive: true });
    const err = await rejects(runIpam(env('ADD'), conf()));
    expect(err.code).toBe(Code.io);
    expect(err.message).toContain(`cannot clear the stale lock ${lockDir()}`);
    expect(await gone(marker)).toBe(false);
  });
  it('a name in the lock that is not a marker (an older format, <pid>-<hex>, say) is refused at once with code 5, naming it; the lock is left alone', async () => {
    await mkdir(lockDir(), { recursive: true });
    const stranger = join(lockDir(), '4242-abcdef');
    await writeFile(stranger, '');
    const old = new Date(Date.now() - 3600_000);
    await utimes(stranger, old, old);
    // Neither waited on (that would end in code 11, try again) nor taken, however old.
    const err = await rejects(runIpam(env('ADD'), conf()));
    expect(err.code).toBe(Code.io);
    expect(err.message).toContain(`${stranger} is not a lock marker (<pid>.<start time>.<pid namespace>.<hex>)`);
    expect(await gone(stranger)).toBe(false);
  });

  describe('a real process SIGKILLed while holding the lock', () => {
    let bundle: string;
    let bundleDir: string;
    beforeAll(async () => {
      bundleDir = await mkdtemp(join(tmpdir(), 'vnet-ipam-lock-bundle-'));
      bundle = join(bundleDir, 'holder.mjs');
      // A holder process running our lock module: takes the lock, says so, and hangs.
      await build({
        stdin: {
          contents: `import { writeFileSync } from 'node:fs';
            import { withLock } from ${JSON.stringify(resolve('src/ipam/lock.ts'))};
            const ms = Number(process.argv[3] ?? Infinity);
            if (ms === Infinity) await withLock(process.argv[2], async () => { console.log('locked'); await new Promise(() => setInterval(() => {}, 1000)); });
            // works synchronously, as the plugin's holders do (no timer could refresh anything), for
            // ms; its last act inside the lock is to create the file argv[4]
            else await withLock(process.argv[2], () => { console.log('locked'); const end = Date.now() + ms; while (Date.now() < end); writeFileSync(process.argv[4], ''); });
            console.log('released');`,
          resolveDir: resolve('.'),
          loader: 'ts',
        },
        bundle: true,
        platform: 'node',
        format: 'esm',
        outfile: bundle,
        logLevel: 'silent',
        banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      });
    });
    afterAll(async () => {
      await rm(bundleDir, { recursive: true, force: true });
    });

    it(`a live holder working three times the old stale limit (${(3 * LOCK_STALE_MS) / 1000} s) keeps the lock; a waiter gets it after`, async () => {
      await mkdir(dir(), { recursive: true });
      const done = join(bundleDir, 'holder-done');
      const child = spawn(process.execPath, [bundle, dir(), String(3 * LOCK_STALE_MS + 500), done], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      const closed = new Promise<number | null>((r) => child.on('close', r));
      await new Promise<void>((ok) => child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('locked')) ok();
      }));
      const r = await runIpam(env('ADD'), conf());
      // The holder's last act inside the lock came before the waiter had it: the waiter waited.
      expect(await gone(done)).toBe(false);
      expect(r?.ips[0]?.address).toBe('10.0.0.2/24');
      // and the holder never lost it (withLock would have thrown: exit 1)
      expect(await closed).toBe(0);
      expect(out).toBe('locked\nreleased\n');
    }, 30_000);

    it('the next ADD succeeds, taking the lock at once', async () => {
      await mkdir(dir(), { recursive: true });
      const child = spawn(process.execPath, [bundle, dir()], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((ok, fail) => {
          child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && ok());
          child.on('exit', (code) => fail(new Error(`holder exited early (${code})`)));
        });
        expect(await gone(lockDir())).toBe(false);
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        expect(await withLock(dir(), () => 'taken', { timeoutMs: 0 })).toBe('taken');
        const r = await runIpam(env('ADD'), conf());
        expect(r?.ips[0]?.address).toBe('10.0.0.2/24');
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });
  });
});

describe('a compromised lock is surfaced as an error, not a crash', () => {
  it('losing the lock while holding it fails the critical section', async () => {
    await mkdir(dir(), { recursive: true });
    const err = await rejects(
      withLock(dir(), async () => {
        // Someone removes our lock: the end of the critical section notices.
        await rm(lockDir(), { recursive: true });
      }),
    );
    expect(err.code).toBe(Code.io);
    expect(err.message).toMatch(/^lost the lock on .* while holding it/);
  });

  it('assertHeld throws inside the critical section too', async () => {
    await mkdir(dir(), { recursive: true });
    let inside: unknown;
    await withLock(dir(), async (lock) => {
      await rm(lockDir(), { recursive: true });
      try {
        lock.assertHeld();
      } catch (err) {
        inside = err;
      }
    }).catch(() => undefined);
    expect(inside).toBeInstanceOf(CniError);
  });
});
