/** The reductions and gathers every built-in backend runs: the JavaScript loops of reduce.ts and gather.ts, as one piece of the backend interface. */

import {
  gatherAlong,
  gatherAxis,
  gatherRows,
  scatterAddAlong,
  scatterAddAxis,
  scatterAddRows,
} from "./gather.js";
import { nonzeroPositions } from "./positions.js";
import { argReduce, cumulativeSum, reduce } from "./reduce.js";

/**
 * The reductions and gathers in plain JavaScript. They are memory-bound loops with at most one
 * operation per element, so the wasm backend runs them as they are too: copying the operands
 * into wasm memory and back would cost more than the loop.
 *
 * @example
 * const backend: DenseBackend = { ...createWasmBackend(), ...javascriptReductions };
 */
export const javascriptReductions = {
  reduce,
  argReduce,
  cumulativeSum,
  gatherAxis,
  scatterAddAxis,
  gatherRows,
  scatterAddRows,
  gatherAlong,
  scatterAddAlong,
  nonzeroPositions,
};
