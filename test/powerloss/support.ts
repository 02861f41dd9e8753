/** Portable test support for the audit log: an in-memory KeyStore and a log factory over test ports. */
import type { Flash, KeyStore } from "../../src/ports.js";
import { ramFlash } from "../../src/flash/nor.js";
import { FlashAuditLog, type AuditLogOptions } from "../../src/audit/log.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";

const NAME = /^[a-z0-9._-]{1,15}$/;

/** A KeyStore in RAM with the port's name and size rules; survives "reboots" of a test. */
export class MemoryKeyStore implements KeyStore {
  readonly map = new Map<string, Uint8Array>();
  get(name: string): Uint8Array | undefined {
    return this.map.get(name)?.slice();
  }
  set(name: string, value: Uint8Array): void {
    if (!NAME.test(name)) throw new RangeError(`bad key name ${name}`);
    if (value.length > 4000) throw new RangeError("value too large");
    this.map.get(name)?.fill(0);
    this.map.set(name, value.slice());
  }
  delete(name: string): void {
    this.map.get(name)?.fill(0);
    this.map.delete(name);
  }
}

/** Everything a test device keeps across reboots besides the flash. */
export interface TestDevice {
  readonly keys: MemoryKeyStore;
  readonly clock: FakeClock;
  verificationKey?: Uint8Array | undefined;
  alarms: string[];
}

export function newDevice(): TestDevice {
  return { keys: new MemoryKeyStore(), clock: new FakeClock(), alarms: [] };
}

/** Opens a log on `flash` for `dev` with deterministic crypto. */
export function openLog(flash: Flash, dev: TestDevice, options: AuditLogOptions = {}, seed = "audit"): Promise<FlashAuditLog> {
  const random = seededRandom(seed);
  return FlashAuditLog.open({
    flash, crypto: nobleCrypto(random), random, keys: dev.keys, clock: dev.clock, timers: dev.clock,
    options: {
      ...options,
      onVerificationKey: (k) => (dev.verificationKey = k),
      onAlarm: (t) => dev.alarms.push(t),
    },
  });
}

/** A log of several epochs (a seal every 12 records) and its export, for verification tests. */
export async function sampleExport(records = 40): Promise<{ lines: string[]; dev: TestDevice }> {
  const dev = newDevice();
  const log = await openLog(ramFlash(32 * 4096), dev, { sealEveryRecords: 12 });
  for (let i = 0; i < records; i++) {
    await log.append({ kind: i % 3 ? "flow" : "admin", decision: i % 2 ? "deny" : "info", device: `d${i % 4}`, topic: `t/${i}`, detail: { i, ok: i % 2 === 0, x: i / 7 } });
    dev.clock.tick(1000);
  }
  return { lines: log.exportJsonl(), dev };
}
