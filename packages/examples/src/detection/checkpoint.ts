/** Training checkpoints of a run directory: model, optimiser state and step in one safetensors file, written atomically. */

import { readFile } from "node:fs/promises";
import { type nn, type optim, type Tensor, tensor } from "@focalgrad/core";
import { decodeSafetensors, encodeSafetensors } from "@focalgrad/core/checkpoint";
import { writeAtomic } from "./files.js";

/** What a checkpoint restores besides the tensors: the step to continue from and the run's own records. */
export interface CheckpointState {
  /** Steps completed. */
  step: number;
  /** Anything JSON the trainer needs to continue (its loss history, its evaluations). */
  extra: unknown;
}

const MODEL = "model.";
const OPTIMIZER = "optimizer.";

/**
 * Saves `model`'s state dict, `optimizer`'s `stateDict()` (its buffers as float64 tensors) and
 * `state` to `path` as one safetensors file, atomically.
 *
 * @example
 * await saveCheckpoint("runs/demo/checkpoint.safetensors", model, optimizer, { step: 100, extra: {} });
 */
export async function saveCheckpoint(
  path: string,
  model: nn.AnyModule,
  optimizer: optim.Optimizer,
  state: CheckpointState,
): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of model.stateDict()) tensors.set(MODEL + name, t);
  // The optimiser's own state dict; its buffers go in as float64 tensors, the rest as metadata.
  const { state: buffers, ...rest } = optimizer.stateDict();
  for (const [index, slots] of Object.entries(buffers)) {
    slots.forEach((slot, i) => {
      tensors.set(`${OPTIMIZER}${index}.${i}`, tensor(Float64Array.from(slot)));
    });
  }
  const metadata = {
    step: String(state.step),
    optimizer: JSON.stringify(rest),
    extra: JSON.stringify(state.extra),
  };
  await writeAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Restores a checkpoint written by `saveCheckpoint` into `model` and `optimizer` (which must be
 * built as they were when it was saved) and returns its step and records. Everything is checked
 * before anything is written, so a bad file leaves both untouched.
 *
 * @example
 * const { step, extra } = await loadCheckpoint("runs/demo/checkpoint.safetensors", model, optimizer);
 */
export async function loadCheckpoint(
  path: string,
  model: nn.AnyModule,
  optimizer: optim.Optimizer,
): Promise<CheckpointState> {
  const { tensors, metadata } = decodeSafetensors(await readFile(path));
  const problem = (what: string) => new Error(`loadCheckpoint: ${JSON.stringify(path)}: ${what}`);
  let saved: Omit<optim.OptimizerState, "state">;
  try {
    saved = JSON.parse(metadata.optimizer ?? "null");
  } catch {
    throw problem("its optimiser state is not JSON");
  }
  if (saved?.name !== optimizer.name) {
    throw problem(`was written with optimiser ${saved?.name}, not ${optimizer.name}`);
  }
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) throw problem(`bad step ${metadata.step}`);
  const writes: (() => void)[] = [];
  for (const [name, target] of model.stateDict()) {
    const found = tensors.get(MODEL + name);
    if (found === undefined || found.size !== target.size || found.dtype !== target.dtype) {
      throw problem(`model tensor "${name}" is missing or of another shape or dtype`);
    }
    writes.push(() => target.write((d) => d.set(found.read())));
  }
  const buffers: optim.OptimizerState["state"] = {};
  for (const [key, t] of tensors) {
    if (!key.startsWith(OPTIMIZER)) continue;
    const [index, slot] = key.slice(OPTIMIZER.length).split(".").map(Number);
    buffers[index] ??= [];
    buffers[index][slot] = Array.from(t.read());
  }
  // loadStateDict checks every buffer against its parameter before it changes anything.
  optimizer.loadStateDict({ ...saved, state: buffers });
  for (const write of writes) write();
  return { step, extra: JSON.parse(metadata.extra ?? "null") };
}
