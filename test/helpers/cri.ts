// A small CRI client (what kubelet speaks to containerd, the pod-sandbox part of it): gRPC over
// containerd's unix socket with @grpc/grpc-js, the messages loaded at run time by
// @grpc/proto-loader from runtime.v1's api.proto of the installed containerd's own source
// (scripts/cri-setup.sh fetches it into .tmp/cri; no copy is kept in the repository).
//
// Field names are camelCase (proto-loader's default), enums are their names ('POD', 'SANDBOX_READY'),
// int64s are strings, and unset fields come back with their defaults.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { randomUUID } from 'node:crypto';

export interface PodSandboxStatus {
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  createdAt: string;
  network: { ip: string; additionalIps: { ip: string }[] } | null;
  linux: { namespaces: { options: { network: string; pid: string; ipc: string } } } | null;
  labels: Record<string, string>;
}

/** containerd 1.6's `info` of a verbose PodSandboxStatus (pkg/cri/server/sandbox_status.go, SandboxInfo). */
export interface SandboxInfo {
  pid: number;
  processStatus: string;
  netNamespaceClosed: boolean;
  image: string;
  runtimeSpec: { linux?: { namespaces?: { type: string; path?: string }[]; cgroupsPath?: string } };
  cniResult: { Interfaces?: Record<string, { IPConfigs?: { IP: string; Gateway: string }[]; Mac?: string; Sandbox?: string }> } | null;
  [k: string]: unknown;
}

export interface PodSandbox {
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
}

type Callback = (err: grpc.ServiceError | null, res: any) => void;
type Stub = grpc.Client & Record<string, (req: object, opts: grpc.CallOptions, cb: Callback) => void>;

const loaded = new Map<string, any>();
function serviceOf(protoFile: string, name: 'RuntimeService' | 'ImageService'): grpc.ServiceClientConstructor {
  let pkg = loaded.get(protoFile);
  if (!pkg) {
    const def = protoLoader.loadSync(protoFile, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
    pkg = grpc.loadPackageDefinition(def) as any;
    loaded.set(protoFile, pkg);
  }
  return pkg.runtime.v1[name] as grpc.ServiceClientConstructor;
}

export class CriClient {
  private readonly stub: Stub;
  private readonly images: Stub;

  constructor(
    protoFile: string,
    /** containerd's gRPC socket (its [grpc] address). */
    readonly socket: string,
    /** Each call's deadline. */
    private readonly timeoutMs = 30_000,
  ) {
    const Runtime = serviceOf(protoFile, 'RuntimeService');
    const Images = serviceOf(protoFile, 'ImageService');
    this.stub = new Runtime(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Stub;
    this.images = new Images(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Stub;
  }

  private call<T>(method: string, req: object, timeoutMs = this.timeoutMs, stub = this.stub): Promise<T> {
    return new Promise((done, fail) => {
      stub[method]!(req, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) fail(new Error(`CRI ${method}: ${err.details || err.message}`));
        else done(res as T);
      });
    });
  }

  version(timeoutMs?: number) {
    return this.call<{ version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>('Version', {}, timeoutMs);
  }

  /** The runtime's conditions by type: RuntimeReady, NetworkReady (false until a CNI config loads). */
  async conditions(): Promise<Record<string, { status: boolean; reason: string; message: string }>> {
    const r = await this.call<{ status: { conditions: { type: string; status: boolean; reason: string; message: string }[] } }>('Status', {});
    return Object.fromEntries(r.status.conditions.map((c) => [c.type, c]));
  }

  /**
   * RunPodSandbox as kubelet asks for a pod: its own network, PID and IPC namespaces, cgroups under
   * `cgroupParent` (cgroupfs). The answer is the sandbox ID.
   */
  async runPodSandbox(o: { name: string; namespace?: string; cgroupParent: string; labels?: Record<string, string> }): Promise<string> {
    const config = {
      metadata: { name: o.name, uid: randomUUID(), namespace: o.namespace ?? 'default', attempt: 0 },
      hostname: o.name,
      labels: o.labels ?? {},
      linux: {
        cgroupParent: o.cgroupParent,
        securityContext: { namespaceOptions: { network: 'POD', pid: 'POD', ipc: 'POD' } },
      },
    };
    const r = await this.call<{ podSandboxId: string }>('RunPodSandbox', { config, runtimeHandler: '' });
    return r.podSandboxId;
  }

  stopPodSandbox(id: string, timeoutMs?: number) {
    return this.call<object>('StopPodSandbox', { podSandboxId: id }, timeoutMs);
  }

  removePodSandbox(id: string, timeoutMs?: number) {
    return this.call<object>('RemovePodSandbox', { podSandboxId: id }, timeoutMs);
  }

  async podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; info: SandboxInfo }> {
    const r = await this.call<{ status: PodSandboxStatus; info: Record<string, string> }>('PodSandboxStatus', { podSandboxId: id, verbose: true });
    return { status: r.status, info: JSON.parse(r.info.info ?? '{}') as SandboxInfo };
  }

  async listPodSandbox(timeoutMs?: number): Promise<PodSandbox[]> {
    const r = await this.call<{ items: PodSandbox[] }>('ListPodSandbox', {}, timeoutMs);
    return r.items;
  }

  /** The image as CRI's own image store knows it (what RunPodSandbox resolves the sandbox image in), or null. */
  async imageStatus(ref: string): Promise<{ id: string; repoTags: string[]; size: string } | null> {
    const r = await this.call<{ image: { id: string; repoTags: string[]; size: string } | null }>('ImageStatus', { image: { image: ref } }, undefined, this.images);
    return r.image;
  }

  close(): void {
    this.stub.close();
    this.images.close();
  }
}

/** Every address CRI reports for a sandbox: `ip`, then `additionalIps`. */
export const sandboxIps = (s: PodSandboxStatus): string[] => (s.network ? [s.network.ip, ...s.network.additionalIps.map((x) => x.ip)].filter(Boolean) : []);
