import { describe, expect, it } from "vitest";
import {
  add,
  avgPool2d,
  clip,
  concat,
  conv2d,
  gather,
  matmul,
  maxPool2d,
  mean,
  mul,
  nn,
  noGrad,
  pad,
  permute,
  recordedOp,
  slice,
  sum,
  tensor,
  zeros,
} from "../src/index.js";

// recordedOp reads the recording back as a program: the op, its inputs and the attributes that the
// forward code used besides them. The exporter of @focalgrad/onnx depends on every value below.
describe("recordedOp", () => {
  const leaf = (shape: number[]) => {
    const t = zeros(shape);
    t.requiresGrad = true;
    return t;
  };

  it("gives the op and its inputs, a plain number as the scalar tensor it became, and null for leaves", () => {
    const x = leaf([2]);
    const y = mul(x, 3);
    const op = recordedOp(y);
    expect(op?.op).toBe("mul");
    expect(op?.inputs[0]).toBe(x);
    expect(op?.inputs[1].shape).toEqual([]);
    expect(op?.inputs[1].item()).toBe(3);
    expect(op?.attributes).toEqual({});
    expect(recordedOp(x)).toBeNull();
    // Nothing is recorded where no input requires a gradient, or inside noGrad.
    expect(recordedOp(mul(tensor([1, 2]), 3))).toBeNull();
    expect(noGrad(() => recordedOp(add(x, 1)))).toBeNull();
  });

  it("records a convolution's stride, dilation, groups and its padding before and after each axis", () => {
    const x = leaf([1, 4, 64, 64]);
    // "same" at stride 2 on 64 rows with a 3-tap kernel: 32 outputs, (32 − 1)·2 + 3 − 64 = 1 zero
    // in all, none before and 1 after (TensorFlow's rule): [top, left, bottom, right] = [0, 0, 1, 1].
    const same = conv2d(x, zeros([8, 4, 3, 3]), { stride: 2, padding: "same" });
    expect(recordedOp(same)?.attributes).toEqual({
      kernelSize: [3, 3],
      stride: [2, 2],
      padding: [0, 0, 1, 1],
      dilation: [1, 1],
      groups: 1,
    });
    // Padding 1, stride 2, kernel 2 on 64 × 64: 33 outputs; the last window ends at 32·2 + 2 = 66
    // = 1 + 64 + 1, so one zero after. Dilation 2 and 2 groups pass through.
    const strided = conv2d(x, zeros([4, 2, 2, 2]), { stride: 2, padding: 1, groups: 2 });
    expect(recordedOp(strided)?.attributes.padding).toEqual([1, 1, 1, 1]);
    const dilated = conv2d(x, zeros([4, 4, 3, 3]), { dilation: 2, padding: [2, 0] });
    // Height: 64 + 4 − 5 + 1 = 64 rows, ending at 63 + 5 = 68 = 2 + 64 + 2. Width: 60 columns, no zeros.
    expect(recordedOp(dilated)?.attributes).toMatchObject({
      padding: [2, 0, 2, 0],
      dilation: [2, 2],
    });
  });

  it("records a pool's window; rows a floor-rounded output never reads need no zeros after", () => {
    // 5 rows, window 2, stride 2: 2 outputs reading rows 0–3; row 4 is never read, so 0 after (not −1).
    const x = leaf([1, 1, 5, 6]);
    expect(recordedOp(maxPool2d(x, { kernelSize: 2 }))?.attributes).toEqual({
      kernelSize: [2, 2],
      stride: [2, 2],
      padding: [0, 0, 0, 0],
      dilation: [1, 1],
    });
    // Window 3, stride 2, padding 1 on 5 × 6: 3 outputs each way; rows end at 2·2 + 3 = 7 = 1 + 5 + 1,
    // columns at 7 = 1 + 6 + 0.
    expect(
      recordedOp(avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }))?.attributes.padding,
    ).toEqual([1, 1, 1, 0]);
  });

  it("records the permutation, the concat axis, the reduced axes, the slice start and the padding", () => {
    const x = leaf([2, 3, 4]);
    expect(recordedOp(permute(x, [0, -1, 1]))?.attributes).toEqual({ perm: [0, 2, 1] });
    expect(recordedOp(concat([x, x], -2))?.attributes).toEqual({ axis: 1 });
    expect(recordedOp(sum(x, { axis: [-1, 0], keepdims: true }))?.attributes).toEqual({
      axes: [0, 2],
      keepdims: true,
    });
    // mean is a sum divided by the count: the div's inputs are the sum and the scalar 12.
    const m = recordedOp(mean(x, { axis: [1, 2] }));
    expect(m?.op).toBe("div");
    expect(recordedOp(m!.inputs[0])?.attributes).toEqual({ axes: [1, 2], keepdims: false });
    expect(m?.inputs[1].item()).toBe(12);
    expect(recordedOp(slice(x, [1, 0, 2], [1, -1, 2]))?.attributes).toEqual({ begin: [1, 0, 2] });
    expect(
      recordedOp(
        pad(
          x,
          [
            [0, 1],
            [2, 0],
            [1, 1],
          ],
          -1,
        ),
      )?.attributes,
    ).toEqual({ padding: [0, 1, 2, 0, 1, 1], value: -1 });
  });
});

describe("recordedOp of products, clips and gathers", () => {
  it("records matmul's transposes, clip's bounds in x's dtype and gather's axis", () => {
    const a = zeros([2, 3]);
    a.requiresGrad = true;
    expect(recordedOp(matmul(a, zeros([3, 4])))?.attributes).toEqual({
      transposeA: false,
      transposeB: false,
    });
    // nn.Linear multiplies by weightᵀ without a copy: the product records transposeB.
    const linear = new nn.Linear(3, 5);
    const y = recordedOp(linear.forward(a));
    expect(y?.op).toBe("add");
    expect(recordedOp(y!.inputs[0])?.attributes).toEqual({ transposeA: false, transposeB: true });
    // 0.1 rounded to float32 is 0.100000001490116…, the bound the kernel compares with.
    expect(recordedOp(clip(a, 0.1, 2))?.attributes).toEqual({ lo: Math.fround(0.1), hi: 2 });
    expect(recordedOp(gather(a, tensor([1, 0], { dtype: "int32" }), -1))?.attributes).toEqual({
      axis: 1,
    });
  });
});
