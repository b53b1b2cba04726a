// The mode registry: the one place that knows which modes exist. ADD, CHECK, DEL, GC, explain
// and state ask it for a mode's plans and result; nothing else imports a mode by name.
import type { Result } from '../cni/result.js';
import type { Attachment } from '../config/attachments.js';
import type { AddInput } from './input.js';
import type { Plan } from './plan.js';
import { transparentAddPlan, transparentDelPlan, transparentResult } from './transparent.js';

export interface Mode {
  addPlan(input: AddInput): Plan;
  /** What DEL runs: needs only the names, never the pod's netns or the config's details. */
  delPlan(network: string, a: Attachment): Plan;
  result(input: AddInput): Result;
}

const MODES = {
  transparent: { addPlan: transparentAddPlan, delPlan: transparentDelPlan, result: transparentResult },
} satisfies Record<string, Mode>;

export type ModeName = keyof typeof MODES;

export const modeOf = (name: ModeName): Mode => MODES[name];
