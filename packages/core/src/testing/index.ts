/**
 * @focalgrad/core/testing: gradient checking against finite differences, fast-check arbitraries
 * for property tests of ops and losses (they need `fast-check` installed), and `withFusion` to run
 * code fused or op by op.
 */

export {
  broadcastPair,
  floatTensor,
  indexTensor,
  type ShapeConstraints,
  shape,
  type TensorConstraints,
} from "./arbitraries.js";
export { withFusion } from "./fusion.js";
export {
  assertGradcheck,
  assertGradgradcheck,
  type GradcheckElement,
  type GradcheckOptions,
  type GradcheckReport,
  gradcheck,
  gradgradcheck,
} from "./gradcheck.js";
