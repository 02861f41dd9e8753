/** The Random port on the board's secure source (modules/entropy: esp_fill_random, getrandom). */
import { fill } from "portcullis/entropy";
import type { Random } from "../../src/ports.js";

export class EntropyRandom implements Random {
  /** @throws Error when the platform has no secure source (the native module throws; never a weak fallback). */
  fill(bytes: Uint8Array): void {
    fill(bytes);
  }
}
