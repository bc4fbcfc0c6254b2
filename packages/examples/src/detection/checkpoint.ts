/** Training checkpoints of a run directory: model, optimiser state and step in one safetensors file, written atomically. */

import { readFile } from "node:fs/promises";
import { type nn, type optim, Tensor } from "@focalgrad/core";
import { decodeSafetensors, encodeSafetensors } from "@focalgrad/core/checkpoint";
import { writeAtomic } from "./files.js";

/**
 * The per-parameter state that core's optimisers keep to themselves. Core has no optimiser
 * `stateDict()` yet (issue 13 asks for one); until it has, a checkpoint reads and restores these
 * two fields directly, and fails loudly if their shape ever changes.
 */
interface OptimizerInternals {
  state: Map<Tensor, Float64Array[]>;
  /** Adam's step count per parameter, keyed by its first slot. */
  steps?: WeakMap<Float64Array, number>;
}

function internalsOf(optimizer: optim.Optimizer): OptimizerInternals {
  const internals = optimizer as unknown as OptimizerInternals;
  if (!(internals.state instanceof Map)) {
    throw new Error(`checkpoint: ${optimizer.name} does not keep its state where expected`);
  }
  return internals;
}

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
 * Saves `model`'s state dict, `optimizer`'s per-parameter state (keyed by parameter name) and
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
  const internals = internalsOf(optimizer);
  const adamSteps: Record<string, number> = {};
  for (const [name, p] of model.namedParameters()) {
    const slots = internals.state.get(p);
    if (slots === undefined) continue;
    slots.forEach((slot, i) => {
      tensors.set(`${OPTIMIZER}${name}.${i}`, new Tensor(slot, p.shape, "float64"));
    });
    const steps = slots.length > 0 ? internals.steps?.get(slots[0]) : undefined;
    if (steps !== undefined) adamSteps[name] = steps;
  }
  const metadata = {
    step: String(state.step),
    optimizer: optimizer.name,
    optimizerSteps: String(optimizer.stepCount),
    adamSteps: JSON.stringify(adamSteps),
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
  if (metadata.optimizer !== optimizer.name) {
    throw problem(`was written with optimiser ${metadata.optimizer}, not ${optimizer.name}`);
  }
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) throw problem(`bad step ${metadata.step}`);
  const writes: (() => void)[] = [];
  for (const [name, target] of model.stateDict()) {
    const found = tensors.get(MODEL + name);
    if (found === undefined || found.size !== target.size || found.dtype !== target.dtype) {
      throw problem(`model tensor "${name}" is missing or of another shape or dtype`);
    }
    writes.push(() => {
      target.data.set(found.data);
      target.markModified();
    });
  }
  const internals = internalsOf(optimizer);
  const adamSteps = JSON.parse(metadata.adamSteps ?? "{}") as Record<string, number>;
  const restored = new Map<Tensor, { name: string; slots: Float64Array[] }>();
  for (const [name, p] of model.namedParameters()) {
    const slots: Float64Array[] = [];
    for (let i = 0; tensors.has(`${OPTIMIZER}${name}.${i}`); i++) {
      const slot = tensors.get(`${OPTIMIZER}${name}.${i}`)!;
      if (slot.size !== p.size || slot.dtype !== "float64") {
        throw problem(`optimiser state "${name}.${i}" does not fit its parameter`);
      }
      slots.push(Float64Array.from(slot.data));
    }
    if (slots.length > 0) restored.set(p, { name, slots });
  }
  for (const write of writes) write();
  internals.state.clear();
  for (const [p, { name, slots }] of restored) {
    internals.state.set(p, slots);
    if (adamSteps[name] !== undefined) internals.steps?.set(slots[0], adamSteps[name]);
  }
  optimizer.stepCount = Number(metadata.optimizerSteps);
  return { step, extra: JSON.parse(metadata.extra ?? "null") };
}
