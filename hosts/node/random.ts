/** The Random port on node:crypto's CSPRNG (the OS source); it throws rather than fall back to a weak one. */
import { randomFillSync } from "node:crypto";
import type { Random } from "../../src/ports.js";

/** The Node board's secure random source. */
export function nodeRandom(): Random {
  return {
    fill(bytes: Uint8Array): void {
      randomFillSync(bytes);
    },
  };
}
