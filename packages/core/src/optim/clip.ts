/** Gradient clipping, by global norm and by value, replacing each `.grad` with a clipped copy. */

import { allocate } from "../dtype.js";
import { Tensor } from "../tensor.js";

// Clipping writes new gradient tensors rather than scaling in place: two parameters can share one
// gradient buffer (the backward pass of `add` hands the same tensor to both inputs), and scaling
// it in place would scale it twice.

function gradsOf(op: string, params: Iterable<Tensor>): Tensor[] {
  const list = [...params];
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new Error(`${op}: params[${i}] must be a Tensor`);
  });
  return list;
}

/**
 * Scales all gradients together so that their global L2 norm (over every element of every
 * `.grad`) is at most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`; returns the norm before
 * clipping. Parameters without a gradient are skipped.
 *
 * @example
 * loss.backward();
 * const norm = clipGradNorm(model.parameters(), 10);
 * opt.step();
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  const list = gradsOf("clipGradNorm", params);
  if (!(maxNorm >= 0) || !Number.isFinite(maxNorm)) {
    throw new Error(`clipGradNorm: maxNorm must be a finite number >= 0, got ${maxNorm}`);
  }
  let squares = 0;
  for (const p of list) {
    const g = p.grad;
    if (g === null) continue;
    for (let i = 0; i < g.read().length; i++) squares += g.read()[i] * g.read()[i];
  }
  const norm = Math.sqrt(squares);
  // PyTorch's 1e-6 keeps the scale finite for an all-zero gradient.
  const scale = maxNorm / (norm + 1e-6);
  if (scale < 1) {
    for (const p of list) {
      const g = p.grad;
      if (g === null) continue;
      const data = allocate(g.dtype, g.size);
      for (let i = 0; i < data.length; i++) data[i] = g.read()[i] * scale;
      p.grad = new Tensor(data, g.shape, g.dtype);
    }
  }
  return norm;
}

/**
 * Clamps every gradient element into [−clipValue, clipValue], as `torch.nn.utils.clip_grad_value_`.
 *
 * @example
 * clipGradValue(model.parameters(), 1);
 */
export function clipGradValue(params: Iterable<Tensor>, clipValue: number): void {
  const list = gradsOf("clipGradValue", params);
  if (!(clipValue >= 0) || !Number.isFinite(clipValue)) {
    throw new Error(`clipGradValue: clipValue must be a finite number >= 0, got ${clipValue}`);
  }
  for (const p of list) {
    const g = p.grad;
    if (g === null) continue;
    const data = allocate(g.dtype, g.size);
    for (let i = 0; i < data.length; i++) {
      data[i] = Math.min(clipValue, Math.max(-clipValue, g.read()[i]));
    }
    p.grad = new Tensor(data, g.shape, g.dtype);
  }
}
