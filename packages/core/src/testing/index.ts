/**
 * @focalgrad/core/testing: gradient checking against finite differences, and fast-check
 * arbitraries for property tests of ops and losses. Needs `fast-check` installed.
 */

export {
  broadcastPair,
  floatTensor,
  indexTensor,
  type ShapeConstraints,
  shape,
  type TensorConstraints,
} from "./arbitraries.js";
export {
  assertGradcheck,
  assertGradgradcheck,
  type GradcheckElement,
  type GradcheckOptions,
  type GradcheckReport,
  gradcheck,
  gradgradcheck,
} from "./gradcheck.js";
