/**
 * Aggregates repetitive broker records (evictions, rate-limited publishes) so that a flood costs at most
 * two records per key and window: the first occurrence is written at once (`detail.count: 1`), the rest
 * of the window are counted and written as one record when the window ends (`detail.count: n`). The
 * sum of `detail.count` over a key's records is the exact number of occurrences.
 */
import type { AuditEvent } from "../audit/types.js";
import type { TimerId, Timers } from "../ports.js";

/** Length of one aggregation window. */
export const AGGREGATE_WINDOW_MS = 60000;
/** Keys with an open window at once; one more closes (flushes) the oldest. */
export const MAX_AGGREGATE_KEYS = 32;

interface Window {
  readonly event: AuditEvent;
  count: number;
  readonly timer: TimerId;
}

export class Tally {
  readonly #timers: Timers;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #emit: (event: AuditEvent) => void;
  /** Open windows by key, oldest first (Map keeps insertion order). */
  readonly #open = new Map<string, Window>();

  constructor(timers: Timers, windowMs: number, maxKeys: number, emit: (event: AuditEvent) => void) {
    this.#timers = timers;
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
    this.#emit = emit;
  }

  /** Keys with an open window (each holds one timer). */
  get open(): number {
    return this.#open.size;
  }

  /** Records one occurrence of `event` under `key`. */
  add(key: string, event: AuditEvent): void {
    const w = this.#open.get(key);
    if (w !== undefined) {
      w.count++;
      return;
    }
    if (this.#open.size >= this.#maxKeys) {
      const oldest = this.#open.keys().next().value;
      if (oldest !== undefined) this._flush(oldest);
    }
    this.#emit(withCount(event, 1));
    const timer = this.#timers.after(this.#windowMs, () => this._flush(key));
    this.#open.set(key, { event, count: 0, timer });
  }

  /** Closes `key`'s window now (e.g. when its device disconnects). Harmless for an unknown key. */
  flush(key: string): void {
    this._flush(key);
  }

  /** Closes every window, writing what was counted. */
  flushAll(): void {
    for (const key of [...this.#open.keys()]) this._flush(key);
  }

  private _flush(key: string): void {
    const w = this.#open.get(key);
    if (w === undefined) return;
    this.#open.delete(key);
    this.#timers.cancel(w.timer);
    if (w.count > 0) this.#emit(withCount(w.event, w.count));
  }
}

function withCount(event: AuditEvent, count: number): AuditEvent {
  return { ...event, detail: { ...event.detail, count } };
}
