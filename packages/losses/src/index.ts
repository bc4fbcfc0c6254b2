/**
 * `@focalgrad/losses`: the seed's focal loss and its family, each a composition of public
 * `@focalgrad/core` ops whose gradients come from the autodiff engine, and the anchors, targets
 * and box coders that produce the layout they consume.
 *
 * @packageDocumentation
 */

export {
  type AnchorConfig,
  type AnchorConvention,
  type AnchorLevel,
  anchorLevels,
  anchorsFor,
  anchorsPerLocation,
} from "./anchorGenerator.js";
export {
  type AnchorTargetOptions,
  type AnchorTargets,
  type Annotation,
  anchorTargets,
  type ImageShape,
} from "./anchorTargets.js";
export {
  type BoxCoder,
  type CenterBoxCoderOptions,
  type CornerBoxCoderOptions,
  centerBoxCoder,
  cornerBoxCoder,
} from "./boxCoder.js";
export type { Reduction } from "./common.js";
export { type FocalOptions, focal } from "./focal.js";
export { focalFromLogits } from "./focalFromLogits.js";
export { type FocalStarOptions, focalStar } from "./focalStar.js";
export {
  type DistributionFocalOptions,
  distributionFocalLoss,
  type QualityFocalOptions,
  qualityFocalLoss,
} from "./generalizedFocal.js";
export { type OhemOptions, ohem } from "./ohem.js";
export { type Poly1FocalOptions, poly1FocalLoss } from "./poly1FocalLoss.js";
export { type RetinanetFocalOptions, retinanetFocal } from "./retinanetFocal.js";
export { type SigmoidFocalOptions, sigmoidFocalLoss } from "./sigmoidFocalLoss.js";
export { type SmoothL1Options, smoothL1 } from "./smoothL1.js";
export { type SoftmaxFocalOptions, softmaxFocalLoss } from "./softmaxFocalLoss.js";
export { anchorStateOf, batchNormalizer, imageNormalizer } from "./targetLayout.js";
export { type VarifocalOptions, varifocalLoss } from "./varifocalLoss.js";
