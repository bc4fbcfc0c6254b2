/** TensorFlow.js as a peer: loading it with its cpu and wasm backends from disk, and the seed's loss in tfjs ops. */

import { createRequire } from "node:module";
import * as path from "node:path";
import type * as tfTypes from "@tensorflow/tfjs";

export type Tf = typeof tfTypes;
export type TfBackend = "cpu" | "wasm";

let loaded: Promise<Tf> | null = null;

/**
 * `@tensorflow/tfjs` with `@tensorflow/tfjs-backend-wasm` registered, its `.wasm` binaries read
 * from the package's own `dist/` directory (they ship in the npm package: no network).
 *
 * @example
 * const tf = await loadTfjs();
 * await useBackend(tf, "wasm");
 */
export function loadTfjs(): Promise<Tf> {
  loaded ??= (async () => {
    const tf = await import("@tensorflow/tfjs");
    // Production mode only silences tfjs's log and warn lines (in tfjs-core 4.22 and its cpu and
    // wasm backends the flag gates nothing else), among them the banner urging tfjs-node on the
    // first cpu tensor: the benchmark runs the cpu and wasm backends on purpose.
    tf.enableProdMode();
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const require = createRequire(import.meta.url);
    const dist = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
    wasm.setWasmPaths(`${dist}${path.sep}`);
    return tf as Tf;
  })();
  return loaded;
}

/** Makes `backend` the active tfjs backend, failing loudly if tfjs falls back to another one. */
export async function useBackend(tf: Tf, backend: TfBackend): Promise<void> {
  if (tf.getBackend() === backend) return;
  const ok = await tf.setBackend(backend);
  await tf.ready();
  if (!ok || tf.getBackend() !== backend) {
    throw new Error(
      `tfjs: could not switch to the ${backend} backend (active: ${tf.getBackend()})`,
    );
  }
}

/** How the wasm backend runs here: SIMD and threads, as tfjs detected them. */
export function wasmFeatures(tf: Tf): string {
  const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  const threads = tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT");
  return `SIMD ${simd ? "on" : "off"}, threads ${threads ? "on" : "off"}`;
}

const block = 1024;

/**
 * The sum of a `[B, N, C]` tensor in stages: over the classes, then over blocks of 1024 anchors,
 * then over the blocks. The wasm backend's `sum` adds in float32 in one sequential pass, which
 * over the 7.9 million terms of voc512 drifts by 0.7 %; in stages it stays within 1e-6 and
 * costs a few more small kernels.
 */
function stagedSum(tf: Tf, x: tfTypes.Tensor): tfTypes.Tensor {
  const perAnchor = tf.reshape(tf.sum(x, 2), [-1]);
  const n = perAnchor.shape[0];
  const whole = Math.floor(n / block) * block;
  const blocks = tf.sum(tf.reshape(tf.slice(perAnchor, 0, whole), [whole / block, block]), 1);
  const total = tf.sum(blocks);
  return whole === n ? total : tf.add(total, tf.sum(tf.slice(perAnchor, whole)));
}

/**
 * The seed's focal loss in tfjs ops. tfjs has no gradient for `gatherND` (and its cond-only
 * `where` is the asynchronous `whereAsync`), so the object and background terms are selected by
 * 0/1 masks of the anchor state instead of being gathered; the sums are the same, and the masks
 * give ignored anchors an exact zero gradient. The two sums are taken in stages (`stagedSum`) for
 * the accuracy of the float32 wasm backend.
 *
 * @example
 * const loss = tfjsFocal(tf, { alpha: 0.25, gamma: 2 });
 * const { value, grad } = tf.valueAndGrad((p) => loss(yTrue, p))(yPred);
 */
export function tfjsFocal(
  tf: Tf,
  options: { alpha: number; gamma: number; epsilon?: number },
): (yTrue: tfTypes.Tensor, yPred: tfTypes.Tensor) => tfTypes.Scalar {
  const { alpha, gamma } = options;
  const epsilon = options.epsilon ?? 1e-7;
  return (yTrue, yPred) => {
    const [batch, anchors, classes] = yPred.shape;
    const labels = tf.slice(yTrue, [0, 0, 0], [batch, anchors, classes]);
    const anchorState = tf.slice(yTrue, [0, 0, classes], [batch, anchors, 1]);
    const objectMask = tf.cast(tf.equal(anchorState, 1), "float32");
    const backgroundMask = tf.cast(tf.equal(anchorState, 0), "float32");

    const pc = tf.clipByValue(yPred, epsilon, 1 - epsilon);
    const bce = tf.neg(
      tf.add(tf.mul(labels, tf.log(pc)), tf.mul(tf.sub(1, labels), tf.log(tf.sub(1, pc)))),
    );

    const isPositive = tf.equal(labels, 1);
    const alphaFactor = tf.mul(tf.onesLike(labels), alpha);
    const objectAlpha = tf.where(isPositive, alphaFactor, tf.sub(1, alphaFactor));
    const objectBase = tf.where(isPositive, tf.sub(1, yPred), yPred);
    const objectWeight = tf.mul(objectAlpha, tf.pow(objectBase, gamma));
    const lossObject = stagedSum(tf, tf.mul(objectMask, tf.mul(objectWeight, bce)));

    const backgroundWeight = tf.mul(1 - alpha, tf.pow(yPred, gamma));
    const lossBackground = stagedSum(tf, tf.mul(backgroundMask, tf.mul(backgroundWeight, bce)));

    const normalizer = tf.maximum(1, tf.sum(objectMask));
    return tf.div(tf.add(lossObject, lossBackground), normalizer) as tfTypes.Scalar;
  };
}
