/**
 * Reads what tools/provision.ts stored in the KeyStore (SPEC.md "Firmware" §Provisioning): the
 * gateway configuration (gateway.json) and the integration contracts, each chunked into values of at most
 * 4000 bytes, and an optional uplink trust anchor. Also keeps approved contract texts (the core's
 * ContractStore) in the same chunked form. Platform-free (type imports only), so Node tests round-trip it.
 */
import type { Crypto, KeyStore } from "../../src/ports.js";

/** Values are split at this size (the KeyStore's limit). */
export const CHUNK_BYTES = 4000;
/** Chunks per item at most (keys end in one digit). */
export const MAX_CHUNKS = 9;

export interface Provisioning {
  /** gateway.json text; undefined on a board never provisioned. */
  readonly configText: string | undefined;
  /** Contract texts in provisioning order, each named by its key for error messages. */
  readonly contracts: readonly { readonly source: string; readonly text: string }[];
  /** An extra uplink trust anchor (DER), if provisioned. */
  readonly uplinkCa: Uint8Array | undefined;
}

/**
 * Reads a chunked text stored under `id` (chunk count) and `id.0` … `id.N-1`.
 * @throws Error when the count is out of range or a chunk is missing (refuse to start on a partial contract).
 */
export function readChunked(keys: KeyStore, id: string): string | undefined {
  const count = keys.get(id);
  if (count === undefined) return undefined;
  const chunks = count[0] ?? 0;
  if (count.length !== 1 || chunks < 1 || chunks > MAX_CHUNKS) throw new Error(`provisioning: ${id} chunk count malformed`);
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
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/** Stores `text` chunked under `id`, replacing what was there. @throws RangeError when it needs more than MAX_CHUNKS chunks. */
export function writeChunked(keys: KeyStore, id: string, text: string): void {
  const bytes = new TextEncoder().encode(text);
  const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
  if (chunks > MAX_CHUNKS) throw new RangeError(`${id}: ${bytes.length} bytes; at most ${MAX_CHUNKS * CHUNK_BYTES}`);
  const old = keys.get(id)?.[0] ?? 0;
  for (let c = 0; c < chunks; c++) keys.set(`${id}.${c}`, bytes.subarray(c * CHUNK_BYTES, (c + 1) * CHUNK_BYTES));
  for (let c = chunks; c < old; c++) keys.delete(`${id}.${c}`);
  keys.set(id, Uint8Array.of(chunks));
}

/** Key of the n-th provisioned contract: `int.00` … `int.31`. */
export function contractKey(n: number): string {
  return `int.${n < 10 ? "0" : ""}${n}`;
}

/** @throws Error when stored items are inconsistent. */
export function readProvisioning(keys: KeyStore): Provisioning {
  const count = keys.get("int.count")?.[0] ?? 0;
  const contracts: { source: string; text: string }[] = [];
  for (let i = 0; i < count; i++) {
    const id = contractKey(i);
    const text = readChunked(keys, id);
    if (text === undefined) throw new Error(`provisioning: ${id} missing`);
    contracts.push({ source: id, text });
  }
  return { configText: readChunked(keys, "cfg"), contracts, uplinkCa: keys.get("uplink.ca") };
}

/** The core's ContractStore (src/gateway/policy.ts) on the KeyStore: `ap.<8 hex of SHA-256(id)>`. */
export function keyStoreContracts(keys: KeyStore, crypto: Crypto): { get(id: string): string | undefined; set(id: string, text: string): void } {
  const key = (id: string): string => {
    const h = crypto.sha256(new TextEncoder().encode(id));
    let hex = "";
    for (let i = 0; i < 4; i++) hex += (h[i]! < 16 ? "0" : "") + h[i]!.toString(16);
    return `ap.${hex}`;
  };
  return { get: (id) => readChunked(keys, key(id)), set: (id, text) => writeChunked(keys, key(id), text) };
}
