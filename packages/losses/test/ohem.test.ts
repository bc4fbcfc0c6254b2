import { type Tensor, tensor, valueAndGrad } from "@focalgrad/core";
import { assertGradcheck, assertGradgradcheck } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type OhemOptions, ohem } from "../src/index.js";
import { close, f64 } from "./helpers.js";

const { log } = Math;

/** Loss and gradient in the logits of `ohem(options)` on one batch. */
function ohemWithGrad(options: OhemOptions, yTrue: Tensor, logits: Tensor, anchors: Tensor) {
  const [value, g] = valueAndGrad((x: Tensor) => ohem(options)(yTrue, x, anchors))(logits);
  return { value: value.item(), grad: Array.from((g as Tensor).data) };
}

// Four anchors of one image, one class. Anchors 0 and 1 overlap with IoU 81 / 119 = 0.68
// (intersection [1, 1, 10, 10]); anchors 2 and 3 overlap nothing. BCE with logits x and label y
// is softplus(x) - x·y, so:
//   anchor 0, background, x = ln 3:  ln(1 + 3)       = ln 4
//   anchor 1, background, x = ln 7:  ln(1 + 7)       = ln 8   (the hardest)
//   anchor 2, object y = 1, x = 0:   ln 2
//   anchor 3, background, x = -ln 3: ln(1 + 1/3)     = ln(4/3)
// NMS by loss visits 1, 0 (IoU 0.68 with 1 > 0.5: dropped), 2, 3 and keeps [1, 2, 3].
const fourAnchors = f64([
  [0, 0, 10, 10],
  [1, 1, 11, 11],
  [20, 20, 30, 30],
  [40, 40, 50, 50],
]);
const fourTargets = f64([
  [
    [0, 0],
    [0, 0],
    [1, 1],
    [0, 0],
  ],
]);
const fourLogits = () => f64([[[log(3)], [log(7)], [0], [-log(3)]]]);

describe("ohem", () => {
  it("keeps the hardest anchors after NMS: hand-worked value and gradient", () => {
    // Two examples: anchors 1 and 2, loss (ln 8 + ln 2) / 2 = 2 ln 2. Gradient (sigmoid(x) - y) / 2:
    // anchor 1: (7/8) / 2 = 7/16; anchor 2: (1/2 - 1) / 2 = -1/4; anchors 0 (suppressed) and 3
    // (not among the hardest two): 0.
    const two = ohemWithGrad({ examplesPerImage: 2 }, fourTargets, fourLogits(), fourAnchors);
    expect(two.value).toBeCloseTo(2 * log(2), 14);
    expect(two.grad).toEqual([0, expect.closeTo(7 / 16, 14), expect.closeTo(-1 / 4, 14), 0]);
    // Room for four: the three that NMS keeps, (ln 8 + ln 2 + ln(4/3)) / 3 = ln(64/3) / 3; anchor
    // 3's gradient is sigmoid(-ln 3) / 3 = (1/4) / 3 = 1/12; anchor 0 stays suppressed.
    const four = ohemWithGrad({ examplesPerImage: 4 }, fourTargets, fourLogits(), fourAnchors);
    expect(four.value).toBeCloseTo(log(64 / 3) / 3, 14);
    expect(four.grad).toEqual([
      0,
      expect.closeTo(7 / 24, 14),
      expect.closeTo(-1 / 6, 14),
      expect.closeTo(1 / 12, 14),
    ]);
  });

  it("without NMS suppression (iouThreshold 1) the overlapping anchor is kept", () => {
    // Keeps 1, 0 by loss: (ln 8 + ln 4) / 2 = ln 32 / 2; anchor 0's gradient (3/4) / 2 = 3/8.
    const r = ohemWithGrad(
      { examplesPerImage: 2, iouThreshold: 1 },
      fourTargets,
      fourLogits(),
      fourAnchors,
    );
    expect(r.value).toBeCloseTo(log(32) / 2, 14);
    expect(r.grad).toEqual([expect.closeTo(3 / 8, 14), expect.closeTo(7 / 16, 14), 0, 0]);
  });

  it("the ratio variant takes positives first, then that many negatives per positive", () => {
    // negativesPerPositive 1, 8 examples: at most ⌊8 / 2⌋ = 4 positives, there is 1 (anchor 2);
    // then ⌊1 · 1⌋ = 1 negative, the hardest kept one (anchor 1). (ln 2 + ln 8) / 2 = 2 ln 2,
    // where the plain variant with 8 examples takes all three kept anchors.
    const r = ohemWithGrad(
      { examplesPerImage: 8, negativesPerPositive: 1 },
      fourTargets,
      fourLogits(),
      fourAnchors,
    );
    expect(r.value).toBeCloseTo(2 * log(2), 14);
    expect(r.grad).toEqual([0, expect.closeTo(7 / 16, 14), expect.closeTo(-1 / 4, 14), 0]);
    // 1:3 with 4 examples: ⌊4 / 4⌋ = 1 positive, then min(2 kept negatives, 3) = 2: anchors 2, 1, 3.
    const third = ohemWithGrad(
      { examplesPerImage: 4, negativesPerPositive: 3 },
      fourTargets,
      fourLogits(),
      fourAnchors,
    );
    expect(third.value).toBeCloseTo(log(64 / 3) / 3, 14);
  });

  it("the ratio variant caps positives at ⌊E / (1 + r)⌋ and takes none from an image without objects", () => {
    // One image: three far-apart object anchors with logit 0 (loss ln 2 each) and one background
    // anchor with logit ln 3 (ln 4). E = 4, r = 1: ⌊4 / 2⌋ = 2 positives (the first two: equal
    // losses go by index), 1 negative per positive but only one exists: 3 examples,
    // (2 ln 2 + ln 4) / 3 = 4 ln 2 / 3. A second image of only background anchors adds nothing.
    const anchors = f64([
      [0, 0, 4, 4],
      [10, 10, 14, 14],
      [20, 20, 24, 24],
      [30, 30, 34, 34],
    ]);
    const yTrue = f64([
      [
        [1, 1],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
      [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    ]);
    const logits = f64([
      [[0], [0], [0], [log(3)]],
      [[5], [5], [5], [5]],
    ]);
    const r = ohemWithGrad(
      { examplesPerImage: 4, negativesPerPositive: 1 },
      yTrue,
      logits,
      anchors,
    );
    expect(r.value).toBeCloseTo((4 * log(2)) / 3, 14);
    // (1/2 - 1) / 3 = -1/6 on the two positives, (3/4) / 3 = 1/4 on the negative.
    const sixth = expect.closeTo(-1 / 6, 14);
    expect(r.grad).toEqual([sixth, sixth, 0, expect.closeTo(1 / 4, 14), 0, 0, 0, 0]);
  });

  it("sums over classes, normalises by the examples of the whole batch, never reads ignored anchors", () => {
    // Two images, two far-apart anchors, two classes; one example per image.
    // Image 0: anchor 0 object [1, 0], logits [0, 0]: ln 2 + ln 2 = ln 4;
    //          anchor 1 background, logits [ln 3, -ln 3]: ln 4 + ln(4/3) = ln(16/3), the harder.
    // Image 1: anchor 0 ignored (labels and logits NaN); anchor 1 background, logits [0, ln 7]:
    //          ln 2 + ln 8 = ln 16.
    // Loss (ln(16/3) + ln 16) / 2 = ln(256/3) / 2. Gradient sigmoid(x) / 2 on the two selected
    // rows: [3/8, 1/8] and [1/4, 7/16]; exactly 0 elsewhere, the NaN logits included.
    const anchors = f64([
      [0, 0, 10, 10],
      [20, 20, 30, 30],
    ]);
    const yTrue = f64([
      [
        [1, 0, 1],
        [0, 0, 0],
      ],
      [
        [Number.NaN, Number.NaN, -1],
        [0, 0, 0],
      ],
    ]);
    const logits = f64([
      [
        [0, 0],
        [log(3), -log(3)],
      ],
      [
        [Number.NaN, Number.NaN],
        [0, log(7)],
      ],
    ]);
    const r = ohemWithGrad({ examplesPerImage: 1 }, yTrue, logits, anchors);
    expect(r.value).toBeCloseTo(log(256 / 3) / 2, 14);
    expect(r.grad).toEqual([
      0,
      0,
      expect.closeTo(3 / 8, 14),
      expect.closeTo(1 / 8, 14),
      0,
      0,
      expect.closeTo(1 / 4, 14),
      expect.closeTo(7 / 16, 14),
    ]);
  });

  it("equal losses: NMS keeps the lower index, and the gradient is that of the set so chosen", () => {
    // Anchors 0 and 1 overlap (IoU 0.68), both background with logit 0 (loss ln 2 each). The
    // selection {0} is the one-sided subgradient: (1/2) / 1 on anchor 0, 0 on anchor 1.
    const anchors = f64([
      [0, 0, 10, 10],
      [1, 1, 11, 11],
    ]);
    const yTrue = f64([
      [
        [0, 0],
        [0, 0],
      ],
    ]);
    const r = ohemWithGrad({ examplesPerImage: 1 }, yTrue, f64([[[0], [0]]]), anchors);
    expect(r.value).toBeCloseTo(log(2), 14);
    expect(r.grad).toEqual([0.5, 0]);
  });

  it("nothing to select (every anchor ignored, or no anchors) gives 0 with a zero gradient", () => {
    const anchors = f64([
      [0, 0, 10, 10],
      [20, 20, 30, 30],
    ]);
    const yTrue = f64([
      [
        [1, -1],
        [0, -1],
      ],
    ]);
    const r = ohemWithGrad({}, yTrue, f64([[[3], [Number.NaN]]]), anchors);
    expect(r.value).toBe(0);
    expect(r.grad).toEqual([0, 0]);
    const empty = ohemWithGrad(
      {},
      tensor([], { shape: [2, 0, 2], dtype: "float64" }),
      tensor([], { shape: [2, 0, 1], dtype: "float64" }),
      tensor([], { shape: [0, 4], dtype: "float64" }),
    );
    expect(empty.value).toBe(0);
  });

  it("float32 logits and anchors give a float32 loss", () => {
    const loss = ohem({ examplesPerImage: 2 })(
      tensor(fourTargets.toArray() as number[][][]),
      tensor(fourLogits().toArray() as number[][][]),
      tensor(fourAnchors.toArray() as number[][]),
    );
    expect(loss.dtype).toBe("float32");
    expect(loss.item()).toBeCloseTo(2 * log(2), 6);
  });

  it("matches a plain-JavaScript reference (selection, value and gradient) on random batches", () => {
    fc.assert(
      fc.property(ohemCase(), (c) => {
        // Exact ties are compared (both break them by index); losses a few ulps apart are not:
        // which of them is the harder depends on the rounding of each computation of the BCE.
        fc.pre(noNearTies(c, 1e-9));
        const expected = referenceOhem(c);
        const { yTrue, logits, anchors } = caseTensors(c);
        const r = ohemWithGrad(c.options, yTrue, logits, anchors);
        expect(close(r.value, expected.loss, 1e-12, 1e-14)).toBe(true);
        r.grad.forEach((g, i) => {
          expect(close(g, expected.grad[i], 1e-12, 1e-14)).toBe(true);
        });
      }),
      { numRuns: 150 },
    );
  });

  it("gradients match central differences away from ties in the loss", () => {
    fc.assert(
      fc.property(ohemCase(), (c) => {
        // A perturbation of 1e-6 must not reorder anchors: keep cases whose losses are 1e-4 apart.
        fc.pre(lossesApart(c, 1e-4));
        const { yTrue, logits, anchors } = caseTensors(c);
        assertGradcheck((x) => ohem(c.options)(yTrue, x, anchors), [logits]);
      }),
      { numRuns: 40 },
    );
  });

  it("second order: the BCE curvature sigmoid'(x) / |S| on the selected anchors", () => {
    fc.assert(
      fc.property(ohemCase(), (c) => {
        fc.pre(lossesApart(c, 1e-3));
        const { yTrue, logits, anchors } = caseTensors(c);
        assertGradgradcheck((x) => ohem(c.options)(yTrue, x, anchors), [logits], { atol: 1e-4 });
      }),
      { numRuns: 10 },
    );
  });

  describe("errors", () => {
    const yTrue = fourTargets;
    const logits = fourLogits();
    it("bad options name the option, the value and what is expected", () => {
      expect(() => ohem({ examplesPerImage: 0 })).toThrow(
        "ohem: examplesPerImage must be an integer >= 1, got 0",
      );
      expect(() => ohem({ examplesPerImage: 2.5 })).toThrow("examplesPerImage must be an integer");
      expect(() => ohem({ iouThreshold: 1.5 })).toThrow(
        "ohem: iouThreshold must be a number in [0, 1], got 1.5",
      );
      expect(() => ohem({ negativesPerPositive: 0 })).toThrow(
        "ohem: negativesPerPositive must be a finite number > 0 or null, got 0",
      );
      expect(() => ohem({ negativesPerPositive: Number.NaN })).toThrow("negativesPerPositive");
      expect(() => ohem({ examplesPerImage: 3, negativesPerPositive: 3 })).toThrow(
        "ohem: examplesPerImage (3) must be at least 1 + negativesPerPositive (4)",
      );
      expect(() => ohem({ batchSize: 128 } as OhemOptions)).toThrow(/ohem.*batchSize/);
    });

    it("anchors that do not match the logits, or malformed boxes", () => {
      const loss = ohem();
      expect(() => loss(yTrue, logits, f64([[0, 0, 1, 1]]))).toThrow(
        "ohem: anchors must have shape [4, 4] (one box per anchor of logits), got a float64 tensor of shape [1, 4]",
      );
      expect(() => loss(yTrue, logits, f64([0, 0, 1, 1]))).toThrow(
        "ohem: anchors must have rank 2",
      );
      expect(() => loss(yTrue, logits, [[0, 0, 1, 1]] as unknown as Tensor)).toThrow(
        "ohem: anchors must be a Tensor, got an array",
      );
      const flipped = f64([
        [0, 0, 10, 10],
        [1, 1, 11, 11],
        [30, 20, 20, 30],
        [40, 40, 50, 50],
      ]);
      expect(() => loss(yTrue, logits, flipped)).toThrow(
        "ohem: every box of anchors must be finite with x2 > x1 and y2 > y1, got [30, 20, 20, 30] at row 2",
      );
    });

    it("a NaN logit in an anchor that is not ignored, and the target layout", () => {
      const nan = f64([[[log(3)], [Number.NaN], [0], [1]]]);
      expect(() => ohem()(yTrue, nan, fourAnchors)).toThrow(
        "ohem: the loss of anchor [0, 1] is NaN (its logits hold NaN), so it cannot be ranked",
      );
      expect(() => ohem()(f64([[[0, 0, 0]]]), f64([[[0]]]), f64([[0, 0, 1, 1]]))).toThrow(
        "ohem: the last dimension of yTrue must be C + 1 = 2",
      );
      expect(() =>
        ohem()(yTrue, tensor([[[1], [2], [3], [4]]], { dtype: "int32" }), fourAnchors),
      ).toThrow("ohem: logits must hold float32 or float64 logits");
    });
  });
});

interface OhemCase {
  options: OhemOptions;
  shape: [number, number, number];
  yTrue: number[];
  logits: number[];
  anchors: number[];
}

/** The case as float64 tensors: yTrue [B, N, C + 1], logits [B, N, C], anchors [N, 4]. */
function caseTensors(c: OhemCase): { yTrue: Tensor; logits: Tensor; anchors: Tensor } {
  const [batch, count, classes] = c.shape;
  return {
    yTrue: tensor(c.yTrue, { shape: [batch, count, classes + 1], dtype: "float64" }),
    logits: tensor(c.logits, { shape: c.shape, dtype: "float64" }),
    anchors: tensor(c.anchors, { shape: [count, 4], dtype: "float64" }),
  };
}

/** Whether every two anchor losses of the case (by the reference) differ by more than `gap`. */
/**
 * No two anchor losses differ by less than `gap` without being equal, and no two anchors' IoU is
 * within `gap` of the NMS threshold (whether one suppresses the other then depends on rounding).
 */
function noNearTies(c: OhemCase, gap: number): boolean {
  // Losses of anchors whose logits and labels are the same are equal in every computation; any
  // other pair must be more than `gap` apart.
  const [batch, count0, classes] = c.shape;
  const losses = referenceOhem(c).anchorLosses;
  const rows: { loss: number; key: string }[] = [];
  let next = 0;
  for (let b = 0; b < batch; b++) {
    for (let n = 0; n < count0; n++) {
      const at = b * count0 + n;
      const labels = c.yTrue.slice(at * (classes + 1), (at + 1) * (classes + 1));
      if (labels[classes] === -1) continue;
      const logits = c.logits.slice(at * classes, (at + 1) * classes);
      rows.push({
        loss: losses[next++],
        key: JSON.stringify([labels, logits]),
      });
    }
  }
  rows.sort((p, q) => p.loss - q.loss);
  const apart = rows.every(
    (r, i) => i === 0 || r.loss - rows[i - 1].loss > gap || r.key === rows[i - 1].key,
  );
  if (!apart) return false;
  const threshold = c.options.iouThreshold ?? 0.5;
  const count = c.anchors.length / 4;
  for (let i = 0; i < count; i++) {
    for (let j = i + 1; j < count; j++) {
      if (Math.abs(anchorIou(c.anchors, i, j) - threshold) < gap) return false;
    }
  }
  return true;
}

function lossesApart(c: OhemCase, gap: number): boolean {
  const sorted = [...referenceOhem(c).anchorLosses].sort((a, b) => a - b);
  return sorted.every((v, i) => i === 0 || v - sorted[i - 1] > gap);
}

/** Small random batches with overlapping anchors, so that NMS suppresses some of them. */
function ohemCase(): fc.Arbitrary<OhemCase> {
  const box = fc
    .tuple(
      fc.double({ min: 0, max: 20, noNaN: true }),
      fc.double({ min: 0, max: 20, noNaN: true }),
      fc.double({ min: 2, max: 12, noNaN: true }),
      fc.double({ min: 2, max: 12, noNaN: true }),
    )
    .map(([x, y, w, h]) => [x, y, x + w, y + h]);
  return fc
    .record({
      batch: fc.integer({ min: 1, max: 2 }),
      anchors: fc.integer({ min: 1, max: 6 }),
      classes: fc.integer({ min: 1, max: 3 }),
      examplesPerImage: fc.integer({ min: 1, max: 6 }),
      iouThreshold: fc.constantFrom(0.3, 0.5, 0.7),
      ratio: fc.constantFrom(null, 1, 3),
    })
    .chain(({ batch, anchors, classes, examplesPerImage, iouThreshold, ratio }) =>
      fc
        .tuple(
          fc.array(box, { minLength: anchors, maxLength: anchors }),
          fc.array(fc.constantFrom(-1, 0, 1), {
            minLength: batch * anchors,
            maxLength: batch * anchors,
          }),
          fc.array(fc.constantFrom(0, 1), {
            minLength: batch * anchors * classes,
            maxLength: batch * anchors * classes,
          }),
          fc.array(fc.double({ min: -4, max: 4, noNaN: true }), {
            minLength: batch * anchors * classes,
            maxLength: batch * anchors * classes,
          }),
        )
        .map(([boxes, states, labels, logits]) => {
          const yTrue: number[] = [];
          for (let a = 0; a < batch * anchors; a++) {
            for (let c = 0; c < classes; c++) yTrue.push(labels[a * classes + c]);
            yTrue.push(states[a]);
          }
          const e = ratio === null ? examplesPerImage : Math.max(examplesPerImage, 1 + ratio);
          return {
            options: { examplesPerImage: e, iouThreshold, negativesPerPositive: ratio },
            shape: [batch, anchors, classes] as [number, number, number],
            yTrue,
            logits,
            anchors: boxes.flat(),
          };
        }),
    );
}

/**
 * The loss written out in plain float64 JavaScript from its definition: per-anchor BCE summed
 * over classes, greedy NMS by decreasing loss (ties by index, a box dropped when its IoU with a
 * kept one exceeds the threshold), the selection, and the gradient (sigmoid(x) - y) / |S|.
 */
/** IoU of anchors i and j of the flat [N, 4] corner list, in float64. */
function anchorIou(anchors: number[], i: number, j: number): number {
  const [a, b] = [anchors.slice(4 * i, 4 * i + 4), anchors.slice(4 * j, 4 * j + 4)];
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r: number[]) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

function referenceOhem({ options, shape, yTrue, logits, anchors }: OhemCase): {
  loss: number;
  grad: number[];
  anchorLosses: number[];
} {
  const [batch, count, classes] = shape;
  const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const label = (b: number, n: number, c: number) => yTrue[(b * count + n) * (classes + 1) + c];
  const logit = (b: number, n: number, c: number) => logits[(b * count + n) * classes + c];
  const iou = (i: number, j: number) => anchorIou(anchors, i, j);
  const budget = options.examplesPerImage ?? 128;
  const ratio = options.negativesPerPositive ?? null;
  const anchorLosses: number[] = [];
  const selected: [number, number][] = [];
  for (let b = 0; b < batch; b++) {
    const scored: { n: number; loss: number; state: number }[] = [];
    for (let n = 0; n < count; n++) {
      const state = label(b, n, classes);
      if (state === -1) continue;
      let loss = 0;
      for (let c = 0; c < classes; c++) {
        loss += softplus(logit(b, n, c)) - logit(b, n, c) * label(b, n, c);
      }
      scored.push({ n, loss, state });
      anchorLosses.push(loss);
    }
    scored.sort((p, q) => q.loss - p.loss || p.n - q.n);
    const kept: typeof scored = [];
    for (const s of scored) {
      if (kept.every((k) => iou(k.n, s.n) <= (options.iouThreshold ?? 0.5))) kept.push(s);
    }
    if (ratio === null) {
      for (const k of kept.slice(0, budget)) selected.push([b, k.n]);
    } else {
      const positives = kept.filter((k) => k.state === 1);
      const negatives = kept.filter((k) => k.state === 0);
      const p = Math.min(positives.length, Math.floor(budget / (1 + ratio)));
      const q = Math.min(negatives.length, Math.floor(ratio * p));
      for (const k of [...positives.slice(0, p), ...negatives.slice(0, q)]) selected.push([b, k.n]);
    }
  }
  const size = Math.max(1, selected.length);
  let loss = 0;
  const grad = new Array<number>(logits.length).fill(0);
  for (const [b, n] of selected) {
    for (let c = 0; c < classes; c++) {
      const x = logit(b, n, c);
      loss += softplus(x) - x * label(b, n, c);
      grad[(b * count + n) * classes + c] = (sigmoid(x) - label(b, n, c)) / size;
    }
  }
  return { loss: loss / size, grad, anchorLosses };
}
