/** The RetinaNet of the toy detector: a small conv backbone of stride-2 stages, an FPN over pyramid levels P2–P7, and the shared classification and box subnets, made of core `nn`. */

import {
  add,
  concat,
  Generator,
  nn,
  permute,
  relu,
  reshape,
  sigmoid,
  type Tensor,
  upsampleNearest2d,
} from "@focalgrad/core";
import { integerAtLeast } from "./checks.js";

export interface RetinaNetConfig {
  /** Number of object classes C (no background column), >= 1. */
  numClasses: number;
  /** Anchors per feature position A (ratios × scales). Default 9. */
  numAnchors?: number;
  /**
   * Output channels of the backbone's stride-2 stages, 2 to 5 of them (strides 2, 4, … 2^S): stage
   * l gives C_l, the input of pyramid level l. Default [16, 24, 32, 48, 64] (C1 … C5).
   */
  backboneChannels?: readonly number[];
  /**
   * Extra stride-1 conv, norm, ReLU blocks in each stage after the stem (strides 4 to 32). Default 1.
   */
  stageDepth?: number;
  /** Normalisation after each backbone conv. Default "group" (GroupNorm, independent of the batch). */
  norm?: "group" | "batch";
  /**
   * Pyramid levels, consecutive, from 2 up to at most 7. Levels up to the backbone's last stage take
   * its C_l through the FPN; the ones above are stride-2 convs, the first on the last C and the next
   * on ReLU of the previous (keras-retinanet's P6 and P7). P2 (stride 4) suits objects of 8–32 px,
   * which a stride-8 grid places too coarsely for IoU ≥ 0.5 matches. Default [3, 4, 5].
   */
  levels?: readonly number[];
  /** Channels of every pyramid level. Default 32. */
  fpnChannels?: number;
  /** Number of 3 × 3 conv + ReLU layers before each subnet's output conv. Default 2. */
  headDepth?: number;
  /** Channels of those layers. Default 32. */
  headWidth?: number;
  /** GroupNorm after each of those layers ("group", as torchvision's RetinaNet v2) or none (the paper's). Default "group". */
  headNorm?: "group" | "none";
  /** π of the prior-probability bias of the classification output. Default 0.01. */
  priorProbability?: number;
  /** Seed of the initial weights. Default 0. */
  seed?: number;
}

/** Every field of a `RetinaNetConfig`, with the defaults filled in. */
export type ResolvedRetinaNetConfig = Required<RetinaNetConfig>;

/**
 * The config with its defaults, checked: what `RetinaNet` builds and what a run directory's
 * config.json records.
 *
 * @example
 * resolveRetinaNetConfig({ numClasses: 3 }).levels; // [3, 4, 5]
 */
export function resolveRetinaNetConfig(config: RetinaNetConfig): ResolvedRetinaNetConfig {
  if (config === null || typeof config !== "object") {
    throw new Error("RetinaNet: expected a config object { numClasses, … }");
  }
  const resolved: ResolvedRetinaNetConfig = {
    numClasses: integerAtLeast("RetinaNet", "numClasses", config.numClasses, 1),
    numAnchors: integerAtLeast("RetinaNet", "numAnchors", config.numAnchors ?? 9, 1),
    backboneChannels: [...(config.backboneChannels ?? defaultBackbone(config.levels))],
    stageDepth: integerAtLeast("RetinaNet", "stageDepth", config.stageDepth ?? 1, 0),
    norm: config.norm ?? "group",
    levels: [...(config.levels ?? [3, 4, 5])],
    fpnChannels: integerAtLeast("RetinaNet", "fpnChannels", config.fpnChannels ?? 32, 1),
    headDepth: integerAtLeast("RetinaNet", "headDepth", config.headDepth ?? 2, 0),
    headWidth: integerAtLeast("RetinaNet", "headWidth", config.headWidth ?? 32, 1),
    headNorm: config.headNorm ?? "group",
    priorProbability: config.priorProbability ?? 0.01,
    seed: config.seed ?? 0,
  };
  const { backboneChannels, levels, norm, priorProbability } = resolved;
  if (backboneChannels.length < 2 || backboneChannels.length > 5) {
    throw new Error(
      `RetinaNet: backboneChannels must list 2 to 5 stages (strides 2, 4, … 32), got ${backboneChannels.length}`,
    );
  }
  for (const [i, c] of backboneChannels.entries())
    integerAtLeast("RetinaNet", `backboneChannels[${i}]`, c, 1);
  if (resolved.headNorm !== "group" && resolved.headNorm !== "none") {
    throw new Error(
      `RetinaNet: headNorm must be "group" or "none", got ${JSON.stringify(resolved.headNorm)}`,
    );
  }
  if (norm !== "group" && norm !== "batch") {
    throw new Error(`RetinaNet: norm must be "group" or "batch", got ${JSON.stringify(norm)}`);
  }
  const consecutive = levels.every((l, i) => Number.isInteger(l) && l === levels[0] + i);
  if (levels.length < 1 || !consecutive || levels[0] < 2 || levels[levels.length - 1] > 7) {
    throw new Error(
      `RetinaNet: levels must be consecutive integers from 2 up to at most 7, e.g. [3, 4, 5], got [${levels.join(", ")}]`,
    );
  }
  const fed = Math.max(levels[0], Math.min(5, levels[levels.length - 1]));
  if (backboneChannels.length > fed) {
    throw new Error(
      `RetinaNet: backboneChannels lists ${backboneChannels.length} stages, but levels [${levels.join(", ")}] use only the first ${fed} (C${fed}); drop the others`,
    );
  }
  if (levels[0] > backboneChannels.length) {
    throw new Error(
      `RetinaNet: the lowest level (${levels[0]}) needs backbone stage C${levels[0]}, but backboneChannels lists ${backboneChannels.length} stages`,
    );
  }
  if (!(priorProbability > 0 && priorProbability < 1)) {
    throw new Error(`RetinaNet: priorProbability must be in (0, 1), got ${priorProbability}`);
  }
  if (!Number.isFinite(resolved.seed)) {
    throw new Error(`RetinaNet: seed must be a finite number, got ${resolved.seed}`);
  }
  return resolved;
}

/** Channels of the default backbone: its first stages, up to the highest level it feeds (at most C5). */
function defaultBackbone(levels: readonly number[] | undefined): number[] {
  const highest = levels?.[levels.length - 1] ?? 5;
  const lowest = levels?.[0] ?? 3;
  const stages = Number.isInteger(highest) ? Math.max(2, lowest, Math.min(5, highest)) : 5;
  return [16, 24, 32, 48, 64].slice(0, stages);
}

/** The largest group count <= 8 that divides `channels` (GroupNorm needs whole groups). */
function groupsFor(channels: number): number {
  for (let g = Math.min(8, channels); g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

/** conv 3 × 3 (no bias: the norm's shift replaces it), norm, ReLU. */
function convBlock(
  inChannels: number,
  outChannels: number,
  stride: number,
  norm: "group" | "batch",
  generator: Generator,
): nn.Sequential {
  const conv = new nn.Conv2d(inChannels, outChannels, 3, {
    stride,
    padding: "same",
    bias: false,
    generator,
  });
  nn.init.kaimingNormal(conv.weight, { mode: "fanOut", generator });
  const normLayer =
    norm === "group"
      ? new nn.GroupNorm(groupsFor(outChannels), outChannels)
      : new nn.BatchNorm2d(outChannels);
  return new nn.Sequential(conv, normLayer, new nn.ReLU());
}

/** The backbone: stride-2 stages (conv, norm, ReLU blocks); returns C1 … C_S, one per stage. */
class Backbone extends nn.Module<[Tensor], Tensor[]> {
  readonly stages: nn.ModuleList<nn.Sequential>;

  constructor(config: ResolvedRetinaNetConfig, generator: Generator) {
    super();
    const stages: nn.Sequential[] = [];
    let inChannels = 3;
    config.backboneChannels.forEach((channels, i) => {
      const blocks = [convBlock(inChannels, channels, 2, config.norm, generator)];
      // Every stage but the stem gets the extra depth (the stem at half resolution is the costliest).
      if (i >= 1) {
        for (let d = 0; d < config.stageDepth; d++) {
          blocks.push(convBlock(channels, channels, 1, config.norm, generator));
        }
      }
      stages.push(new nn.Sequential(...blocks));
      inChannels = channels;
    });
    this.stages = this.addModule("stages", new nn.ModuleList(stages));
  }

  forward(x: Tensor): Tensor[] {
    const out: Tensor[] = [];
    let y = x;
    for (const stage of this.stages) {
      y = stage.forward(y);
      out.push(y);
    }
    return out;
  }
}

function headConv(
  inChannels: number,
  outChannels: number,
  generator: Generator,
  options: { stride?: number; kernel?: number } = {},
): nn.Conv2d {
  const kernel = options.kernel ?? 3;
  return new nn.Conv2d(inChannels, outChannels, kernel, {
    stride: options.stride ?? 1,
    padding: "same",
    generator,
  });
}

/**
 * keras-retinanet's FPN: lateral 1 × 1 convs on the backbone's C_l of every level it has, a
 * top-down path of nearest upsampling and sums, a 3 × 3 conv on each sum; each level above the
 * backbone a stride-2 3 × 3 conv, on the last C for the first (P6 on C5) and on ReLU of the
 * previous level after that (P7).
 */
class FeaturePyramid extends nn.Module<Tensor[], Tensor[]> {
  readonly lateral: nn.ModuleList<nn.Conv2d>;
  readonly output: nn.ModuleList<nn.Conv2d>;
  readonly extra: nn.ModuleList<nn.Conv2d>;
  /** Index (0-based stage) of the backbone output of the lowest level. */
  private readonly first: number;

  constructor(config: ResolvedRetinaNetConfig, generator: Generator) {
    super();
    const width = config.fpnChannels;
    const stages = config.backboneChannels.length;
    const lowest = config.levels[0];
    const highest = config.levels[config.levels.length - 1];
    this.first = lowest - 1;
    const inputs = config.backboneChannels.slice(lowest - 1, Math.min(highest, stages));
    const lateral = inputs.map((c) => headConv(c, width, generator, { kernel: 1 }));
    const output = lateral.map(() => headConv(width, width, generator));
    const extra: nn.Conv2d[] = [];
    for (let level = stages + 1; level <= highest; level++) {
      const from = level === stages + 1 ? config.backboneChannels[stages - 1] : width;
      extra.push(headConv(from, width, generator, { stride: 2 }));
    }
    this.lateral = this.addModule("lateral", new nn.ModuleList(lateral));
    this.output = this.addModule("output", new nn.ModuleList(output));
    this.extra = this.addModule("extra", new nn.ModuleList(extra));
  }

  /** The pyramid from the backbone's outputs C1 … C_S. */
  forward(...backbone: Tensor[]): Tensor[] {
    const features = backbone.slice(this.first, this.first + this.lateral.length);
    const merged: Tensor[] = new Array(features.length);
    for (let i = features.length - 1; i >= 0; i--) {
      const lateral = this.lateral.at(i).forward(features[i]);
      merged[i] =
        i === features.length - 1
          ? lateral
          : add(lateral, upsampleNearest2d(merged[i + 1], { scaleFactor: 2 }));
    }
    const pyramid = merged.map((m, i) => this.output.at(i).forward(m));
    let previous = backbone[backbone.length - 1];
    for (const [i, conv] of [...this.extra].entries()) {
      const p = conv.forward(i === 0 ? previous : relu(previous));
      pyramid.push(p);
      previous = p;
    }
    return pyramid;
  }
}

/** A subnet shared across levels: `depth` conv (+ GroupNorm) + ReLU layers, then a conv to `outputs` channels per anchor. */
class Subnet extends nn.Module<[Tensor], Tensor> {
  readonly layers: nn.Sequential;

  constructor(
    inChannels: number,
    width: number,
    depth: number,
    readonly outputs: number,
    numAnchors: number,
    generator: Generator,
    outputBias: number,
    norm: "group" | "none",
  ) {
    super();
    const layers: nn.Layer[] = [];
    let channels = inChannels;
    for (let d = 0; d < depth; d++) {
      layers.push(headConv(channels, width, generator));
      if (norm === "group") layers.push(new nn.GroupNorm(groupsFor(width), width));
      layers.push(new nn.ReLU());
      channels = width;
    }
    const out = headConv(channels, outputs * numAnchors, generator);
    layers.push(out);
    // The paper's initialisation: N(0, 0.01) weights, zero biases, the prior bias on the class output.
    for (const layer of layers) {
      if (!(layer instanceof nn.Conv2d)) continue;
      nn.init.normal(layer.weight, { std: 0.01, generator });
      if (layer.bias !== null) nn.init.constant(layer.bias, layer === out ? outputBias : 0);
    }
    this.layers = this.addModule("layers", new nn.Sequential(...layers));
  }

  /** [B, A · K, H, W] → [B, H · W · A, K]: positions row-major, anchors innermost (keras-retinanet's order). */
  forward(feature: Tensor): Tensor {
    const y = this.layers.forward(feature);
    return reshape(permute(y, [0, 2, 3, 1]), [y.shape[0], -1, this.outputs]);
  }
}

/** What RetinaNet computes for a batch, all in the seed's layout with N anchors over every level. */
export interface RetinaNetOutput {
  /** [B, N, C]: the classification logits. */
  logits: Tensor;
  /** [B, N, C]: sigmoid(logits), the probabilities the seed's `focal` takes. */
  classification: Tensor;
  /** [B, N, 4]: the box regression, in the box coder's units. */
  regression: Tensor;
}

/**
 * RetinaNet (Lin et al., 2017) sized for toy images: a conv/norm/ReLU backbone of stride-2 stages,
 * an FPN over `levels` (P3–P5 by default, strides 8/16/32), and classification and box subnets shared by every level. Outputs follow
 * keras-retinanet: anchors ordered by level, then position (row-major), then anchor.
 *
 * @example
 * const model = new RetinaNet({ numClasses: 3 });
 * const { classification, regression } = model.forward(zeros([2, 3, 64, 64]));
 * classification.shape; // [2, 756, 3]: (8² + 4² + 2²) positions × 9 anchors
 * regression.shape;     // [2, 756, 4]
 */
export class RetinaNet extends nn.Module<[Tensor], RetinaNetOutput> {
  readonly config: ResolvedRetinaNetConfig;
  readonly backbone: Backbone;
  readonly fpn: FeaturePyramid;
  readonly classificationHead: Subnet;
  readonly regressionHead: Subnet;

  constructor(config: RetinaNetConfig) {
    super();
    this.config = resolveRetinaNetConfig(config);
    const c = this.config;
    const generator = new Generator(c.seed);
    this.backbone = this.addModule("backbone", new Backbone(c, generator));
    this.fpn = this.addModule("fpn", new FeaturePyramid(c, generator));
    const prior = nn.init.priorProbabilityBias(c.priorProbability);
    this.classificationHead = this.addModule(
      "classification",
      new Subnet(
        c.fpnChannels,
        c.headWidth,
        c.headDepth,
        c.numClasses,
        c.numAnchors,
        generator,
        prior,
        c.headNorm,
      ),
    );
    this.regressionHead = this.addModule(
      "regression",
      new Subnet(
        c.fpnChannels,
        c.headWidth,
        c.headDepth,
        4,
        c.numAnchors,
        generator,
        0,
        c.headNorm,
      ),
    );
  }

  /** The pyramid levels' feature maps for a batch `[B, 3, H, W]`. */
  features(images: Tensor): Tensor[] {
    if (images.rank !== 4 || images.shape[1] !== 3) {
      throw new Error(
        `RetinaNet: images must be [batch, 3, height, width], got [${images.shape.join(", ")}]`,
      );
    }
    return this.fpn.forward(...this.backbone.forward(images));
  }

  forward(images: Tensor): RetinaNetOutput {
    const pyramid = this.features(images);
    const logits = concat(
      pyramid.map((p) => this.classificationHead.forward(p)),
      1,
    );
    const regression = concat(
      pyramid.map((p) => this.regressionHead.forward(p)),
      1,
    );
    return { logits, classification: sigmoid(logits), regression };
  }
}
