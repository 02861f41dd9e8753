/**
 * Reads what tools/provision.ts stored in the KeyStore (docs/spec-firmware.md §Provisioning) into the
 * values main hands to the gateway core. Platform-free (type imports only), so Node tests round-trip it.
 */
import type { KeyStore } from "../../src/ports.js";

export interface Provisioning {
  /** SHA-256 of the owner token; undefined before provisioning (the gateway then refuses owner requests). */
  readonly ownerTokenHash: Uint8Array | undefined;
  /** Integration contracts, as JSON text, in provisioning order. */
  readonly integrations: readonly string[];
  /** An extra uplink trust anchor (DER), if provisioned. */
  readonly uplinkCa: Uint8Array | undefined;
}

/**
 * @throws Error when the stored integrations are inconsistent (a chunk missing, a count out of range):
 * better to refuse to start than to enforce a partial contract.
 */
export function readProvisioning(keys: KeyStore): Provisioning {
  const count = keys.get("int.count")?.[0] ?? 0;
  const integrations: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `int.${i < 10 ? "0" : ""}${i}`;
    const chunks = keys.get(id)?.[0];
    if (chunks === undefined || chunks < 1 || chunks > 9) throw new Error(`provisioning: ${id} chunk count missing`);
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let c = 0; c < chunks; c++) {
      const part = keys.get(`${id}.${c}`);
      if (part === undefined) throw new Error(`provisioning: ${id}.${c} missing`);
      parts.push(part);
      length += part.length;
    }
    const bytes = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    integrations.push(utf8Decode(bytes));
  }
  const hash = keys.get("owner.tokenhash");
  if (hash !== undefined && hash.length !== 32) throw new Error("provisioning: owner.tokenhash is not a SHA-256");
  return { ownerTokenHash: hash, integrations, uplinkCa: keys.get("uplink.ca") };
}

/** UTF-8 decoding without TextDecoder (absent from XS on the ESP32 unless a module adds it). */
function utf8Decode(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i++]!;
    let cp: number;
    if (b < 0x80) cp = b;
    else if (b >= 0xf0) cp = ((b & 0x07) << 18) | ((bytes[i++]! & 0x3f) << 12) | ((bytes[i++]! & 0x3f) << 6) | (bytes[i++]! & 0x3f);
    else if (b >= 0xe0) cp = ((b & 0x0f) << 12) | ((bytes[i++]! & 0x3f) << 6) | (bytes[i++]! & 0x3f);
    else cp = ((b & 0x1f) << 6) | (bytes[i++]! & 0x3f);
    out += String.fromCodePoint(cp);
  }
  return out;
}
