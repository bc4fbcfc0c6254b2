/** `optim`: optimisers (with saveable state), learning-rate schedules and schedulers, gradient clipping. */

export { clipGradNorm, clipGradValue } from "./clip.js";
export {
  Adam,
  type AdamOptions,
  AdamW,
  type GroupParams,
  type LearningRate,
  Optimizer,
  type OptimizerState,
  type ParamGroup,
  type ParamGroupState,
  RMSprop,
  type RMSpropOptions,
  SGD,
  type SGDOptions,
} from "./optimizer.js";
export {
  cosineDecay,
  LearningRateScheduler,
  linearWarmup,
  oneCycle,
  type PlateauOptions,
  type PlateauState,
  ReduceLROnPlateau,
  type Schedule,
  type SchedulerState,
  stepDecay,
} from "./schedule.js";
