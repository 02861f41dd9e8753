/** Per-flow, per-device rate limits: a token bucket (messages per minute) plus a minimum interval. */

interface Bucket {
  tokens: number;
  last: number;
  lastSent: number;
}

/** Rate state keyed by integration/flow/device. Time is the Clock's monotonic milliseconds. */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  /**
   * Takes one token when the message may pass; returns false (and takes nothing) when the bucket is
   * empty or less than `minIntervalMs` passed since the last message that passed.
   */
  take(key: string, perMinute: number, minIntervalMs: number, now: number): boolean {
    let b = this.#buckets.get(key);
    if (!b) {
      b = { tokens: perMinute, last: now, lastSent: -Infinity };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(perMinute, b.tokens + ((now - b.last) * perMinute) / 60000);
    b.last = now;
    if (b.tokens < 1 || now - b.lastSent < minIntervalMs) return false;
    b.tokens -= 1;
    b.lastSent = now;
    return true;
  }

  /** Drops the state of one integration (its keys start with `prefix`). */
  forget(prefix: string): void {
    for (const k of Array.from(this.#buckets.keys())) if (k.startsWith(prefix)) this.#buckets.delete(k);
  }
}
