/** A Clock and Timers pair driven by the test: time moves only when `tick` is called. */
import type { Clock, TimerId, Timers } from "../../src/ports.js";

interface Pending {
  id: TimerId;
  at: number;
  every: number;
  callback: () => void;
}

export class FakeClock implements Clock, Timers {
  #mono = 0;
  #wall: number;
  #set: boolean;
  #pending: Pending[] = [];

  constructor(wallStart = Date.UTC(2026, 0, 1), isSet = true) {
    this.#wall = wallStart;
    this.#set = isSet;
  }

  now(): number {
    return this.#wall + this.#mono;
  }
  monotonic(): number {
    return this.#mono;
  }
  isSet(): boolean {
    return this.#set;
  }
  setTime(wall: number): void {
    this.#wall = wall - this.#mono;
    this.#set = true;
  }

  after(ms: number, callback: () => void): TimerId {
    return this.#add(ms, 0, callback);
  }
  every(ms: number, callback: () => void): TimerId {
    return this.#add(ms, Math.max(1, ms), callback);
  }
  cancel(id: TimerId): void {
    this.#pending = this.#pending.filter((p) => p.id !== id);
  }

  /** Advances time by `ms` (whole milliseconds, as the Clock contract says), firing due timers in time order. */
  tick(ms: number): void {
    if (!Number.isInteger(ms) || ms < 0) throw new RangeError(`tick(${ms}): whole, non-negative milliseconds`);
    const end = this.#mono + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.#pending) if (p.at <= end && (!next || p.at < next.at)) next = p;
      if (!next) break;
      this.#mono = next.at;
      if (next.every > 0) next.at += next.every;
      else this.#pending = this.#pending.filter((p) => p !== next);
      next.callback();
    }
    this.#mono = end;
  }

  /** Timers still scheduled (for leak checks). */
  get pendingCount(): number {
    return this.#pending.length;
  }

  #add(ms: number, every: number, callback: () => void): TimerId {
    const id = { __timer: true } as TimerId;
    this.#pending.push({ id, at: this.#mono + Math.max(0, ms), every, callback });
    return id;
  }
}
