/** `@focalgrad/examples/detection`: the toy detector — datasets, loader, RetinaNet, training, post-processing, evaluation and the trained detector. */

export { Canvas, type Colour } from "./canvas.js";
export {
  type Annotation,
  type DatasetOptions,
  type DetectionDataset,
  DIGIT_CLASSES,
  type DigitSample,
  type DigitsDataset,
  digitSamples,
  digitsDataset,
  SHAPE_CLASSES,
  type Split,
  shapesDataset,
} from "./datasets.js";
export { Detector, type DetectorConfig, loadDetector } from "./detector.js";
export {
  type Detections,
  type MapOptions,
  type MapResult,
  meanAveragePrecision,
} from "./evaluate.js";
export { type Batch, BatchLoader, flipBoxes, type LoaderOptions } from "./loader.js";
export {
  type ResolvedRetinaNetConfig,
  RetinaNet,
  type RetinaNetConfig,
  type RetinaNetOutput,
  resolveRetinaNetConfig,
} from "./model.js";
export { type AnchorSet, type PostprocessOptions, postprocess } from "./postprocess.js";
export {
  type Evaluation,
  type ResolvedTrainConfig,
  resolveTrainConfig,
  type TrainConfig,
  type TrainResult,
  train,
} from "./train.js";
