// A conflist run the way libcni runs it (SPEC.md section 3, "Network configuration lists"): ADD
// through every plugin in order, each given the previous one's result as prevResult; CHECK through
// every plugin with the cached result; DEL in reverse order with the cached result. Each plugin
// gets the list's name and cniVersion, and runtimeConfig only for the capabilities it declares.
// The plugin binaries are looked up on CNI_PATH and run inside the node's namespace.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsPath, run } from './sys.js';

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: ({ type: string; capabilities?: Record<string, boolean> } & Record<string, unknown>)[];
}

export interface Attachment {
  containerId: string;
  /** The pod's network namespace name (under /var/run/netns). */
  netns: string;
  ifname: string;
  /** Runtime config offered to plugins that declare the capability (portMappings, bandwidth, …). */
  runtimeConfig?: Record<string, unknown>;
}

export class ChainError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly output: string,
  ) {
    super(`${command} failed in plugin ${plugin}: ${output.trim()}`);
  }
}

export class Runtime {
  constructor(
    /** The node's namespace name. */
    readonly node: string,
    readonly cniPath: string[],
    /** Where results are cached between ADD and CHECK/DEL, as libcni's /var/lib/cni/results. */
    readonly cacheDir: string,
  ) {}

  private cacheFile = (list: Conflist, a: Attachment) => join(this.cacheDir, `${list.name}-${a.containerId}-${a.ifname}.json`);

  private binary(type: string): string {
    for (const dir of this.cniPath) if (existsSync(join(dir, type))) return join(dir, type);
    throw new ChainError(type, 'lookup', `plugin ${type} is on none of ${this.cniPath.join(':')}`);
  }

  private async call(command: string, list: Conflist, i: number, a: Attachment, prevResult?: unknown): Promise<unknown> {
    const plugin = list.plugins[i]!;
    const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    const caps = Object.entries(plugin.capabilities ?? {}).filter(([, on]) => on).map(([k]) => k);
    const rc = Object.fromEntries(caps.filter((k) => a.runtimeConfig?.[k] !== undefined).map((k) => [k, a.runtimeConfig![k]]));
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
    if (prevResult !== undefined) conf.prevResult = prevResult;
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: a.containerId,
      CNI_NETNS: nsPath(a.netns),
      CNI_IFNAME: a.ifname,
      CNI_PATH: this.cniPath.join(':'),
    };
    const r = await run(['nsenter', `--net=${nsPath(this.node)}`, this.binary(plugin.type)], env, JSON.stringify(conf));
    if (r.code !== 0) throw new ChainError(plugin.type, command, r.stdout + r.stderr);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  }

  /** ADD through the chain; the last result is cached and returned. A failure DELs what was added. */
  async add(list: Conflist, a: Attachment): Promise<any> {
    let result: unknown;
    for (let i = 0; i < list.plugins.length; i++) {
      try {
        result = await this.call('ADD', list, i, a, result);
      } catch (err) {
        // As libcni: a failed ADD is followed by a DEL of the whole list, so nothing is left.
        await this.del(list, a).catch(() => undefined);
        throw err;
      }
    }
    mkdirSync(this.cacheDir, { recursive: true });
    writeFileSync(this.cacheFile(list, a), JSON.stringify(result));
    return result;
  }

  cached(list: Conflist, a: Attachment): unknown {
    const f = this.cacheFile(list, a);
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
  }

  async check(list: Conflist, a: Attachment): Promise<void> {
    const prev = this.cached(list, a);
    for (let i = 0; i < list.plugins.length; i++) await this.call('CHECK', list, i, a, prev);
  }

  /** DEL in reverse order, every plugin tried; the first failure is thrown after all ran. */
  async del(list: Conflist, a: Attachment): Promise<void> {
    const prev = this.cached(list, a);
    let first: unknown;
    for (let i = list.plugins.length - 1; i >= 0; i--) {
      await this.call('DEL', list, i, a, prev).catch((e) => (first ??= e));
    }
    if (first) throw first;
    rmSync(this.cacheFile(list, a), { force: true });
  }
}
