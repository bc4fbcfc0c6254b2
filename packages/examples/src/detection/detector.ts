/** A trained detector: RetinaNet plus its anchors, box coder and post-processing, and `loadDetector` to get one back from a run directory. */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { noGrad, slice, type Tensor } from "@focalgrad/core";
import { load } from "@focalgrad/core/checkpoint";
import { type AnchorConfig, anchorLevels, anchorsFor, cornerBoxCoder } from "@focalgrad/losses";
import type { Detections } from "./evaluate.js";
import { type ResolvedRetinaNetConfig, RetinaNet } from "./model.js";
import { type AnchorSet, type PostprocessOptions, postprocess } from "./postprocess.js";

/** What a run directory's config.json says about the detector (the rest is training settings). */
export interface DetectorConfig {
  /** The name of each class, by label. */
  classNames: readonly string[];
  /** Images are `imageSize` × `imageSize`. */
  imageSize: number;
  model: ResolvedRetinaNetConfig;
  anchors: AnchorConfig;
  postprocess: PostprocessOptions;
}

/** Images per forward pass when detecting: bounds the memory of a large call. */
const DETECT_CHUNK = 50;

/**
 * RetinaNet with what turns its outputs into boxes: the anchors of its image size (keras-retinanet's
 * layout), keras-retinanet's corner box coder, and the post-processing.
 *
 * @example
 * const detector = new Detector(model, config);
 * const [first] = detector.detect(images); // { boxes [D, 4], scores [D], labels [D] }
 */
export class Detector {
  readonly anchorSet: AnchorSet;
  readonly coder = cornerBoxCoder();

  constructor(
    readonly model: RetinaNet,
    readonly config: DetectorConfig,
  ) {
    const imageShape = [config.imageSize, config.imageSize] as const;
    this.anchorSet = {
      anchors: anchorsFor(imageShape, config.anchors),
      levels: anchorLevels(imageShape, config.anchors).map(({ offset, count }) => ({
        offset,
        count,
      })),
    };
  }

  /** Detections for each image of `images` `[B, 3, imageSize, imageSize]`, in evaluation mode. */
  detect(images: Tensor): Detections[] {
    const size = this.config.imageSize;
    if (
      images.rank !== 4 ||
      images.shape[1] !== 3 ||
      images.shape[2] !== size ||
      images.shape[3] !== size
    ) {
      throw new Error(
        `detect: images must be [B, 3, ${size}, ${size}] (the size the detector was trained at), got [${images.shape.join(", ")}]`,
      );
    }
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      return noGrad(() => {
        const out: Detections[] = [];
        for (let start = 0; start < images.shape[0]; start += DETECT_CHUNK) {
          const n = Math.min(DETECT_CHUNK, images.shape[0] - start);
          const chunk = slice(images, [start, 0, 0, 0], [n, 3, size, size]);
          const { classification, regression } = this.model.forward(chunk);
          out.push(
            ...postprocess(
              classification,
              regression,
              this.anchorSet,
              this.coder,
              [size, size],
              this.config.postprocess,
            ),
          );
        }
        return out;
      });
    } finally {
      this.model.train(wasTraining);
    }
  }
}

/**
 * The detector saved in a run directory (its config.json and model.safetensors), ready to detect.
 *
 * @example
 * const detector = await loadDetector("runs/shapes");
 * const detections = detector.detect(shapesDataset({ split: "test", count: 4 }).images);
 */
export async function loadDetector(runDir: string): Promise<Detector> {
  const configPath = join(runDir, "config.json");
  let parsed: { detector?: DetectorConfig };
  try {
    parsed = JSON.parse(await readFile(configPath, "utf8"));
  } catch (e) {
    throw new Error(
      `loadDetector: cannot read ${JSON.stringify(configPath)}: ${(e as Error).message}`,
    );
  }
  const config = parsed.detector;
  if (config === undefined || typeof config !== "object" || config.model === undefined) {
    throw new Error(`loadDetector: ${JSON.stringify(configPath)} has no "detector" section`);
  }
  const model = new RetinaNet(config.model);
  await load(model, join(runDir, "model.safetensors"));
  return new Detector(model, config);
}
