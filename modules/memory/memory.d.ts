/** portcullis/memory: the XS machine's heap figures in bytes (modules/memory/xs_memory.c). */
declare module "portcullis/memory" {
  export interface MemoryFigures {
    readonly chunkUsed: number;
    readonly chunkPeak: number;
    readonly chunkMaximum: number;
    readonly slotUsed: number;
    readonly slotPeak: number;
    readonly slotMaximum: number;
    /** Bytes per slot: 16 on the ESP32, 32 on a 64-bit host. */
    readonly slotSize: number;
    /** The stack's size in slots (the manifest's creation.stack). */
    readonly stackSlots: number;
    /** Deepest stack use in slots; measured only in instrumented builds (`mcconfig -i`), else 0. */
    readonly stackPeakSlots: number;
  }
  export function memory(): MemoryFigures;
  /** After Debug.gc(): the live slots grouped by constructor or function, largest first (`top` lines). */
  export function census(top: number): string;
  /** CPU microseconds: this thread's CPU time on lin (CLOCK_THREAD_CPUTIME_ID), time since boot on the ESP32. */
  export function cpuMicros(): number;
}
