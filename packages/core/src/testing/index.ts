/**
 * `@focalgrad/core/testing`: gradient checking against finite differences, fast-check arbitraries
 * for property tests of ops and losses, and `withFusion` to run code fused or op by op. The
 * gradient checks need nothing else; the arbitraries need `fast-check` installed (an optional
 * peer dependency).
 *
 * @packageDocumentation
 */

export {
  broadcastPair,
  floatTensor,
  indexTensor,
  type ShapeConstraints,
  shape,
  type TensorConstraints,
} from "./arbitraries.js";
export { type WithFusionOptions, withFusion } from "./fusion.js";
export {
  assertGradcheck,
  assertGradgradcheck,
  type GradcheckElement,
  type GradcheckOptions,
  type GradcheckReport,
  gradcheck,
  gradgradcheck,
} from "./gradcheck.js";
