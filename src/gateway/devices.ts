/**
 * Device credentials the owner (or an incident's containment) has disabled. The set is kept in the
 * KeyStore under one key, so a disabled device stays refused across reboots; the broker's
 * authentication consults {@link DeviceRegistry.isDisabled} for every CONNECT (CONNACK 5 when set).
 * Every change is an audit record naming who acted.
 */
import type { KeyStore } from "../ports.js";
import type { AuditEvent, DetailValue } from "../audit/types.js";
import { fromUtf8, utf8 } from "../util/bytes.js";

const KEY = "dev-disabled";

export interface DeviceRegistryOptions {
  readonly keys: KeyStore;
  /** The configured device ids: only these can be disabled. */
  /** The ids of the devices the gateway knows now (gateway.json and those added over the API). */
  readonly known: () => readonly string[];
  /** Appends the record of a change; resolves with its seq once durable. */
  readonly append: (event: AuditEvent) => Promise<number>;
  /** Closes the device's live MQTT session, if any (called after the record is written). */
  readonly disconnect: (clientId: string) => void;
}

export class DeviceRegistry {
  readonly #o: DeviceRegistryOptions;
  readonly #disabled: Set<string>;

  constructor(o: DeviceRegistryOptions) {
    this.#o = o;
    this.#disabled = new Set();
    const raw = o.keys.get(KEY);
    if (raw) {
      try {
        const v: unknown = JSON.parse(fromUtf8(raw));
        if (Array.isArray(v)) for (const id of v) if (typeof id === "string") this.#disabled.add(id);
      } catch {
        // A damaged set fails closed: every configured device is refused until the owner enables it.
        for (const id of o.known()) this.#disabled.add(id);
      }
    }
  }

  isDisabled(id: string): boolean {
    return this.#disabled.has(id);
  }

  disabled(): string[] {
    return [...this.#disabled].sort();
  }

  /**
   * Disables a device's credentials: persisted first, then recorded, then its session closed.
   * Resolves with the record's seq. @throws Error on an unknown id.
   */
  async disable(id: string, who: Readonly<Record<string, DetailValue>>, cause?: string): Promise<number> {
    this._check(id);
    this.#disabled.add(id);
    this._save();
    const seq = await this.#o.append({ kind: "admin", decision: "deny", device: id, reason: "device-disabled", detail: { ...who, ...(cause !== undefined ? { cause } : {}) } });
    this.#o.disconnect(id);
    return seq;
  }

  /** Enables a device's credentials again. Resolves with the record's seq. @throws Error on an unknown id. */
  async enable(id: string, who: Readonly<Record<string, DetailValue>>, cause?: string): Promise<number> {
    this._check(id);
    this.#disabled.delete(id);
    this._save();
    return this.#o.append({ kind: "admin", decision: "info", device: id, reason: "device-enabled", detail: { ...who, ...(cause !== undefined ? { cause } : {}) } });
  }

  private _check(id: string): void {
    if (!this.#o.known().includes(id)) throw new Error("unknown device \"" + id + "\" (see the devices command)");
  }

  private _save(): void {
    if (this.#disabled.size === 0) this.#o.keys.delete(KEY);
    else this.#o.keys.set(KEY, utf8(JSON.stringify(this.disabled())));
  }
}
