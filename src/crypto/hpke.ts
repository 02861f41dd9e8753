/**
 * HPKE (RFC 9180) base mode for one suite: DHKEM(P-256, HKDF-SHA256) 0x0010, HKDF-SHA256 0x0001,
 * AES-128-GCM 0x0001. Composed from the Crypto port only; no primitive is implemented here.
 *
 * A sender context is used for a whole uplink session (one ECDH per session). Sequence numbers only
 * move forward, so a nonce is never reused (RFC 9180 §5.2, §9.7.1).
 */
import type { Crypto, P256KeyPair } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { concat, i2osp, utf8 as text } from "../util/bytes.js";

export const KEM_ID = 0x0010;
export const KDF_ID = 0x0001;
export const AEAD_ID = 0x0001;
/** Sizes for this suite (RFC 9180 §7.1, §7.3): Nsecret, Nenc, Npk, Nsk, Nk, Nn, Nh, Nt. */
export const N_SECRET = 32;
export const N_ENC = 65;
export const N_SK = 32;
export const N_K = 16;
export const N_N = 12;
export const N_H = 32;
export const N_T = 16;
/** The largest sequence number this implementation uses: the largest exact integer in JavaScript. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

const MODE_BASE = 0x00;
const VERSION = text("HPKE-v1");
/** suite_id for the KEM's own labels (§4.1) and for the rest of HPKE (§5.1). */
const KEM_SUITE = concat(text("KEM"), i2osp(KEM_ID, 2));
const HPKE_SUITE = concat(text("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_ID, 2));
const EMPTY = new Uint8Array(0);
/** P-256 group order n, big-endian (SEC 2 §2.4.2), for DeriveKeyPair's rejection test. */
const ORDER = Uint8Array.from([
  0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
]);

/** LabeledExtract (§4). */
export function labeledExtract(c: Crypto, suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return c.hkdfExtract(salt, concat(VERSION, suite, text(label), ikm));
}

/** LabeledExpand (§4). */
export function labeledExpand(c: Crypto, suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return c.hkdfExpand(prk, concat(i2osp(length, 2), VERSION, suite, text(label), info), length);
}

/** True when a 32-byte big-endian value is a valid scalar: 0 < sk < n. */
function validScalar(sk: Uint8Array): boolean {
  let zero = true;
  for (const b of sk) if (b !== 0) zero = false;
  if (zero) return false;
  for (let i = 0; i < ORDER.length; i++) {
    const a = sk[i] ?? 0;
    const o = ORDER[i] ?? 0;
    if (a !== o) return a < o;
  }
  return false;
}

/**
 * DeriveKeyPair for P-256 (§7.1.3): rejection sampling over "candidate" expansions; the P-256 bitmask is 0xff.
 * @throws PortcullisError(BadOption) when ikm is shorter than Nsk, or (probability ~2^-8160) no candidate fits.
 */
export function deriveKeyPair(c: Crypto, ikm: Uint8Array): P256KeyPair {
  if (ikm.length < N_SK) throw new PortcullisError(ErrorCode.BadOption, "DeriveKeyPair needs at least 32 bytes of ikm");
  const prk = labeledExtract(c, KEM_SUITE, EMPTY, "dkp_prk", ikm);
  for (let counter = 0; counter <= 255; counter++) {
    const sk = labeledExpand(c, KEM_SUITE, prk, "candidate", i2osp(counter, 1), N_SK);
    sk[0] = (sk[0] ?? 0) & 0xff;
    if (validScalar(sk)) return { privateKey: sk, publicKey: c.p256PublicKey(sk) };
  }
  throw new PortcullisError(ErrorCode.BadOption, "DeriveKeyPairError");
}

function extractAndExpand(c: Crypto, dh: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = labeledExtract(c, KEM_SUITE, EMPTY, "eae_prk", dh);
  return labeledExpand(c, KEM_SUITE, prk, "shared_secret", kemContext, N_SECRET);
}

/**
 * Encap (§4.1). `ephemeral` is for known-answer tests only; production passes none and gets a fresh pair.
 * @throws Error (from the port) when pkR is not a valid uncompressed P-256 point.
 */
export function encap(c: Crypto, pkR: Uint8Array, ephemeral?: P256KeyPair): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const e = ephemeral ?? c.p256Generate();
  const dh = c.p256Ecdh(e.privateKey, pkR);
  const enc = e.publicKey.slice();
  return { sharedSecret: extractAndExpand(c, dh, concat(enc, pkR)), enc };
}

/**
 * Decap (§4.1).
 * @throws PortcullisError(Malformed) when enc is not a valid uncompressed P-256 point.
 */
export function decap(c: Crypto, enc: Uint8Array, skR: Uint8Array): Uint8Array {
  let dh: Uint8Array;
  try {
    dh = c.p256Ecdh(skR, enc);
  } catch (e) {
    throw new PortcullisError(ErrorCode.Malformed, `HPKE enc is not a valid P-256 point: ${(e as Error).message}`);
  }
  return extractAndExpand(c, dh, concat(enc, c.p256PublicKey(skR)));
}

/** The secrets KeySchedule derives (§5.1). */
export interface KeyScheduleOutput {
  readonly key: Uint8Array;
  readonly baseNonce: Uint8Array;
  readonly exporterSecret: Uint8Array;
}

/** KeySchedule (§5.1) for mode_base: empty psk and psk_id. */
export function keySchedule(c: Crypto, sharedSecret: Uint8Array, info: Uint8Array): KeyScheduleOutput {
  const pskIdHash = labeledExtract(c, HPKE_SUITE, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = labeledExtract(c, HPKE_SUITE, EMPTY, "info_hash", info);
  const context = concat(i2osp(MODE_BASE, 1), pskIdHash, infoHash);
  const secret = labeledExtract(c, HPKE_SUITE, sharedSecret, "secret", EMPTY);
  return {
    key: labeledExpand(c, HPKE_SUITE, secret, "key", context, N_K),
    baseNonce: labeledExpand(c, HPKE_SUITE, secret, "base_nonce", context, N_N),
    exporterSecret: labeledExpand(c, HPKE_SUITE, secret, "exp", context, N_H),
  };
}

/** ComputeNonce (§5.2): base_nonce XOR I2OSP(seq, Nn). */
export function computeNonce(baseNonce: Uint8Array, seq: number): Uint8Array {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new PortcullisError(ErrorCode.Limit, "HPKE sequence number out of range");
  const s = i2osp(seq, N_N);
  const out = new Uint8Array(N_N);
  for (let i = 0; i < N_N; i++) out[i] = (baseNonce[i] ?? 0) ^ (s[i] ?? 0);
  return out;
}

/** A sender's context: seals in sequence, never reusing a sequence number. */
export interface SenderContext {
  /** The encapsulated key (65 bytes) the recipient needs. */
  readonly enc: Uint8Array;
  /** The next sequence number `seal` will use. */
  readonly nextSeq: number;
  /**
   * Seals at the next sequence number (§5.2 ContextS.Seal).
   * @throws PortcullisError(Limit) when the sequence numbers are exhausted.
   */
  seal(aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /**
   * Seals at `seq`, which must be ≥ {@link nextSeq} (gaps are allowed, reuse is not); nextSeq becomes seq + 1.
   * @throws PortcullisError(BadOption) when seq was already used; (Limit) when seq > MAX_SEQ.
   */
  sealAt(seq: number, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Secret export (§5.3). @throws RangeError when L > 255 × Nh. */
  export(exporterContext: Uint8Array, length: number): Uint8Array;
}

/** A recipient's context. */
export interface RecipientContext {
  /** The next sequence number `open` expects. */
  readonly nextSeq: number;
  /** Opens at the next sequence number; on failure returns undefined and the sequence does not move (§5.2). */
  open(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined;
  /** Opens at an explicit sequence number (for messages that carry theirs); does not touch nextSeq. */
  openAt(seq: number, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined;
  export(exporterContext: Uint8Array, length: number): Uint8Array;
}

/**
 * SetupBaseS (§5.1.1) to the recipient public key `pkR`.
 * @throws Error when pkR is not a valid uncompressed P-256 point.
 */
export function setupBaseS(c: Crypto, pkR: Uint8Array, info: Uint8Array, ephemeral?: P256KeyPair): SenderContext {
  const { sharedSecret, enc } = encap(c, pkR, ephemeral);
  const ks = keySchedule(c, sharedSecret, info);
  let next = 0;
  const sealAt = (seq: number, aad: Uint8Array, pt: Uint8Array): Uint8Array => {
    if (!Number.isSafeInteger(seq) || seq > MAX_SEQ) throw new PortcullisError(ErrorCode.Limit, "HPKE sequence numbers exhausted");
    if (seq < next) throw new PortcullisError(ErrorCode.BadOption, `HPKE sequence number ${seq} already used`);
    const ct = c.aesGcmSeal(ks.key, computeNonce(ks.baseNonce, seq), pt, aad);
    next = seq + 1;
    return ct;
  };
  return {
    enc,
    get nextSeq() {
      return next;
    },
    seal: (aad, pt) => sealAt(next, aad, pt),
    sealAt,
    export: (ctx, length) => labeledExpand(c, HPKE_SUITE, ks.exporterSecret, "sec", ctx, length),
  };
}

/**
 * SetupBaseR (§5.1.1) from the encapsulated key.
 * @throws PortcullisError(Malformed) when enc is not a valid P-256 point.
 */
export function setupBaseR(c: Crypto, skR: Uint8Array, enc: Uint8Array, info: Uint8Array): RecipientContext {
  const ks = keySchedule(c, decap(c, enc, skR), info);
  let next = 0;
  const openAt = (seq: number, aad: Uint8Array, ct: Uint8Array): Uint8Array | undefined => {
    if (!Number.isSafeInteger(seq) || seq < 0) return undefined;
    return c.aesGcmOpen(ks.key, computeNonce(ks.baseNonce, seq), ct, aad);
  };
  return {
    get nextSeq() {
      return next;
    },
    open(aad, ct) {
      const pt = openAt(next, aad, ct);
      if (pt) next++;
      return pt;
    },
    openAt,
    export: (ctx, length) => labeledExpand(c, HPKE_SUITE, ks.exporterSecret, "sec", ctx, length),
  };
}
