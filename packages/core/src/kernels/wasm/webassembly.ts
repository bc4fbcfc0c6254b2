/** The part of the WebAssembly JavaScript API the kernels use, typed here because the project's TypeScript libraries (ES2022, Node) do not declare it. */

/** A compiled module: cloneable to worker threads. */
export interface WasmModule {
  readonly __brand: "WebAssembly.Module";
}

/** A linear memory; `buffer` is a SharedArrayBuffer for a shared one and is replaced on growth. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => WasmInstance;
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}

/** The runtime's `WebAssembly` object, or undefined where there is none. */
export const webAssembly = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
