/**
 * The devices the broker admits: those of gateway.json plus those added over the admin API, which
 * are kept in the KeyStore (entry `devices`, JSON `[{id, username, secret}]`) so a restart keeps
 * them. Only added devices can be removed here; a gateway.json device is removed in gateway.json.
 * An entry that does not parse admits none of the added devices (fail closed) and says so.
 */
import type { KeyStore } from "../ports.js";
import { DEVICE_ID, type DeviceEntry } from "../config.js";
import { fromUtf8, utf8 } from "../util/bytes.js";

export const DEVICES_KEY = "devices";
/** Added devices at most: their entry stays well within a 4,000-byte NVS blob. */
export const MAX_ADDED_DEVICES = 12;

const SECRET = /^hmac-sha256:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/;

export interface DeviceList {
  get(id: string): DeviceEntry | undefined;
  /** gateway.json's devices, then the added ones. */
  list(): DeviceEntry[];
  /** True for a device of gateway.json. */
  configured(id: string): boolean;
  readonly added: number;
  /** Why the stored entry was ignored at boot, when it was. */
  readonly problem: string | undefined;
  /** Adds and persists. @throws RangeError when the KeyStore refuses (nothing changes then). */
  add(entry: { id: string; username: string; secret: string }): void;
  /** Removes an added device and persists. @returns false when it is not an added one. */
  remove(id: string): boolean;
}

function parse(raw: Uint8Array | undefined): { entries: DeviceEntry[]; problem?: string } {
  if (!raw) return { entries: [] };
  try {
    const v: unknown = JSON.parse(fromUtf8(raw));
    if (!Array.isArray(v) || v.length > MAX_ADDED_DEVICES) throw new Error("not a list");
    return {
      entries: v.map((e: unknown) => {
        const d = e as { id?: unknown; username?: unknown; secret?: unknown };
        if (typeof d.id !== "string" || !DEVICE_ID.test(d.id) || typeof d.username !== "string" || typeof d.secret !== "string" || !SECRET.test(d.secret)) throw new Error("bad entry");
        return { id: d.id, username: d.username, secret: d.secret, groups: [], subscribe: [] };
      }),
    };
  } catch (e) {
    return { entries: [], problem: `the key store's device list does not parse (${e instanceof Error ? e.message : String(e)}): devices added over the API are refused until they are added again` };
  }
}

export function openDeviceList(keys: KeyStore, configured: readonly DeviceEntry[]): DeviceList {
  const fromConfig = new Map(configured.map((d) => [d.id, d]));
  const loaded = parse(keys.get(DEVICES_KEY));
  const added = new Map<string, DeviceEntry>();
  for (const d of loaded.entries) if (!fromConfig.has(d.id)) added.set(d.id, d);
  const save = (next: Map<string, DeviceEntry>): void => {
    keys.set(DEVICES_KEY, utf8(JSON.stringify(Array.from(next.values()).map((d) => ({ id: d.id, username: d.username, secret: d.secret })))));
  };
  return {
    get: (id) => fromConfig.get(id) ?? added.get(id),
    list: () => [...configured, ...added.values()],
    configured: (id) => fromConfig.has(id),
    get added() {
      return added.size;
    },
    problem: loaded.problem,
    add(entry) {
      const next = new Map(added);
      next.set(entry.id, { ...entry, groups: [], subscribe: [] });
      save(next);
      added.set(entry.id, { ...entry, groups: [], subscribe: [] });
    },
    remove(id) {
      if (!added.has(id)) return false;
      const next = new Map(added);
      next.delete(id);
      save(next);
      added.delete(id);
      return true;
    },
  };
}
