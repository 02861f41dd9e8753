/**
 * How an audit record sits in a ring payload (SPEC.md "Audit log" §3): a 44-byte clear prefix (format,
 * epoch, boot counter, chain value) and the body under AES-256-GCM with the device storage key, and
 * the key-store entries the log keeps (storage key, sealing state, boot counter, legal hold, clean stop).
 */
import type { Crypto, KeyStore, Random } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { CHAIN_SIZE } from "./chain.js";
import { readU32, writeU32 } from "../flash/ring-format.js";

export const PAYLOAD_VERSION = 1;
export const PREFIX_SIZE = 12 + CHAIN_SIZE;
export const TAG_SIZE = 16;
/** Bit 0 of the prefix flags: the record is a seal (mount needs to know without decrypting). */
export const FLAG_SEAL = 1;
/** Bit 1: the record aggregates unauthenticated noise (its share is bounded; it may be purged first). */
export const FLAG_NOISE = 2;

export const KEY_STORAGE = "audit.store";
export const KEY_SEAL = "audit.seal";
export const KEY_BOOT = "audit.boot";
export const KEY_HOLD = "audit.hold";
/** Present while the log is closed cleanly: set by `close()`, deleted at mount. */
export const KEY_CLEAN = "audit.clean";

export interface Prefix {
  readonly flags: number;
  readonly epoch: number;
  readonly boot: number;
  readonly chain: Uint8Array;
}

function nonce(seq: number, boot: number): Uint8Array {
  // seq and the boot counter: a torn record's seq may be written again only after a reboot, which
  // bumps the boot counter first, so a (key, nonce) pair is never used twice (NIST SP 800-38D §8.2.1).
  const n = new Uint8Array(12);
  writeU32(n, 0, seq);
  writeU32(n, 4, boot);
  n.set([0x50, 0x43, 0x41, 0x31], 8);
  return n;
}

function aad(prefix: Uint8Array, seq: number): Uint8Array {
  const a = new Uint8Array(PREFIX_SIZE + 4);
  a.set(prefix);
  writeU32(a, PREFIX_SIZE, seq);
  return a;
}

/** Builds the ring payload for record `seq`. */
export function sealPayload(crypto: Crypto, key: Uint8Array, seq: number, p: Prefix, body: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(PREFIX_SIZE);
  prefix[0] = PAYLOAD_VERSION;
  prefix[1] = p.flags;
  writeU32(prefix, 4, p.epoch);
  writeU32(prefix, 8, p.boot);
  prefix.set(p.chain, 12);
  const ct = crypto.aesGcmSeal(key, nonce(seq, p.boot), body, aad(prefix, seq));
  const out = new Uint8Array(PREFIX_SIZE + ct.length);
  out.set(prefix);
  out.set(ct, PREFIX_SIZE);
  return out;
}

/** The clear prefix of a payload, or undefined when it is not a version-1 audit payload. */
export function readPrefix(payload: Uint8Array): Prefix | undefined {
  if (payload.length < PREFIX_SIZE + TAG_SIZE || payload[0] !== PAYLOAD_VERSION) return undefined;
  return { flags: payload[1]!, epoch: readU32(payload, 4), boot: readU32(payload, 8), chain: payload.slice(12, PREFIX_SIZE) };
}

/** The decrypted body, or undefined when the payload fails authentication (tampered or corrupt). */
export function openPayload(crypto: Crypto, key: Uint8Array, seq: number, payload: Uint8Array): Uint8Array | undefined {
  const p = readPrefix(payload);
  if (!p) return undefined;
  return crypto.aesGcmOpen(key, nonce(seq, p.boot), payload.subarray(PREFIX_SIZE), aad(payload.subarray(0, PREFIX_SIZE), seq));
}

/** The sealing state kept in the key store: the current epoch, its first seq, and k[epoch]. */
export interface SealState {
  epoch: number;
  first: number;
  key: Uint8Array;
}

export function loadSealState(keys: KeyStore): SealState | undefined {
  const v = keys.get(KEY_SEAL);
  if (!v) return undefined;
  if (v.length !== 8 + 32) throw new PortcullisError(ErrorCode.Corrupt, "audit sealing state in the key store is malformed");
  return { epoch: readU32(v, 0), first: readU32(v, 4), key: v.slice(8) };
}

/** Replaces the stored sealing state (the key store overwrites the old key where the medium allows). */
export function storeSealState(keys: KeyStore, s: SealState): void {
  const v = new Uint8Array(40);
  writeU32(v, 0, s.epoch);
  writeU32(v, 4, s.first);
  v.set(s.key, 8);
  keys.set(KEY_SEAL, v);
  v.fill(0);
}

/** The storage key, created on first use. */
export function storageKey(keys: KeyStore, random: Random): Uint8Array {
  const k = keys.get(KEY_STORAGE);
  if (k && k.length === 32) return k;
  if (k) throw new PortcullisError(ErrorCode.Corrupt, "audit storage key in the key store is malformed");
  const fresh = new Uint8Array(32);
  random.fill(fresh);
  keys.set(KEY_STORAGE, fresh);
  return fresh;
}

/** Increments and returns the boot counter (part of every nonce). */
export function nextBoot(keys: KeyStore): number {
  const v = keys.get(KEY_BOOT);
  const boot = (v && v.length === 4 ? readU32(v, 0) : 0) + 1;
  const b = new Uint8Array(4);
  writeU32(b, 0, boot >>> 0);
  keys.set(KEY_BOOT, b);
  return boot >>> 0;
}
