/** An RGBA raster to draw pictures of a run on (images, boxes, lines, small text), written out as PNG by pngjs. */

import type { Tensor } from "@focalgrad/core";
import { PNG } from "pngjs";
import { writeAtomic } from "./files.js";

/** An opaque colour as [red, green, blue], each 0–255. */
export type Colour = readonly [number, number, number];

/**
 * 3 × 5 pixel glyphs, one string of five rows per character ("#" is ink). Lower-case letters are
 * drawn as capitals; characters without a glyph draw as "?".
 */
const GLYPHS: Record<string, string> = {
  "0": "###|#.#|#.#|#.#|###",
  "1": ".#.|##.|.#.|.#.|###",
  "2": "###|..#|###|#..|###",
  "3": "###|..#|.##|..#|###",
  "4": "#.#|#.#|###|..#|..#",
  "5": "###|#..|###|..#|###",
  "6": "###|#..|###|#.#|###",
  "7": "###|..#|.#.|.#.|.#.",
  "8": "###|#.#|###|#.#|###",
  "9": "###|#.#|###|..#|###",
  A: ".#.|#.#|###|#.#|#.#",
  B: "##.|#.#|##.|#.#|##.",
  C: ".##|#..|#..|#..|.##",
  D: "##.|#.#|#.#|#.#|##.",
  E: "###|#..|##.|#..|###",
  F: "###|#..|##.|#..|#..",
  G: ".##|#..|#.#|#.#|.##",
  H: "#.#|#.#|###|#.#|#.#",
  I: "###|.#.|.#.|.#.|###",
  J: "..#|..#|..#|#.#|.#.",
  K: "#.#|#.#|##.|#.#|#.#",
  L: "#..|#..|#..|#..|###",
  M: "#.#|###|###|#.#|#.#",
  N: "##.|#.#|#.#|#.#|#.#",
  O: ".#.|#.#|#.#|#.#|.#.",
  P: "##.|#.#|##.|#..|#..",
  Q: ".#.|#.#|#.#|##.|.##",
  R: "##.|#.#|##.|#.#|#.#",
  S: ".##|#..|.#.|..#|##.",
  T: "###|.#.|.#.|.#.|.#.",
  U: "#.#|#.#|#.#|#.#|###",
  V: "#.#|#.#|#.#|#.#|.#.",
  W: "#.#|#.#|###|###|#.#",
  X: "#.#|#.#|.#.|#.#|#.#",
  Y: "#.#|#.#|.#.|.#.|.#.",
  Z: "###|..#|.#.|#..|###",
  ".": "...|...|...|...|.#.",
  ",": "...|...|...|.#.|#..",
  ":": "...|.#.|...|.#.|...",
  "-": "...|...|###|...|...",
  "+": "...|.#.|###|.#.|...",
  "=": "...|###|...|###|...",
  "/": "..#|..#|.#.|#..|#..",
  "(": ".#.|#..|#..|#..|.#.",
  ")": ".#.|..#|..#|..#|.#.",
  "@": "###|#.#|#.#|#..|.##",
  "%": "#.#|..#|.#.|#..|#.#",
  " ": "...|...|...|...|...",
  "?": "###|..#|.##|...|.#.",
};

/** Height of a line of text at scale 1, in pixels. */
export const GLYPH_HEIGHT = 5;

/** Advance of one character at scale 1, in pixels (3 of glyph, 1 of space). */
export const GLYPH_ADVANCE = 4;

/**
 * A width × height RGBA picture, filled with one colour, that images, rectangles, lines and text
 * are drawn onto, and that `writePng` saves.
 *
 * @example
 * const canvas = new Canvas(64, 32, [255, 255, 255]);
 * canvas.rectangle(4, 4, 20, 20, [255, 0, 0]);
 * canvas.text(24, 4, "disc 0.97", [0, 0, 0]);
 * await canvas.writePng("picture.png");
 */
export class Canvas {
  readonly pixels: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Colour = [255, 255, 255],
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new Error(`Canvas: width and height must be integers >= 1, got ${width} × ${height}`);
    }
    this.pixels = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) this.pixels.set([...background, 255], i * 4);
  }

  /** Sets one pixel; points outside the canvas are skipped. */
  point(x: number, y: number, colour: Colour): void {
    const px = Math.round(x);
    const py = Math.round(y);
    if (px < 0 || py < 0 || px >= this.width || py >= this.height) return;
    const at = (py * this.width + px) * 4;
    this.pixels[at] = colour[0];
    this.pixels[at + 1] = colour[1];
    this.pixels[at + 2] = colour[2];
  }

  /** A filled rectangle of pixels [x, x + w) × [y, y + h). */
  fill(x: number, y: number, w: number, h: number, colour: Colour): void {
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) this.point(x + c, y + r, colour);
  }

  /** A straight line of `thickness` pixels from (x0, y0) to (x1, y1), by steps of at most one pixel. */
  line(x0: number, y0: number, x1: number, y1: number, colour: Colour, thickness = 1): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let i = 0; i <= steps; i++) {
      const x = x0 + ((x1 - x0) * i) / steps;
      const y = y0 + ((y1 - y0) * i) / steps;
      this.fill(Math.round(x), Math.round(y), thickness, thickness, colour);
    }
  }

  /**
   * The outline of the box (x1, y1, x2, y2), a box in pixel-edge coordinates: its pixels are
   * columns x1 … x2 − 1 and rows y1 … y2 − 1, so the outline lies just inside it.
   */
  rectangle(x1: number, y1: number, x2: number, y2: number, colour: Colour, thickness = 1): void {
    const [l, t] = [Math.round(x1), Math.round(y1)];
    const [r, b] = [Math.round(x2) - thickness, Math.round(y2) - thickness];
    this.line(l, t, r, t, colour, thickness);
    this.line(l, b, r, b, colour, thickness);
    this.line(l, t, l, b, colour, thickness);
    this.line(r, t, r, b, colour, thickness);
  }

  /** `text` with its top-left corner at (x, y), in the 3 × 5 pixel font magnified `scale` times. */
  text(x: number, y: number, text: string, colour: Colour, scale = 1): void {
    let cx = x;
    for (const ch of text) {
      const glyph = GLYPHS[ch] ?? GLYPHS[ch.toUpperCase()] ?? GLYPHS["?"];
      glyph.split("|").forEach((row, r) => {
        for (let c = 0; c < row.length; c++) {
          if (row[c] === "#") this.fill(cx + c * scale, y + r * scale, scale, scale, colour);
        }
      });
      cx += GLYPH_ADVANCE * scale;
    }
  }

  /**
   * Draws image `index` of `images` ([B, 3, H, W] float32 in [0, 1]) with its top-left corner at
   * (x, y), each pixel as a `scale` × `scale` square.
   */
  image(images: Tensor, index: number, x: number, y: number, scale = 1): void {
    const [, channels, h, w] = images.shape;
    if (images.rank !== 4 || channels !== 3) {
      throw new Error(
        `Canvas.image: images must be [B, 3, H, W], got [${images.shape.join(", ")}]`,
      );
    }
    const plane = h * w;
    const offset = index * 3 * plane;
    const data = images.data;
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const at = offset + r * w + c;
        const colour: Colour = [0, 1, 2].map((ch) =>
          Math.round(255 * Math.min(1, Math.max(0, data[at + ch * plane]))),
        ) as unknown as Colour;
        this.fill(x + c * scale, y + r * scale, scale, scale, colour);
      }
    }
  }

  /** The picture as PNG bytes (pngjs's encoder). */
  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data = Buffer.from(this.pixels.buffer, this.pixels.byteOffset, this.pixels.byteLength);
    return PNG.sync.write(png);
  }

  /** Writes the picture to `path` as PNG, atomically (a temporary file renamed into place). */
  async writePng(path: string): Promise<void> {
    await writeAtomic(path, this.toPng());
  }
}
