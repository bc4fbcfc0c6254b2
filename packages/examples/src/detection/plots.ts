/** The pictures of a run directory: loss.png (training curves and mAP) and detections.png (held-out images with predicted and true boxes). */

import type { Tensor } from "@focalgrad/core";
import { Canvas, type Colour, GLYPH_ADVANCE, GLYPH_HEIGHT } from "./canvas.js";
import type { Annotation } from "./datasets.js";
import type { Detections } from "./evaluate.js";

/** A named curve: y over x, drawn in `colour`. */
export interface Curve {
  name: string;
  colour: Colour;
  points: readonly (readonly [number, number])[];
}

const AXIS: Colour = [60, 60, 60];
const GRID: Colour = [225, 225, 225];

/** A short label for an axis tick. */
function tickLabel(v: number): string {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (Math.abs(v) >= 10) return String(Math.round(v));
  return String(Number(v.toPrecision(2)));
}

/**
 * A line chart of `curves` on a canvas of `width` × `height`, with axes, 5 ticks per axis,
 * a title and a legend; the y range is [`yMin` (default 0), `yMax` (default the largest value)],
 * and values outside it are drawn at its edge.
 *
 * @example
 * const canvas = lineChart("loss", [{ name: "loss", colour: [200, 0, 0], points: [[0, 1], [10, 0.5]] }]);
 * await canvas.writePng("loss.png");
 */
export function lineChart(
  title: string,
  curves: readonly Curve[],
  options: { width?: number; height?: number; yMin?: number; yMax?: number; xLabel?: string } = {},
): Canvas {
  const { width = 480, height = 240, xLabel = "step", yMin = 0 } = options;
  const canvas = new Canvas(width, height);
  const left = 40;
  const right = width - 10;
  const top = 24;
  const bottom = height - 24;
  const all = curves.flatMap((c) => c.points);
  const xMin = Math.min(0, ...all.map(([x]) => x));
  const xMax = Math.max(xMin + 1, ...all.map(([x]) => x));
  const finite = all.map(([, y]) => y).filter(Number.isFinite);
  const yMax = options.yMax ?? Math.max(yMin + 1e-6, ...finite);
  const px = (x: number) => left + ((x - xMin) / (xMax - xMin)) * (right - left);
  const py = (y: number) =>
    bottom - ((Math.min(Math.max(y, yMin), yMax) - yMin) / (yMax - yMin)) * (bottom - top);
  for (let i = 0; i <= 4; i++) {
    const y = yMin + ((yMax - yMin) * i) / 4;
    canvas.line(left, py(y), right, py(y), GRID);
    canvas.text(2, Math.round(py(y)) - 2, tickLabel(y), AXIS);
    const x = xMin + ((xMax - xMin) * i) / 4;
    canvas.line(px(x), bottom, px(x), bottom + 3, AXIS);
    const label = tickLabel(x);
    canvas.text(Math.round(px(x)) - (label.length * GLYPH_ADVANCE) / 2, bottom + 6, label, AXIS);
  }
  canvas.line(left, top, left, bottom, AXIS);
  canvas.line(left, bottom, right, bottom, AXIS);
  canvas.text(left, 6, title, AXIS, 2);
  canvas.text(right - xLabel.length * GLYPH_ADVANCE, bottom + 14, xLabel, AXIS);
  let legendX = left + title.length * GLYPH_ADVANCE * 2 + 16;
  for (const curve of curves) {
    canvas.fill(legendX, 9, 8, 3, curve.colour);
    canvas.text(legendX + 11, 8, curve.name, AXIS);
    legendX += 11 + curve.name.length * GLYPH_ADVANCE + 12;
    curve.points.forEach(([x, y], i) => {
      if (!Number.isFinite(y)) return;
      if (i > 0 && Number.isFinite(curve.points[i - 1][1])) {
        const [x0, y0] = curve.points[i - 1];
        canvas.line(px(x0), py(y0), px(x), py(y), curve.colour);
      }
      if (curve.points.length < 30)
        canvas.fill(Math.round(px(x)) - 1, Math.round(py(y)) - 1, 3, 3, curve.colour);
    });
  }
  return canvas;
}

/**
 * The canvases laid out in rows of `columns` (default 1: one under the other), each at the top
 * left of its cell, on a white background; cells are as wide as the widest canvas of their column
 * and as high as the highest of their row.
 *
 * @example
 * await arrange([lossChart, mapChart]).writePng("loss.png");
 */
export function arrange(canvases: readonly Canvas[], columns = 1): Canvas {
  if (canvases.length === 0) throw new Error("arrange: expected at least one canvas");
  const widths = Array.from({ length: columns }, (_, c) =>
    Math.max(0, ...canvases.filter((_, i) => i % columns === c).map((k) => k.width)),
  );
  const rows = Math.ceil(canvases.length / columns);
  const heights = Array.from({ length: rows }, (_, r) =>
    Math.max(...canvases.slice(r * columns, (r + 1) * columns).map((k) => k.height)),
  );
  const out = new Canvas(
    widths.reduce((a, w) => a + w, 0),
    heights.reduce((a, h) => a + h, 0),
  );
  canvases.forEach((canvas, i) => {
    const x0 = widths.slice(0, i % columns).reduce((a, w) => a + w, 0);
    const y0 = heights.slice(0, Math.floor(i / columns)).reduce((a, h) => a + h, 0);
    for (let y = 0; y < canvas.height; y++) {
      const from = y * canvas.width * 4;
      out.pixels.set(
        canvas.pixels.subarray(from, from + canvas.width * 4),
        ((y0 + y) * out.width + x0) * 4,
      );
    }
  });
  return out;
}

/** Ground-truth boxes in the detections picture. */
export const TRUTH_COLOUR: Colour = [0, 230, 0];
/** Predicted boxes in the detections picture. */
export const PREDICTION_COLOUR: Colour = [255, 40, 40];

/**
 * A grid of images (the first `count` of `images`, `[B, 3, H, W]`) magnified `scale` times, each
 * with its ground-truth boxes in green and its predicted boxes scoring at least `minScore`
 * (default 0.3) in red, labelled "class score", under a legend line.
 *
 * @example
 * const canvas = detectionsGrid(test.images, test.annotations, detections, ["disc", "square", "triangle"]);
 * await canvas.writePng("detections.png");
 */
export function detectionsGrid(
  images: Tensor,
  truths: readonly Annotation[],
  detections: readonly Detections[],
  classNames: readonly string[],
  options: { count?: number; columns?: number; scale?: number; minScore?: number } = {},
): Canvas {
  const { columns = 4, scale = 3, minScore = 0.3 } = options;
  const thickness = scale >= 3 ? 2 : 1;
  const count = Math.min(options.count ?? 8, images.shape[0], detections.length);
  const [, , h, w] = images.shape;
  const gap = 4;
  const legend = 14;
  const rows = Math.ceil(count / columns);
  const canvas = new Canvas(
    columns * (w * scale + gap) + gap,
    legend + rows * (h * scale + gap) + gap,
    [32, 32, 32],
  );
  canvas.text(gap, 4, "true", TRUTH_COLOUR);
  canvas.text(gap + 5 * GLYPH_ADVANCE, 4, `predicted (score >= ${minScore})`, PREDICTION_COLOUR);
  for (let i = 0; i < count; i++) {
    const x0 = gap + (i % columns) * (w * scale + gap);
    const y0 = legend + gap + Math.floor(i / columns) * (h * scale + gap);
    canvas.image(images, i, x0, y0, scale);
    const t = truths[i].boxes.data;
    for (let k = 0; k < t.length; k += 4) {
      canvas.rectangle(
        x0 + t[k] * scale,
        y0 + t[k + 1] * scale,
        x0 + t[k + 2] * scale,
        y0 + t[k + 3] * scale,
        TRUTH_COLOUR,
        thickness,
      );
    }
    const d = detections[i];
    const boxes = d.boxes.data;
    for (let k = 0; k < d.scores.shape[0]; k++) {
      const score = d.scores.data[k];
      if (score < minScore) continue;
      const [bx1, by1, bx2, by2] = [0, 1, 2, 3].map((j) => boxes[4 * k + j] * scale);
      canvas.rectangle(x0 + bx1, y0 + by1, x0 + bx2, y0 + by2, PREDICTION_COLOUR, thickness);
      const label = `${classNames[d.labels.data[k]] ?? d.labels.data[k]} ${score.toFixed(2)}`;
      const ty = Math.max(y0, y0 + by1 - GLYPH_HEIGHT - 2);
      canvas.fill(x0 + bx1, ty - 1, label.length * GLYPH_ADVANCE + 1, GLYPH_HEIGHT + 2, [0, 0, 0]);
      canvas.text(x0 + bx1 + 1, ty, label, PREDICTION_COLOUR);
    }
  }
  return canvas;
}
