/**
 * The KeyStore port on the SDK `preference` module (ESP-IDF NVS) under the "portcullis" namespace.
 * NVS appends entries and erases pages later, so a deleted value survives in flash until its page is
 * garbage-collected; `delete` first overwrites the value with zeros so the newest copy is not the secret.
 */
import Preference from "preference";
import type { KeyStore } from "../../../src/ports.js";
import { KEY_DOMAIN, checkEntry, checkName } from "portcullis/moddable/keystore-rules";

export class PreferenceKeyStore implements KeyStore {
  get(name: string): Uint8Array | undefined {
    checkName(name);
    const value = Preference.get(KEY_DOMAIN, name);
    return value instanceof ArrayBuffer ? new Uint8Array(value.slice(0)) : undefined;
  }

  set(name: string, value: Uint8Array): void {
    checkEntry(name, value);
    Preference.set(KEY_DOMAIN, name, value.slice().buffer as ArrayBuffer);
  }

  delete(name: string): void {
    checkName(name);
    const old = Preference.get(KEY_DOMAIN, name);
    if (old === undefined) return;
    if (old instanceof ArrayBuffer) Preference.set(KEY_DOMAIN, name, new ArrayBuffer(old.byteLength));
    Preference.delete(KEY_DOMAIN, name);
  }
}

/** Opens the key store (a function so both platforms share one boot path). */
export function openKeyStore(): KeyStore {
  return new PreferenceKeyStore();
}
