import { tensor, zeros } from "@focalgrad/core";
import { describe, expect, it } from "vitest";
import { Canvas, type Colour } from "../../src/detection/canvas.js";
import { arrange, detectionsGrid, lineChart } from "../../src/detection/plots.js";
import { lossCurves } from "../../src/detection/train.js";

const pixel = (canvas: Canvas, x: number, y: number) =>
  Array.from(canvas.pixels.subarray((y * canvas.width + x) * 4, (y * canvas.width + x) * 4 + 3));

describe("arrange", () => {
  it("lays canvases out in rows, each cell as wide and high as the largest of its column and row", () => {
    const red: Colour = [255, 0, 0];
    const blue: Colour = [0, 0, 255];
    const green: Colour = [0, 255, 0];
    // Columns of 2: [2 × 1 red, 1 × 3 blue] over [1 × 1 green]. Widths 2 and 1, heights 3 and 1.
    const out = arrange(
      [new Canvas(2, 1, red), new Canvas(1, 3, blue), new Canvas(1, 1, green)],
      2,
    );
    expect([out.width, out.height]).toEqual([3, 4]);
    expect(pixel(out, 0, 0)).toEqual(red);
    expect(pixel(out, 1, 0)).toEqual(red);
    expect(pixel(out, 2, 0)).toEqual(blue);
    expect(pixel(out, 2, 2)).toEqual(blue);
    expect(pixel(out, 0, 1)).toEqual([255, 255, 255]); // below the red canvas: background
    expect(pixel(out, 0, 3)).toEqual(green);
    expect(pixel(out, 1, 3)).toEqual([255, 255, 255]);
    expect(() => arrange([])).toThrow("arrange: expected at least one canvas");
  });
});

describe("lineChart", () => {
  it("maps [yMin, yMax] onto the plot's height", () => {
    const colour: Colour = [10, 20, 30];
    // 100 × 100: the plot spans rows 24 (yMax) to 76 (yMin) and columns 40 to 90 (x from 0 to 1),
    // so y = 0 in [-1, 1] is row 50 and x = 0.5 column 65.
    const chart = lineChart(
      "t",
      [
        {
          name: "c",
          colour,
          points: [
            [0, 0],
            [1, 0],
          ],
        },
      ],
      {
        width: 100,
        height: 100,
        yMin: -1,
        yMax: 1,
      },
    );
    expect(pixel(chart, 65, 50)).toEqual([10, 20, 30]);
    expect(pixel(chart, 65, 60)).not.toEqual([10, 20, 30]);
  });
});

describe("detectionsGrid", () => {
  const image = tensor(new Array(3 * 16 * 16).fill(0.5), { shape: [1, 3, 16, 16] });
  const truth = [{ boxes: zeros([0, 4]), labels: zeros([0], { dtype: "int32" }) }];
  const detections = (scores: number[], labels: number[]) => [
    {
      boxes: tensor(
        scores.map(() => [2, 6, 12, 14]),
        { shape: [scores.length, 4] },
      ),
      scores: tensor(scores),
      labels: tensor(labels, { dtype: "int32" }),
    },
  ];
  it("draws the best of coinciding boxes last, so its label is the one on top", () => {
    // Per-class NMS keeps a box per class on one object; sorted best first. Labels "aa 0.90" and
    // "bb 0.50" are as long, so the best one's label covers the other's exactly.
    const both = detectionsGrid(image, truth, detections([0.9, 0.5], [0, 1]), ["aa", "bb"]);
    const best = detectionsGrid(image, truth, detections([0.9], [0]), ["aa", "bb"]);
    const worst = detectionsGrid(image, truth, detections([0.5], [1]), ["aa", "bb"]);
    expect(Buffer.compare(Buffer.from(both.pixels), Buffer.from(best.pixels))).toBe(0);
    expect(Buffer.compare(Buffer.from(both.pixels), Buffer.from(worst.pixels))).not.toBe(0);
    // Below the threshold (default 0.4) a detection is not drawn at all.
    const faint = detectionsGrid(image, truth, detections([0.9, 0.3], [0, 1]), ["aa", "bb"]);
    expect(Buffer.compare(Buffer.from(faint.pixels), Buffer.from(best.pixels))).toBe(0);
  });
});

describe("loss.png's training-loss curves", () => {
  it("name the classification curve after the run's loss, and smooth over a fiftieth of the run", () => {
    // 100 steps: a window of 2. Step s has classification loss s and box loss 1, so the smoothed
    // classification curve at step index i ≥ 1 is (i + (i − 1)) / 2 = i − 0.5, and the total adds 1.
    const steps = Array.from({ length: 100 }, (_, i) => [i, i, 1] as [number, number, number]);
    const [total, cls, box] = lossCurves("ohem", steps);
    expect([total.name, cls.name, box.name]).toEqual(["total", "ohem", "smooth l1"]);
    expect(cls.points[0]).toEqual([1, 0]);
    expect(cls.points[10]).toEqual([11, 9.5]);
    expect(total.points[10]).toEqual([11, 10.5]);
    expect(box.points.every(([, y]) => y === 1)).toBe(true);
    expect(lossCurves("focal", steps)[1].name).toBe("focal");
  });
});
