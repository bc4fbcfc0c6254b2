import { describe, expect, it } from "vitest";
import { Canvas, type Colour } from "../../src/detection/canvas.js";
import { arrange, lineChart } from "../../src/detection/plots.js";

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
