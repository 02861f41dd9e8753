/** A per-device token bucket for device → gateway PUBLISHes (rate + burst), counting the excess per window. */

/** Sustained PUBLISHes per second a device may send. */
export const PUBLISH_RATE_PER_SEC = 10;
/** PUBLISHes a device may send at once after being quiet (the bucket's size). */
export const PUBLISH_BURST = 20;
/** A device whose refused PUBLISHes within one window exceed this many times its burst is disconnected. */
export const RATE_EXCESS_FACTOR = 3;

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #windowMs: number;
  #tokens: number;
  #at: number;
  #windowStart: number;
  #excess = 0;

  /** `now` is monotonic ms; the bucket starts full. */
  constructor(ratePerSec: number, burst: number, windowMs: number, now: number) {
    this.#ratePerMs = ratePerSec / 1000;
    this.#burst = burst;
    this.#windowMs = windowMs;
    this.#tokens = burst;
    this.#at = now;
    this.#windowStart = now;
  }

  /** Takes one token: true when the PUBLISH is within the rate; false counts it as excess. */
  take(now: number): boolean {
    const t = this.#tokens + (now - this.#at) * this.#ratePerMs;
    this.#tokens = t > this.#burst ? this.#burst : t;
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#excess = 0;
    }
    this.#excess++;
    return false;
  }

  /** Refused PUBLISHes in the current window. */
  get excess(): number {
    return this.#excess;
  }
}
