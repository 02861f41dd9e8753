/**
 * The simulated board of the power-loss runs: flash in RAM (whose bytes can be copied, to replay a
 * recovery from the same state with a different cut), a key store, a clock, and timers that a power
 * cut kills. Portable (runs in XS).
 */
import type { Flash, KeyStore, TimerId, Timers } from "../../src/ports.js";
import { NorFlash, RamStore } from "../../src/flash/nor.js";
import type { AuditLogOptions, FlashAuditLog } from "../../src/audit/log.js";
import { FlashAuditLog as Log } from "../../src/audit/log.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeyStore } from "./support.js";

/** Timers of one boot: a power cut kills them all, as it kills the board's event loop. */
export class BootTimers implements Timers {
  readonly #clock: FakeClock;
  readonly #ids = new Set<TimerId>();
  dead = false;
  constructor(clock: FakeClock) {
    this.#clock = clock;
  }
  after(ms: number, cb: () => void): TimerId {
    const id = this.#clock.after(ms, () => {
      this.#ids.delete(id);
      if (!this.dead) cb();
    });
    this.#ids.add(id);
    return id;
  }
  every(ms: number, cb: () => void): TimerId {
    const id = this.#clock.every(ms, () => {
      if (!this.dead) cb();
    });
    this.#ids.add(id);
    return id;
  }
  cancel(id: TimerId): void {
    this.#ids.delete(id);
    this.#clock.cancel(id);
  }
  kill(): void {
    this.dead = true;
    for (const id of this.#ids) this.#clock.cancel(id);
    this.#ids.clear();
  }
}

/** What survives a reboot: flash bytes, the key store, the verification key the owner was given. */
export interface Device {
  readonly groupCommitMs: number;
  readonly store: RamStore;
  readonly flash: NorFlash;
  readonly keys: MemoryKeyStore;
  readonly clock: FakeClock;
  k0?: Uint8Array;
  timers?: BootTimers;
}

export const OPTIONS: AuditLogOptions = { sealEveryRecords: 24, retention: { connect: 20 * 60_000 }, retentionCheckMs: 40 * 60_000 };

export function freshDevice(groupCommitMs: number, sectors: number): Device {
  const store = new RamStore(sectors * 4096);
  return { groupCommitMs, store, flash: new NorFlash({ size: sectors * 4096, store }), keys: new MemoryKeyStore(), clock: new FakeClock() };
}

/** The same board state, independent of the original (to cut a recovery at another point). */
export function cloneDevice(d: Device): Device {
  const store = new RamStore(d.store.bytes.length);
  store.bytes.set(d.store.bytes);
  const keys = new MemoryKeyStore();
  for (const [k, v] of d.keys.map) keys.map.set(k, v.slice());
  const c: Device = { groupCommitMs: d.groupCommitMs, store, flash: new NorFlash({ size: store.bytes.length, store }), keys, clock: new FakeClock(d.clock.now()) };
  if (d.k0) c.k0 = d.k0.slice();
  return c;
}

/** One boot: the previous boot's timers die; the log mounts over `flash` and `keys` (fault-injecting or not). */
export function boot(dev: Device, flash: Flash = dev.flash, keys: KeyStore = dev.keys): Promise<FlashAuditLog> {
  dev.timers?.kill();
  const timers = new BootTimers(dev.clock);
  dev.timers = timers;
  const random = seededRandom("powerloss");
  return Log.open({
    flash, crypto: nobleCrypto(random), random, keys, clock: dev.clock, timers,
    options: { ...OPTIONS, groupCommitMs: dev.groupCommitMs, onVerificationKey: (k) => (dev.k0 = k) },
  });
}
