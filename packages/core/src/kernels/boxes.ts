/** Box kernels: greedy non-maximum suppression over boxes stored as rows of x1, y1, x2, y2. */

import type { DataArray } from "../dtype.js";

const exact = (v: number) => v;

/**
 * Greedy NMS: visits the boxes in `order` (highest score first), keeps a box unless an earlier kept
 * box of the same class (any box when `classes` is null) overlaps it with IoU > `iouThreshold`,
 * and returns the kept box indices in visiting order. Classes are suppressed separately, each over
 * its own boxes only.
 *
 * The IoU is computed as torchvision's kernel computes it, step by step in the boxes' own precision
 * (`float32` rounds every step), so that a pair exactly at the threshold is decided the same way.
 * A pair whose union is 0 (two empty boxes) has IoU 0/0 = NaN there, which suppresses nothing.
 */
export function suppress(
  boxes: DataArray,
  order: Int32Array,
  classes: Int32Array | null,
  iouThreshold: number,
  float32: boolean,
): Int32Array {
  const n = order.length;
  const round = float32 ? Math.fround : exact;
  const area = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    area[i] = round(
      round(boxes[4 * i + 2] - boxes[4 * i]) * round(boxes[4 * i + 3] - boxes[4 * i + 1]),
    );
  }
  const keep = new Uint8Array(n);
  // Runs of different classes hold different boxes, so they share one array of flags.
  const suppressed = new Uint8Array(n);
  const suppressRun = (run: Int32Array) => {
    for (let a = 0; a < run.length; a++) {
      const i = run[a];
      if (suppressed[i] === 1) continue;
      keep[i] = 1;
      const ix1 = boxes[4 * i];
      const iy1 = boxes[4 * i + 1];
      const ix2 = boxes[4 * i + 2];
      const iy2 = boxes[4 * i + 3];
      const iarea = area[i];
      for (let b = a + 1; b < run.length; b++) {
        const j = run[b];
        if (suppressed[j] === 1) continue;
        const w = Math.max(0, round(Math.min(ix2, boxes[4 * j + 2]) - Math.max(ix1, boxes[4 * j])));
        const h = Math.max(
          0,
          round(Math.min(iy2, boxes[4 * j + 3]) - Math.max(iy1, boxes[4 * j + 1])),
        );
        const inter = round(w * h);
        if (round(inter / round(round(iarea + area[j]) - inter)) > iouThreshold) suppressed[j] = 1;
      }
    }
  };
  if (classes === null) suppressRun(order);
  else for (const run of runsByClass(order, classes)) suppressRun(run);
  let count = 0;
  for (let i = 0; i < n; i++) count += keep[i];
  const kept = new Int32Array(count);
  for (let a = 0, k = 0; a < n; a++) if (keep[order[a]] === 1) kept[k++] = order[a];
  return kept;
}

/** `order` split by class, each part keeping the order it had. */
function runsByClass(order: Int32Array, classes: Int32Array): Int32Array[] {
  const counts = new Map<number, number>();
  for (let a = 0; a < order.length; a++) {
    const c = classes[order[a]];
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const runs = new Map<number, { run: Int32Array; filled: number }>();
  for (const [c, count] of counts) runs.set(c, { run: new Int32Array(count), filled: 0 });
  for (let a = 0; a < order.length; a++) {
    const part = runs.get(classes[order[a]])!;
    part.run[part.filled++] = order[a];
  }
  return [...runs.values()].map((part) => part.run);
}
