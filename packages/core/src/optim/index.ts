/** `optim`: optimisers, learning-rate schedules and gradient clipping. */

export { clipGradNorm, clipGradValue } from "./clip.js";
export {
  Adam,
  type AdamOptions,
  AdamW,
  Optimizer,
  SGD,
  type SGDOptions,
} from "./optimizer.js";
export {
  cosineDecay,
  LearningRateScheduler,
  linearWarmup,
  type Schedule,
  stepDecay,
} from "./schedule.js";
