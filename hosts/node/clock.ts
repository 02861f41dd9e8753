/** Clock and Timers on Node: the host's wall clock (trusted: the OS keeps it), hrtime for monotonic time. */
import type { Clock, TimerId, Timers } from "../../src/ports.js";

export function nodeClock(): Clock {
  const origin = process.hrtime.bigint();
  return {
    now: () => Date.now(),
    monotonic: () => Number((process.hrtime.bigint() - origin) / 1_000_000n),
    isSet: () => true,
    cpuMicros: () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
  };
}

/** Timers on Node's event loop; callbacks that throw are reported, never crash the board. */
export function nodeTimers(onError: (e: unknown) => void = (e) => console.error("timer callback failed:", e)): Timers & { cancelAll(): void } {
  const live = new Set<NodeJS.Timeout>();
  const guard = (cb: () => void) => () => {
    try {
      cb();
    } catch (e) {
      onError(e);
    }
  };
  return {
    after(ms, callback) {
      const t = setTimeout(() => {
        live.delete(t);
        guard(callback)();
      }, ms);
      live.add(t);
      return t as unknown as TimerId;
    },
    every(ms, callback) {
      const t = setInterval(guard(callback), ms);
      live.add(t);
      return t as unknown as TimerId;
    },
    cancel(id) {
      const t = id as unknown as NodeJS.Timeout;
      clearTimeout(t);
      live.delete(t);
    },
    /** Stops every timer (board shutdown). */
    cancelAll() {
      for (const t of live) clearTimeout(t);
      live.clear();
    },
  };
}
