// GC's input (spec 1.1.0): the attachments a network still has; everything else is to be freed.
import * as z from 'zod/mini';
import { CniError, Code } from '../errors.js';
import { describeIssue } from '../issue.js';

export interface Attachment {
  containerId: string;
  ifname: string;
}

const attachmentsSchema = z.nullable(z.array(z.object({ containerID: z.string(), ifname: z.string() })));

/**
 * The attachments GC must keep. Spec 1.1.0 names the key `cni.dev/valid-attachments`; early
 * drafts said `cni.dev/attachments`. `null` (a Go nil slice) is an empty list: free everything.
 * A missing key is an error rather than "free everything": a GC request without it is malformed.
 */
export function validAttachments(conf: Record<string, unknown>): Attachment[] {
  const key = ['cni.dev/valid-attachments', 'cni.dev/attachments'].find((k) => k in conf);
  if (!key) {
    throw new CniError(Code.invalidConfig, 'cni.dev/valid-attachments: missing (GC needs the list of attachments to keep; [] frees all)');
  }
  const parsed = attachmentsSchema.safeParse(conf[key]);
  if (!parsed.success) throw new CniError(Code.invalidConfig, describeIssue(parsed.error.issues[0]!, conf[key], [key]));
  return (parsed.data ?? []).map((x) => ({ containerId: x.containerID, ifname: x.ifname }));
}
