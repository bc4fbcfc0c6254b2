/** Tests of ops/boxes.ts: areas, IoU and generalised IoU, clipping, and (batched) NMS. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  batchedNms,
  boxArea,
  boxIou,
  clipBoxes,
  generalizedBoxIou,
  grad,
  mul,
  nms,
  sum,
  type Tensor,
  tensor,
  zeros,
} from "../../src/index.js";
import { assertGradcheck, assertGradgradcheck } from "../../src/testing/index.js";

const f64 = (values: number[][], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const f32 = (values: number[][] | number[]) => tensor(values, { dtype: "float32" });
const int32 = (values: number[]) => tensor(values, { dtype: "int32" });
const values = (t: Tensor) => Array.from(t.data);

function expectClose(got: Tensor, want: number[][], digits = 12): void {
  expect(got.shape).toEqual([want.length, want[0]?.length ?? 0]);
  const flat = want.flat();
  got.data.forEach((v, i) => {
    expect(v).toBeCloseTo(flat[i], digits);
  });
}

/**
 * `n` boxes as rows of x1, y1, x2, y2: the x coordinates of all of them are distinct integers
 * halved plus a jitter below 0.2 (so at least 0.3 apart), and likewise the y coordinates. No two
 * edges tie and no pair just touches, so finite differences never straddle a kink; the values are
 * dense enough that most pairs overlap.
 */
function separatedBoxes(n: number): fc.Arbitrary<number[][]> {
  const axis = fc.tuple(
    fc.uniqueArray(fc.integer({ min: 0, max: 2 * n + 3 }), { minLength: 2 * n, maxLength: 2 * n }),
    fc.array(fc.double({ min: 0, max: 0.2, noNaN: true }), {
      minLength: 2 * n,
      maxLength: 2 * n,
    }),
  );
  return fc.tuple(axis, axis).map(([[xs, jx], [ys, jy]]) => {
    const x = xs.map((v, i) => v / 2 + jx[i]);
    const y = ys.map((v, i) => v / 2 + jy[i]);
    return Array.from({ length: n }, (_, i) => [
      Math.min(x[2 * i], x[2 * i + 1]),
      Math.min(y[2 * i], y[2 * i + 1]),
      Math.max(x[2 * i], x[2 * i + 1]),
      Math.max(y[2 * i], y[2 * i + 1]),
    ]);
  });
}

/**
 * Two sets of boxes, [n, 4] and [m, 4] with n and m up to `most`, drawn together so that no edge of
 * one ties an edge of the other.
 */
function boxPair(most: number): fc.Arbitrary<[Tensor, Tensor]> {
  return fc
    .tuple(fc.integer({ min: 1, max: most }), fc.integer({ min: 1, max: most }))
    .chain(([n, m]) =>
      separatedBoxes(n + m).map((rows): [Tensor, Tensor] => [
        f64(rows.slice(0, n)),
        f64(rows.slice(n)),
      ]),
    );
}

/** Property tests of gradients run many small graphs: time enough on a loaded machine. */
const slow = 30_000;

/** First derivatives of a pairwise box op on 100 random pairs of box sets, second on 10. */
function checkPairwiseGradients(op: (a: Tensor, b: Tensor) => Tensor): void {
  fc.assert(
    fc.property(boxPair(2), ([a, b]) => {
      assertGradcheck(op, [a, b]);
    }),
    { numRuns: 100 },
  );
  fc.assert(
    fc.property(boxPair(2), ([a, b]) => {
      assertGradgradcheck(op, [a, b]);
    }),
    { numRuns: 10 },
  );
}

/** IoU of two boxes in plain double arithmetic, the reference for large inputs. */
function iouOf(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const w = Math.max(0, Math.min(p[2], q[2]) - Math.max(p[0], q[0]));
  const h = Math.max(0, Math.min(p[3], q[3]) - Math.max(p[1], q[1]));
  const inter = w * h;
  const union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter;
  return union > 0 ? inter / union : 0;
}

// Boxes worked by hand:
//   a0 = [0, 0, 4, 4] (area 16), a1 = [2, 2, 6, 6] (area 16)
//   b0 = [1, 1, 3, 3] (area 4), b1 = [4, 0, 6, 2] (area 4), b2 = [10, 10, 12, 12] (area 4)
const handA = [
  [0, 0, 4, 4],
  [2, 2, 6, 6],
];
const handB = [
  [1, 1, 3, 3],
  [4, 0, 6, 2],
  [10, 10, 12, 12],
];

describe("boxArea", () => {
  it("is (x2 − x1) · (y2 − y1) per box", () => {
    // 2 · 3 = 6; an empty box of width 0 has area 0; 1.5 · 0.5 = 0.75.
    const area = boxArea(
      f64([
        [0, 0, 2, 3],
        [1, 1, 1, 5],
        [0.5, 1, 2, 1.5],
      ]),
    );
    expect(area.shape).toEqual([3]);
    expect(values(area)).toEqual([6, 0, 0.75]);
    expect(boxArea(zeros([0, 4])).shape).toEqual([0]);
  });

  it("has the gradient (−h, −w, h, w) per box", () => {
    const boxes = f64([[1, 2, 4, 7]], true); // w = 3, h = 5
    sum(boxArea(boxes)).backward();
    expect(values(boxes.grad!)).toEqual([-5, -3, 5, 3]);
  });
});

describe("boxIou", () => {
  it("matches values worked by hand", () => {
    // a0·b0: b0 lies inside a0, inter 4, union 16 → 1/4. a0·b1: they touch along x = 4, inter 0.
    // a1·b0: inter [2, 2, 3, 3] = 1, union 16 + 4 − 1 = 19 → 1/19. a1·b1: touch along y = 2.
    // b2 is far from both.
    expectClose(boxIou(f64(handA), f64(handB)), [
      [1 / 4, 0, 0],
      [1 / 19, 0, 0],
    ]);
    // A box with itself: 1. Two boxes [0, 0, 2, 2] and [1, 0, 3, 2]: inter 2, union 6.
    expectClose(
      boxIou(
        f64([[0, 0, 2, 2]]),
        f64([
          [0, 0, 2, 2],
          [1, 0, 3, 2],
        ]),
      ),
      [[1, 1 / 3]],
    );
  });

  it("is 0, not NaN, for two empty boxes (union 0), with a zero gradient", () => {
    const a = f64([[1, 1, 1, 1]], true);
    const iou = boxIou(a, f64([[1, 1, 1, 1]]));
    expect(values(iou)).toEqual([0]);
    iou.backward(f64([[1]]));
    expect(values(a.grad!)).toEqual([0, 0, 0, 0]);
  });

  it("has shape [N, M], also with no boxes on either side, in float32 and mixed dtypes", () => {
    expect(boxIou(zeros([0, 4]), f32(handB)).shape).toEqual([0, 3]);
    expect(boxIou(f32(handA), zeros([0, 4])).shape).toEqual([2, 0]);
    const mixed = boxIou(f32(handA), f64(handB));
    expect(mixed.dtype).toBe("float64");
    expect(boxIou(f32(handA), f32(handB)).dtype).toBe("float32");
    expect(boxIou(f32(handA), f32(handB)).data[3]).toBeCloseTo(1 / 19, 7);
  });

  it("has the subgradients of clamp and of maximum where boxes touch or share an edge", () => {
    // Touching: a = [0, 0, 1, 1], b = [1, 0, 2, 1]: w = min(a.x2, b.x2) − max(a.x1, b.x1) = 0 and
    // clamp(min = 0) passes its gradient at 0 (torch.clamp does), h = 1, union = 2. So
    // d iou / d a.x2 = h / union = 0.5 (the union's change, 1 − 1, is 0), d iou / d b.x1 = −0.5.
    const a = f64([[0, 0, 1, 1]], true);
    const b = f64([[1, 0, 2, 1]], true);
    const [ga, gb] = grad((p: Tensor, q: Tensor) => sum(boxIou(p, q)), { argnums: [0, 1] })(a, b);
    expect(values(ga)).toEqual([0, 0, 0.5, 0]);
    expect(values(gb)).toEqual([-0.5, 0, 0, 0]);
    // Shared edge: a = [0, 0, 2, 2], b = [0, 0, 1, 2]. max(a.x1, b.x1) ties at 0 and splits its
    // gradient evenly (torch.maximum does); inter = 1 · 2 = 2, union = 4 + 2 − 2 = 4.
    // d inter / d a.x1 = h · (−1/2) = −1; d union / d a.x1 = −(a.y2 − a.y1) − (−1) = −1;
    // d iou / d a.x1 = (−1 · 4 − 2 · (−1)) / 16 = −1/8.
    const c = f64([[0, 0, 2, 2]], true);
    const gc = grad((p: Tensor) => sum(boxIou(p, f64([[0, 0, 1, 2]]))))(c);
    expect(gc.data[0]).toBe(-1 / 8);
  });

  it(
    "has the right first and second derivatives in both arguments (float64)",
    () => checkPairwiseGradients(boxIou),
    slow,
  );

  it("gives the reference values on pending inputs below and above the fusion threshold", () => {
    // 4 096 boxes are 16 384 elements, the size at which elementwise results stay pending; their
    // 8 × 4 096 IoUs are a fused chain. 100 boxes stay below it.
    for (const n of [100, 4096]) {
      for (const dtype of ["float32", "float64"] as const) {
        const raw = new Float64Array(4 * n);
        for (let i = 0; i < n; i++) {
          const x = (i * 7) % 97;
          const y = (i * 13) % 89;
          raw.set([x, y, x + 5 + (i % 11), y + 3 + (i % 7)], 4 * i);
        }
        const base = tensor(raw, { shape: [n, 4], dtype });
        const a = mul(add(base, 0.5), 1); // a pending [n, 4] on the large size
        expect(a.isPending).toBe(n * 4 >= 16384);
        const b = tensor(
          [
            [0, 0, 10, 10],
            [5, 5, 40, 20],
            [50, 10, 60, 90],
            [20, 30, 21, 31],
            [0, 0, 100, 100],
            [3, 3, 4, 40],
            [70, 70, 75, 72],
            [40, 0, 90, 5],
          ],
          { dtype },
        );
        const iou = boxIou(a, b);
        const ad = a.data;
        const bd = b.data;
        let worst = 0;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < 8; j++) {
            const want = iouOf(ad.subarray(4 * i, 4 * i + 4), bd.subarray(4 * j, 4 * j + 4));
            worst = Math.max(worst, Math.abs(iou.data[8 * i + j] - want));
          }
        }
        expect(worst).toBeLessThanOrEqual(dtype === "float32" ? 1e-6 : 1e-14);
      }
    }
  });
});

describe("generalizedBoxIou and clipBoxes on pending inputs", () => {
  it("give below and above the fusion threshold what plain double arithmetic gives", () => {
    for (const n of [100, 4096]) {
      const raw = new Float64Array(4 * n);
      for (let i = 0; i < n; i++) {
        const x = ((i * 7) % 97) - 10;
        raw.set([x, -5 + (i % 3), x + 4 + (i % 5), 50 + (i % 30)], 4 * i);
      }
      const boxes = add(tensor(raw, { shape: [n, 4], dtype: "float64" }), 0);
      expect(boxes.isPending).toBe(4 * n >= 16384);
      const clipped = clipBoxes(boxes, [60, 80]);
      const limits = [80, 60, 80, 60];
      const want = Array.from(raw, (v, k) => Math.min(Math.max(v, 0), limits[k % 4]));
      expect(Array.from(clipped.data)).toEqual(want);
      // GIoU against one box: IoU − (hull − union) / hull, pair by pair in doubles.
      const q = [0, 0, 30, 40];
      const giou = generalizedBoxIou(
        add(tensor(raw, { shape: [n, 4], dtype: "float64" }), 0),
        f64([q]),
      );
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const p = raw.subarray(4 * i, 4 * i + 4);
        const inter =
          Math.max(0, Math.min(p[2], q[2]) - Math.max(p[0], q[0])) *
          Math.max(0, Math.min(p[3], q[3]) - Math.max(p[1], q[1]));
        const union = (p[2] - p[0]) * (p[3] - p[1]) + 30 * 40 - inter;
        const hull =
          (Math.max(p[2], q[2]) - Math.min(p[0], q[0])) *
          (Math.max(p[3], q[3]) - Math.min(p[1], q[1]));
        worst = Math.max(worst, Math.abs(giou.data[i] - (inter / union - (hull - union) / hull)));
      }
      expect(worst).toBeLessThanOrEqual(1e-14);
    }
  });
});

describe("generalizedBoxIou", () => {
  it("matches values worked by hand", () => {
    // GIoU = IoU − (area(C) − union) / area(C), C the enclosing box.
    // a0·b0: C = a0 (16), union 16 → 1/4.   a0·b1: C = [0, 0, 6, 4] (24), union 20 → −4/24.
    // a0·b2: C = [0, 0, 12, 12] (144), union 20 → −124/144.
    // a1·b0: C = [1, 1, 6, 6] (25), union 19 → 1/19 − 6/25.
    // a1·b1: C = [2, 0, 6, 6] (24), union 20 → −4/24.   a1·b2: C = [2, 2, 12, 12] (100) → −80/100.
    expectClose(generalizedBoxIou(f64(handA), f64(handB)), [
      [1 / 4, -4 / 24, -124 / 144],
      [1 / 19 - 6 / 25, -4 / 24, -80 / 100],
    ]);
    expectClose(generalizedBoxIou(f64([[0, 0, 1, 1]]), f64([[0, 0, 1, 1]])), [[1]]);
    // Two empty boxes on one line: C has area 0; both terms are taken as 0.
    expectClose(generalizedBoxIou(f64([[0, 1, 2, 1]]), f64([[1, 1, 3, 1]])), [[0]]);
  });

  it(
    "has the right first and second derivatives in both arguments (float64)",
    () => checkPairwiseGradients(generalizedBoxIou),
    slow,
  );

  it("gives a gradient to boxes that do not overlap, pulling them together", () => {
    // a = [0, 0, 1, 1], b = [2, 0, 3, 1]: IoU 0 (its gradient is blocked by the clamp, w = −1),
    // so GIoU = −1 + union / hull with union = area(a) + 1 = 2 and hull = (3 − a.x1) · 1 = 3.
    // d/d a.x1: union −1, hull −1 → (−1 · 3 − 2 · (−1)) / 9 = −1/9.
    // d/d a.x2: union +1, hull unchanged (b.x2 bounds C) → 3 / 9 = 1/3.
    // d/d a.y1: union −1; C's bottom is min(a.y1, b.y1), a tie, so hull changes by 3 · (−1/2):
    // (−1 · 3 − 2 · (−1.5)) / 9 = 0. Likewise 0 for a.y2.
    const a = f64([[0, 0, 1, 1]], true);
    const g = grad((p: Tensor) => sum(generalizedBoxIou(p, f64([[2, 0, 3, 1]]))))(a);
    const want = [-1 / 9, 0, 1 / 3, 0];
    g.data.forEach((v, i) => {
      expect(v).toBeCloseTo(want[i], 12);
    });
  });
});

describe("clipBoxes", () => {
  it("clips x into [0, width] and y into [0, height], for any leading shape", () => {
    expect(clipBoxes(f64([[-5, 10, 30, 70]]), [64, 20]).toArray()).toEqual([[0, 10, 20, 64]]);
    const batch = clipBoxes(
      tensor([[[1, 2, 3, 4]], [[-1, -2, 50, 60]]], { dtype: "float32" }),
      [40, 30],
    );
    expect(batch.shape).toEqual([2, 1, 4]);
    expect(batch.toArray()).toEqual([[[1, 2, 3, 4]], [[0, 0, 30, 40]]]);
    expect(clipBoxes(f64([[0, 0, 1, 1]]).detach(), [0, 0]).toArray()).toEqual([[0, 0, 0, 0]]);
  });

  it("passes the gradient inside the image and at its border, not where a coordinate is clipped", () => {
    // [-5, 0, 30, 10] in a 10 × 20 image: x1 clipped (0), y1 at the border (1), x2 clipped (0),
    // y2 at the border (1).
    const boxes = f64([[-5, 0, 30, 10]], true);
    sum(clipBoxes(boxes, [10, 20])).backward();
    expect(values(boxes.grad!)).toEqual([0, 1, 0, 1]);
    fc.assert(
      fc.property(separatedBoxes(3), (rows) => {
        // Shifted by −0.3, every coordinate lies in some [k/2 − 0.3, k/2 − 0.1]: the image borders
        // 0, 2.55 and 3.55 fall in the gaps between, off the kinks, and some boxes are clipped.
        const shifted = rows.map((r) => r.map((v) => v - 0.3));
        assertGradcheck((b) => clipBoxes(b, [2.55, 3.55]), [f64(shifted)]);
      }),
      { numRuns: 100 },
    );
  });
});

// The hand-made NMS set (threshold 0.5), by index: box, score.
//   0: [0, 0, 10, 10], 0.9
//   1: [1, 1, 11, 11], 0.8    IoU with 0: inter 9 · 9 = 81, union 200 − 81 = 119, 0.68 > 0.5
//   2: [20, 0, 23, 1], 0.6
//   3: [21, 0, 24, 1], 0.5    IoU with 2: inter 2, union 3 + 3 − 2 = 4, exactly 0.5: kept
//   4: [40, 40, 50, 50], 0.7
//   5: [40, 40, 50, 50], 0.7  tied with 4 and identical (IoU 1): the lower index, 4, goes first
//   6: [5, 5, 15, 15], 0.95   IoU with 0: inter 25, union 175, 1/7; with 1: 36 / 164
// Visiting order by score: 6, 0, 1, 4, 5, 2, 3. Kept: 6, 0, 4, 2, 3 (1 falls to 0, 5 to 4).
const nmsBoxes = [
  [0, 0, 10, 10],
  [1, 1, 11, 11],
  [20, 0, 23, 1],
  [21, 0, 24, 1],
  [40, 40, 50, 50],
  [40, 40, 50, 50],
  [5, 5, 15, 15],
];
const nmsScores = [0.9, 0.8, 0.6, 0.5, 0.7, 0.7, 0.95];

/**
 * Random NMS problems: 1–12 boxes, scores from five values (ranks / 4, so ties are common), a class
 * in −1 … 2 per box and a threshold in [0, 1].
 */
const nmsCase = fc.integer({ min: 1, max: 12 }).chain((n) =>
  fc
    .record({
      rows: separatedBoxes(n),
      ranks: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: n, maxLength: n }),
      labels: fc.array(fc.integer({ min: -1, max: 2 }), { minLength: n, maxLength: n }),
      threshold: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map((c) => ({
      ...c,
      scores: tensor(
        c.ranks.map((r) => r / 4),
        { dtype: "float64" },
      ),
    })),
);

describe("nms", () => {
  it("keeps boxes by decreasing score, drops IoU > threshold, keeps IoU equal to it, ties by index", () => {
    for (const dtype of ["float32", "float64"] as const) {
      const boxes = tensor(nmsBoxes, { dtype });
      const scores = tensor(nmsScores, { dtype });
      const kept = nms(boxes, scores, 0.5);
      expect(kept.dtype).toBe("int32");
      expect(values(kept)).toEqual([6, 0, 4, 2, 3]);
      // Just below 0.5, box 3 falls to box 2 too.
      expect(values(nms(boxes, scores, 0.49))).toEqual([6, 0, 4, 2]);
      // At 1 nothing is suppressed (an IoU is never above 1), not even the identical box 5.
      expect(values(nms(boxes, scores, 1))).toEqual([6, 0, 1, 4, 5, 2, 3]);
    }
    // Reversing the tie: box 5 scored above 4 is kept and 4 goes.
    const scores = tensor([0.9, 0.8, 0.6, 0.5, 0.7, 0.71, 0.95], { dtype: "float64" });
    expect(values(nms(f64(nmsBoxes), scores, 0.5))).toEqual([6, 0, 5, 2, 3]);
  });

  it("is greedy: a suppressed box suppresses nothing", () => {
    // Strips of height 1: IoU(A, B) = 3/5 and IoU(B, C) = 3/5, but IoU(A, C) = 2/6. B falls to A;
    // C, which only B would have removed, is kept.
    const boxes = f64([
      [0, 0, 4, 1],
      [1, 0, 5, 1],
      [2, 0, 6, 1],
    ]);
    expect(values(nms(boxes, tensor([0.9, 0.8, 0.7]), 0.5))).toEqual([0, 2]);
  });

  it("computes the IoU in the boxes' precision, as torchvision: float32 decides 1/3 differently", () => {
    // [0, 0, 2, 1] and [1, 0, 3, 1]: inter 1, union 3. In float64 the IoU is the double nearest
    // 1/3, equal to the threshold 1/3: kept. In float32 it rounds to 11184811 / 2^25 =
    // 0.3333333432674408, above the double 1/3: suppressed, as torchvision's float32 kernel does.
    const rows = [
      [0, 0, 2, 1],
      [1, 0, 3, 1],
    ];
    expect(values(nms(f64(rows), tensor([0.9, 0.8], { dtype: "float64" }), 1 / 3))).toEqual([0, 1]);
    expect(values(nms(f32(rows), f32([0.9, 0.8]), 1 / 3))).toEqual([0]);
  });

  it("returns an empty result for no boxes, and keeps empty boxes (their IoU suppresses nothing)", () => {
    const none = nms(zeros([0, 4]), zeros([0]), 0.5);
    expect(none.shape).toEqual([0]);
    expect(none.dtype).toBe("int32");
    const empty = f64([
      [1, 1, 1, 1],
      [1, 1, 1, 1],
    ]);
    expect(values(nms(empty, tensor([0.5, 0.6], { dtype: "float64" }), 0))).toEqual([1, 0]);
    // Infinite scores are ranked like any other.
    expect(values(nms(f64(nmsBoxes.slice(0, 2)), f32([-Infinity, Infinity]), 0.5))).toEqual([1]);
  });

  it("keeps a set in which no two boxes overlap beyond the threshold, and covers every dropped box", () => {
    fc.assert(
      fc.property(nmsCase, ({ rows, ranks, scores, threshold }) => {
        const kept = values(nms(f64(rows), scores, threshold));
        const iou = boxIou(f64(rows), f64(rows));
        const n = rows.length;
        const at = (i: number, j: number) => iou.data[i * n + j];
        // Decreasing score, ties by index.
        for (let k = 1; k < kept.length; k++) {
          const [p, q] = [kept[k - 1], kept[k]];
          expect(ranks[p] > ranks[q] || (ranks[p] === ranks[q] && p < q)).toBe(true);
        }
        for (const i of kept)
          for (const j of kept) if (i !== j) expect(at(i, j) <= threshold).toBe(true);
        // Each dropped box overlaps, beyond the threshold, a kept box visited before it.
        const before = (p: number, q: number) =>
          ranks[p] > ranks[q] || (ranks[p] === ranks[q] && p < q);
        for (let j = 0; j < n; j++) {
          if (kept.includes(j)) continue;
          expect(kept.some((i) => before(i, j) && at(i, j) > threshold)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("reads pending boxes and scores above the fusion threshold", () => {
    const n = 4096; // [n, 4] is 16 384 elements: the result of an op on it stays pending
    const raw = new Float64Array(4 * n);
    for (let i = 0; i < n; i++) raw.set([i * 20, 0, i * 20 + 10, 10], 4 * i); // disjoint boxes
    const boxes = add(tensor(raw, { shape: [n, 4], dtype: "float64" }), 1);
    expect(boxes.isPending).toBe(true);
    const scores = tensor(
      Array.from({ length: n }, (_, i) => (i * 37) % n),
      { dtype: "float64" },
    );
    const kept = values(nms(boxes, scores, 0.5));
    expect(kept.length).toBe(n);
    // 37 is odd, so i ↦ 37 i mod 4 096 is a permutation: distinct scores, strictly decreasing.
    const decreasing = kept.every((i, k) => k === 0 || scores.data[kept[k - 1]] > scores.data[i]);
    expect(decreasing).toBe(true);
  });
});

describe("batchedNms", () => {
  it("suppresses within each class only", () => {
    // The hand-made set with box 1 in class 1 and box 5 in class 2: neither meets a box of its own
    // class, so both are kept; the order is still by score, ties by index.
    const classes = int32([0, 1, 0, 0, 0, 2, 0]);
    for (const dtype of ["float32", "float64"] as const) {
      const kept = batchedNms(
        tensor(nmsBoxes, { dtype }),
        tensor(nmsScores, { dtype }),
        classes,
        0.5,
      );
      expect(values(kept)).toEqual([6, 0, 1, 4, 5, 2, 3]);
    }
    const same = batchedNms(f64(nmsBoxes), f32(nmsScores), int32([3, 3, 3, 3, 3, 3, 3]), 0.5);
    expect(values(same)).toEqual([6, 0, 4, 2, 3]);
    expect(batchedNms(zeros([0, 4]), zeros([0]), int32([]), 0.5).shape).toEqual([0]);
  });

  it("equals nms on boxes shifted apart per class (torchvision's offset trick)", () => {
    fc.assert(
      fc.property(nmsCase, ({ rows, scores, labels, threshold }) => {
        // Coordinates are below n + 2 <= 14: an offset of 100 per class keeps classes apart.
        const shifted = f64(rows.map((r, i) => r.map((v) => v + 100 * (labels[i] + 1))));
        const want = values(nms(shifted, scores, threshold));
        expect(values(batchedNms(f64(rows), scores, int32(labels), threshold))).toEqual(want);
      }),
      { numRuns: 100 },
    );
  });
});

describe("errors", () => {
  const good = f64(handA);
  it("name the op and the argument for boxes that are not [N, 4] float tensors", () => {
    expect(() => boxIou([[0, 0, 1, 1]] as unknown as Tensor, good)).toThrow(
      "boxIou: a must be a Tensor, got an array",
    );
    expect(() => boxIou(good, tensor([[0, 0, 1, 1]], { dtype: "int32" }))).toThrow(
      "boxIou: b must be float32 or float64, got int32",
    );
    expect(() => boxArea(f64([[0, 0, 1]]))).toThrow(
      "boxArea: boxes must have shape [N, 4] (x1, y1, x2, y2 per box), got float64 tensor of shape [1, 3]",
    );
    expect(() => generalizedBoxIou(good, tensor([0, 0, 1, 1], { dtype: "float64" }))).toThrow(
      "generalizedBoxIou: b must have shape [N, 4]",
    );
    expect(() => clipBoxes(tensor(0, { dtype: "float64" }), [1, 1])).toThrow(
      "clipBoxes: boxes must have shape [..., 4] (x1, y1, x2, y2 per box), got float64 tensor of shape []",
    );
  });

  it("name the box for non-finite coordinates and for x2 < x1 or y2 < y1", () => {
    expect(() =>
      boxIou(
        good,
        f64([
          [0, 0, 1, 1],
          [0, Number.NaN, 1, 1],
        ]),
      ),
    ).toThrow(
      "boxIou: box 1 of b ([2, 4]), [0, NaN, 1, 1], has a non-finite coordinate; expected finite pixel coordinates x1, y1, x2, y2 with x1 <= x2 and y1 <= y2",
    );
    expect(() => boxArea(f64([[0, 0, Infinity, 1]]))).toThrow(
      "boxArea: box 0 of boxes ([1, 4]), [0, 0, Infinity, 1], has a non-finite coordinate",
    );
    expect(() => nms(f64([[5, 0, 4, 1]]), tensor([1]), 0.5)).toThrow(
      "nms: box 0 of boxes ([1, 4]), [5, 0, 4, 1], has x2 < x1",
    );
    expect(() => clipBoxes(f64([[0, 3, 4, 1]]), [10, 10])).toThrow(
      "clipBoxes: box 0 of boxes ([1, 4]), [0, 3, 4, 1], has y2 < y1",
    );
    expect(() =>
      batchedNms(
        f64([
          [0, 0, 1, 1],
          [2, 2, 1, 3],
        ]),
        tensor([1, 2]),
        int32([0, 0]),
        0.5,
      ),
    ).toThrow("batchedNms: box 1 of boxes ([2, 4]), [2, 2, 1, 3], has x2 < x1");
  });

  it("name NaN scores, scores of the wrong shape or dtype, and a bad threshold", () => {
    const boxes = f64(nmsBoxes.slice(0, 2));
    expect(() => nms(boxes, tensor([0.5, Number.NaN]), 0.5)).toThrow(
      "nms: scores[1] is NaN; every box needs a score to be ranked by",
    );
    expect(() => nms(boxes, tensor([0.5, 0.2, 0.1]), 0.5)).toThrow(
      "nms: scores must have shape [2] (one per box of boxes [2, 4]), got float32 tensor of shape [3]",
    );
    expect(() => nms(boxes, tensor([1, 2], { dtype: "int32" }), 0.5)).toThrow(
      "nms: scores must be float32 or float64, got int32",
    );
    for (const bad of [Number.NaN, -0.1, 1.5]) {
      expect(() => nms(boxes, tensor([0.5, 0.2]), bad)).toThrow(
        `nms: iouThreshold must be a number in [0, 1], got ${bad}`,
      );
    }
    expect(() => batchedNms(boxes, tensor([0.5, 0.2]), int32([0, 1]), Number.NaN)).toThrow(
      "batchedNms: iouThreshold must be a number in [0, 1], got NaN",
    );
    expect(() => batchedNms(boxes, tensor([0.5, Number.NaN]), int32([0, 1]), 0.5)).toThrow(
      "batchedNms: scores[1] is NaN",
    );
  });

  it("name classes that are not int32 [N]", () => {
    const boxes = f64(nmsBoxes.slice(0, 2));
    const scores = tensor([0.5, 0.2]);
    expect(() => batchedNms(boxes, scores, tensor([0, 1]), 0.5)).toThrow(
      'batchedNms: classes must be an int32 tensor, got float32; convert it with cast(classes, "int32")',
    );
    expect(() => batchedNms(boxes, scores, int32([0, 1, 2]), 0.5)).toThrow(
      "batchedNms: classes must have shape [2] (one per box of boxes [2, 4]), got int32 tensor of shape [3]",
    );
  });

  it("name an image shape that is not [height, width]", () => {
    for (const bad of [[10], [10, -1], [Number.NaN, 3], "64x64"]) {
      expect(() => clipBoxes(good, bad as unknown as [number, number])).toThrow(
        "clipBoxes: imageShape must be [height, width] with finite sizes >= 0, got",
      );
    }
  });
});
