/** The numbers of Lin et al. 2017, Table 1, that `pnpm table1` sets its own beside: COCO AP and AP50 in per cent. */

/**
 * Where every number of this file comes from: T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollár,
 * "Focal Loss for Dense Object Detection", ICCV 2017, Table 1 (ablations on COCO minival; RetinaNet
 * with ResNet-50-FPN at 600 px for 1a and 1b, ResNet-101-FPN for 1d) and §5.1.
 */
export const PAPER_SOURCE =
  "Lin et al., Focal Loss for Dense Object Detection, ICCV 2017, Table 1 and §5.1 (COCO minival)";

/** One result of the paper: COCO AP@[.5:.95] and AP@0.5, in per cent. */
export interface PaperResult {
  ap: number;
  ap50: number;
}

/** Table 1a: α-balanced cross-entropy (γ = 0), by α (ResNet-50, 600 px). */
export const PAPER_CE: ReadonlyMap<number, PaperResult> = new Map([
  [0.1, { ap: 0.0, ap50: 0.0 }],
  [0.25, { ap: 10.8, ap50: 16.0 }],
  [0.5, { ap: 30.2, ap50: 46.7 }],
  [0.75, { ap: 31.1, ap50: 49.4 }],
  [0.9, { ap: 30.8, ap50: 49.7 }],
  [0.99, { ap: 28.7, ap50: 47.4 }],
  [0.999, { ap: 25.1, ap50: 41.7 }],
]);

/** Table 1b: the focal loss, for each γ the best α and its result (ResNet-50, 600 px). */
export const PAPER_FL_BEST_ALPHA: ReadonlyMap<number, PaperResult & { alpha: number }> = new Map([
  [0, { alpha: 0.75, ap: 31.1, ap50: 49.4 }],
  [0.1, { alpha: 0.75, ap: 31.4, ap50: 49.9 }],
  [0.2, { alpha: 0.75, ap: 31.9, ap50: 50.7 }],
  [0.5, { alpha: 0.5, ap: 32.9, ap50: 51.7 }],
  [1, { alpha: 0.25, ap: 33.7, ap50: 52.0 }],
  [2, { alpha: 0.25, ap: 34.0, ap50: 52.5 }],
  [5, { alpha: 0.25, ap: 32.2, ap50: 49.6 }],
]);

/** Table 1d (ResNet-101): the best OHEM (batch 128, NMS 0.5), OHEM 1:3 (128, 0.5) and FL. */
export const PAPER_OHEM: PaperResult = { ap: 32.8, ap50: 50.3 };
export const PAPER_OHEM_1_3: PaperResult = { ap: 31.1, ap50: 47.2 };
export const PAPER_FL_RESNET101: PaperResult = { ap: 36.0, ap50: 54.9 };

/** §5.1, network initialisation: what the paper reports for training without and with the prior. */
export const PAPER_PRIOR = {
  ceWithoutPrior: "diverges",
  ceWithPrior: "trains (30.2 AP)",
} as const;
