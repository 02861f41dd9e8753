/**
 * The outbound envelope (SPEC.md "Outbound envelope"): what a vendor receives for each allowed message.
 *
 *   off  len  field
 *   0    1    version        0x01
 *   1    1    flags          bit 0 E: enc present; bit 1 P: plaintext ("encryption: none"); others 0
 *   2    8    key id         SHA-256(vendor public key)[0..8]; zero when P
 *   10   8    context id     SHA-256(enc)[0..8]; zero when P
 *   18   8    seq            uint64 big-endian message sequence number, also the HPKE sequence number
 *   26   65   enc            only when E
 *   ...       body           HPKE ciphertext ‖ 16-byte tag, or the plaintext when P
 *
 * info = "portcullis/v1" ‖ u16 len ‖ integration id ‖ u16 len ‖ contract version   (UTF-8)
 * aad  = header (every byte before body) ‖ u16 len ‖ vendor topic                   (UTF-8)
 */
import type { Clock, Crypto } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { concat, i2osp, utf8 as text } from "../util/bytes.js";
import { MAX_SEQ, N_ENC, setupBaseS, type SenderContext } from "../crypto/hpke.js";

export const ENVELOPE_VERSION = 0x01;
export const FLAG_ENC = 0x01;
export const FLAG_PLAINTEXT = 0x02;
export const HEADER_SIZE = 26;
export const KEY_ID_SIZE = 8;
/** A context is re-established at least this often (the issue: "at least daily"). */
export const DEFAULT_MAX_CONTEXT_AGE_MS = 24 * 60 * 60 * 1000;
/** Largest payload one envelope carries; bigger ones are rejected, never split. */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024;
const MAX_FIELD = 0xffff;

function bad(message: string): PortcullisError {
  return new PortcullisError(ErrorCode.BadOption, message);
}

function field(s: string, what: string): Uint8Array {
  const b = text(s);
  if (b.length > MAX_FIELD) throw bad(`${what} longer than ${MAX_FIELD} bytes`);
  return concat(i2osp(b.length, 2), b);
}

/** The HPKE `info` for an integration's contract (binds envelopes to one contract version). */
export function envelopeInfo(integration: string, contractVersion: string): Uint8Array {
  return concat(text("portcullis/v1"), field(integration, "integration id"), field(contractVersion, "contract version"));
}

/** The AEAD `aad`: the whole header, then the vendor topic. */
export function envelopeAad(header: Uint8Array, topic: string): Uint8Array {
  return concat(header, field(topic, "topic"));
}

/** The key id of a vendor public key: the first 8 bytes of its SHA-256. */
export function keyId(crypto: Crypto, vendorPublicKey: Uint8Array): Uint8Array {
  return crypto.sha256(vendorPublicKey).slice(0, KEY_ID_SIZE);
}

function u64(seq: number): Uint8Array {
  return i2osp(seq, 8);
}

/** A fresh copy of a range (a Node buffer's `slice` would return a view into a shared pool). */
function copy(bytes: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(bytes.subarray(from, to));
}

/** A parsed envelope (no cryptography done yet). */
export interface ParsedEnvelope {
  readonly version: number;
  readonly flags: number;
  readonly plaintext: boolean;
  readonly keyId: Uint8Array;
  readonly contextId: Uint8Array;
  readonly seq: number;
  readonly enc: Uint8Array | undefined;
  /** Every byte before the body (the first part of the aad). */
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

/**
 * Parses an envelope's framing.
 * @throws PortcullisError(Malformed) on a short input, an unknown version or flag, or a seq above 2^53−1.
 */
export function parseEnvelope(bytes: Uint8Array): ParsedEnvelope {
  const malformed = (m: string): PortcullisError => new PortcullisError(ErrorCode.Malformed, `envelope: ${m}`);
  if (bytes.length < HEADER_SIZE) throw malformed("shorter than the 26-byte header");
  const version = bytes[0] ?? 0;
  const flags = bytes[1] ?? 0;
  if (version !== ENVELOPE_VERSION) throw malformed(`unknown version ${version}`);
  if ((flags & ~(FLAG_ENC | FLAG_PLAINTEXT)) !== 0) throw malformed(`unknown flags 0x${flags.toString(16)}`);
  const plaintext = (flags & FLAG_PLAINTEXT) !== 0;
  const hasEnc = (flags & FLAG_ENC) !== 0;
  if (plaintext && hasEnc) throw malformed("plaintext envelope with an enc");
  let seq = 0;
  for (let i = 18; i < 26; i++) seq = seq * 256 + (bytes[i] ?? 0);
  if (!Number.isSafeInteger(seq) || seq > MAX_SEQ) throw malformed("seq above 2^53-1");
  const headerLen = HEADER_SIZE + (hasEnc ? N_ENC : 0);
  if (bytes.length < headerLen + (plaintext ? 0 : 16)) throw malformed("truncated");
  return {
    version,
    flags,
    plaintext,
    keyId: copy(bytes, 2, 10),
    contextId: copy(bytes, 10, 18),
    seq,
    enc: hasEnc ? copy(bytes, HEADER_SIZE, headerLen) : undefined,
    header: copy(bytes, 0, headerLen),
    body: copy(bytes, headerLen, bytes.length),
  };
}

export interface EnvelopeSealerOptions {
  readonly crypto: Crypto;
  readonly clock: Clock;
  readonly integration: string;
  readonly contractVersion: string;
  /** "hpke" seals to `vendorPublicKey`; "none" only when the contract says so explicitly. */
  readonly encryption: "hpke" | "none";
  /** The vendor's 65-byte uncompressed P-256 key (required for "hpke"). */
  readonly vendorPublicKey?: Uint8Array;
  readonly maxContextAgeMs?: number;
  readonly maxPayload?: number;
}

interface Ctx {
  readonly hpke: SenderContext;
  readonly id: Uint8Array;
  readonly started: number;
  confirmed: boolean;
}

/**
 * Seals messages for one integration. One HPKE context (one ECDH) per uplink session: `reset()` on
 * every reconnect; a context older than `maxContextAgeMs` is replaced at the next seal. Until the
 * uplink confirms an envelope of the context (`acknowledged()`), every envelope carries `enc`, so a
 * vendor never receives a context's messages without its key.
 */
export class EnvelopeSealer {
  readonly encryption: "hpke" | "none";
  readonly keyId: Uint8Array;
  /** How many contexts (ECDHs) were set up: for the benchmarks and the data map. */
  contextsStarted = 0;
  readonly #o: EnvelopeSealerOptions;
  readonly #info: Uint8Array;
  readonly #maxAge: number;
  readonly #maxPayload: number;
  #ctx: Ctx | undefined;

  /** @throws PortcullisError(BadOption) on a missing or malformed key, or bad limits. */
  constructor(options: EnvelopeSealerOptions) {
    const o = options;
    if (o.encryption !== "hpke" && o.encryption !== "none") throw bad(`unknown encryption ${String(o.encryption)}`);
    if (!o.integration) throw bad("integration required");
    if (o.encryption === "hpke") {
      const pk = o.vendorPublicKey;
      if (!pk || pk.length !== N_ENC || pk[0] !== 0x04) throw bad("vendorPublicKey must be a 65-byte uncompressed P-256 point");
    }
    this.#maxAge = o.maxContextAgeMs ?? DEFAULT_MAX_CONTEXT_AGE_MS;
    this.#maxPayload = o.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (!(this.#maxAge > 0) || !(this.#maxPayload > 0)) throw bad("maxContextAgeMs and maxPayload must be positive");
    this.#o = o;
    this.encryption = o.encryption;
    this.#info = envelopeInfo(o.integration, o.contractVersion);
    this.keyId = o.encryption === "hpke" && o.vendorPublicKey ? keyId(o.crypto, o.vendorPublicKey) : new Uint8Array(KEY_ID_SIZE);
  }

  /** Drops the context; the next seal sets up a new one (call on every new uplink session). */
  reset(): void {
    this.#ctx = undefined;
  }

  /** The uplink confirmed (PUBACK) an envelope of the current context: later ones omit enc. */
  acknowledged(): void {
    if (this.#ctx) this.#ctx.confirmed = true;
  }

  /**
   * Seals one message with its message sequence number (strictly increasing per integration).
   * A seq below the context's next starts a new context, so no nonce is ever reused.
   * @throws PortcullisError(Limit) when the payload exceeds maxPayload or seq exceeds 2^53−1;
   *   Error when the vendor key is not a valid point.
   */
  seal(seq: number, topic: string, payload: Uint8Array): Uint8Array {
    if (payload.length > this.#maxPayload) {
      throw new PortcullisError(ErrorCode.Limit, `payload of ${payload.length} bytes exceeds ${this.#maxPayload}`);
    }
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ) throw new PortcullisError(ErrorCode.Limit, "seq out of range");
    if (this.encryption === "none") {
      const header = concat(new Uint8Array([ENVELOPE_VERSION, FLAG_PLAINTEXT]), new Uint8Array(16), u64(seq));
      return concat(header, payload);
    }
    const ctx = this._context(seq);
    const enc = ctx.confirmed ? undefined : ctx.hpke.enc;
    const header = concat(
      new Uint8Array([ENVELOPE_VERSION, enc ? FLAG_ENC : 0]),
      this.keyId,
      ctx.id,
      u64(seq),
      enc ?? new Uint8Array(0),
    );
    return concat(header, ctx.hpke.sealAt(seq, envelopeAad(header, topic), payload));
  }

  private _context(seq: number): Ctx {
    const now = this.#o.clock.monotonic();
    const c = this.#ctx;
    if (c && seq >= c.hpke.nextSeq && now - c.started < this.#maxAge) return c;
    const pk = this.#o.vendorPublicKey as Uint8Array;
    const hpke = setupBaseS(this.#o.crypto, pk, this.#info);
    this.contextsStarted++;
    this.#ctx = { hpke, id: this.#o.crypto.sha256(hpke.enc).slice(0, 8), started: now, confirmed: false };
    return this.#ctx;
  }
}
