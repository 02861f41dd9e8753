/**
 * Clock and Timers on the Moddable runtime: `Date.now()` for wall time, `Time.ticks` for monotonic
 * time, SNTP at boot for trust, and the SDK `Timer` for callbacks.
 */
import Time from "time";
import Net from "net";
import SNTP from "sntp";
import Timer from "timer";
import { cpuMicros } from "portcullis/memory";
import type { Clock, TimerId, Timers } from "../../src/ports.js";

/** Before SNTP answers, a clock earlier than this (2025-01-01) is certainly unset (the ESP32 boots at 1970). */
const PLAUSIBLE_EPOCH_MS = 1_735_689_600_000;

/** Wall time that reports {@link Clock.isSet} only once SNTP (or a trusted RTC) has set it. */
export class ModdableClock implements Clock {
  #set = false;

  now(): number {
    return Date.now();
  }

  monotonic(): number {
    return Time.ticks;
  }

  isSet(): boolean {
    return this.#set;
  }

  /** This thread's CPU time (lin) or the time since boot (ESP32, one core runs XS), for `profile`. */
  cpuMicros(): number {
    return cpuMicros();
  }

  /**
   * Records a trusted time. `Time.set` takes seconds since the epoch (SDK modules/base/time).
   * @throws RangeError when `seconds` is before 2025 (an SNTP answer that cannot be true).
   */
  setTrusted(seconds: number): void {
    if (!(seconds * 1000 >= PLAUSIBLE_EPOCH_MS)) throw new RangeError(`implausible time ${seconds}`);
    Time.set(seconds);
    this.#set = true;
  }
}

/** The SDK timer itself is the handle: its callback rides on it, so an arm builds no wrapper closure. */
type Handle = Timer & TimerId & { portcullis: (() => void) | undefined };

/** The one callback of every one-shot timer: the SDK passes the timer (modules/base/timer/modTimer.c). */
function fireOnce(timer: Timer): void {
  const handle = timer as Handle;
  const callback = handle.portcullis;
  handle.portcullis = undefined;
  if (callback !== undefined) run(callback);
}

/** The one callback of every repeating timer. */
function fireRepeat(timer: Timer): void {
  const callback = (timer as Handle).portcullis;
  if (callback !== undefined) run(callback);
}

/**
 * {@link Timers} on the SDK `Timer`; callbacks never run inside the call that scheduled them. The
 * handle is the SDK's timer object with the callback as a property, and the SDK calls one shared
 * function per kind: an arm costs the timer object and one property, not a handle and a closure.
 */
export class ModdableTimers implements Timers {
  after(ms: number, callback: () => void): TimerId {
    const timer = Timer.set(fireOnce, Math.max(0, ms)) as Handle;
    timer.portcullis = callback;
    return timer;
  }

  every(ms: number, callback: () => void): TimerId {
    const timer = Timer.repeat(fireRepeat, Math.max(1, ms)) as Handle;
    timer.portcullis = callback;
    return timer;
  }

  cancel(id: TimerId): void {
    const handle = id as Handle;
    // A fired one-shot has no callback left; clearing it again is harmless in the SDK, but skip it.
    if (handle.portcullis === undefined) return;
    handle.portcullis = undefined;
    Timer.clear(handle);
  }
}

/** Callbacks must not throw (ports.ts); if one does, log and keep the event loop alive. */
function run(callback: () => void): void {
  try {
    callback();
  } catch (e) {
    trace(`timer callback threw: ${String(e)}\n`);
  }
}

/** How long to wait before asking SNTP again after it gave up. */
const SNTP_RETRY_MS = 60_000;
/** Closing SNTP ourselves before its own 25 s failure (5 tries x 5 s). */
const SNTP_GIVE_UP_MS = 20_000;

/**
 * Asks `host` for the time until it answers, then marks the clock trusted. Until then audit records
 * carry "time not yet set" (Clock.isSet() is false). Returns a function that stops trying.
 */
export function syncTime(clock: ModdableClock, host: string, log: (line: string) => void): () => void {
  let stopped = false;
  let retry: Timer | undefined;
  const later = (why: string): void => {
    log(`SNTP ${host} ${why}; retrying in ${SNTP_RETRY_MS / 1000} s`);
    retry = Timer.set(ask, SNTP_RETRY_MS);
  };
  const ask = (): void => {
    retry = undefined;
    if (stopped) return;
    // Keep the SDK's SNTP away from its own failure path (SNTP.failed), which aborted the machine
    // intermittently on lin when the lookup failed: resolve here, hand it an address, and close it
    // ourselves before its five 5-second retries run out.
    Net.resolve(host, (_name, address) => {
      if (stopped) return;
      if (!address) return later("unresolvable");
      const giveUp = Timer.set(() => {
        (sntp as unknown as { close(): void }).close(); // SNTP extends Socket (modules/network/sntp/sntp.js); absent from the typings
        later("did not answer");
      }, SNTP_GIVE_UP_MS);
      const sntp = new SNTP({ host: address }, (message, value) => {
        if (stopped) return;
        if (message === SNTP.time && value !== undefined) {
          Timer.clear(giveUp);
          try {
            clock.setTrusted(value);
            log(`time set from ${host}`);
          } catch (e) {
            later(`answer rejected: ${String(e)}`);
          }
        } else if (message === SNTP.error) {
          Timer.clear(giveUp);
          later("unreachable");
        }
      });
    });
  };
  ask();
  return () => {
    stopped = true;
    if (retry !== undefined) Timer.clear(retry);
  };
}
