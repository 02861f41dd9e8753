/** Persistent per-integration state in the KeyStore: pseudonym keys, the consent ledger, approvals, quarantine. */
import type { Crypto, KeyStore, Random } from "../ports.js";
import { DataClasses, type DataClass } from "./contract.js";
import { toBase64 as base64Encode, toHex, tryUtf8 as utf8Decode, utf8 as utf8Encode } from "../util/bytes.js";

export type ConsentState = "opt-in" | "opt-out" | "withdrawn";
export const ConsentStates: readonly ConsentState[] = Object.freeze(["opt-in", "opt-out", "withdrawn"]);

/** One ledger entry: the state in force for a class, since when (wall ms) and who set it. */
export interface ConsentRecord {
  readonly state: ConsentState;
  readonly time: number;
  readonly who: string;
}

/** Pseudonyms remembered per integration before the memo starts over (bounded RAM). */
export const PSEUDONYM_MEMO = 64;

/** What a KeyStore name holds for an integration; names are prefix + 12 hex of SHA-256(id). */
export const KeyPrefix = Object.freeze({ pseudonym: "ps.", consent: "cs.", approved: "ca.", quarantine: "qr." });

/**
 * KeyStore-backed state. Names are derived by hashing the integration id, so any id fits the store's
 * 15-character [a-z0-9._-] names (3-character prefix + 48 bits of hash; collisions among at most a few
 * dozen integrations have negligible probability).
 */
export class Ledger {
  readonly #crypto: Crypto;
  readonly #keys: KeyStore;
  readonly #random: Random;
  readonly #pseudoKeys = new Map<string, Uint8Array>();
  /** Recent pseudonyms per integration (device ids, serials repeat on every message); cleared with the key. */
  readonly #memo = new Map<string, Map<string, string>>();
  readonly #consent = new Map<string, Record<string, ConsentRecord>>();

  constructor(crypto: Crypto, keys: KeyStore, random: Random) {
    this.#crypto = crypto;
    this.#keys = keys;
    this.#random = random;
  }

  /** The KeyStore name for `id` under `prefix`. */
  name(prefix: string, id: string): string {
    return prefix + toHex(this.#crypto.sha256(utf8Encode(id))).slice(0, 12);
  }

  /**
   * HMAC-SHA256(key, value) truncated to 16 bytes, base64url without padding (22 characters). The key
   * is created on first use. 128 bits keep collisions negligible for a home's identifiers.
   * @throws Error when the KeyStore or the random source fails (the caller denies).
   */
  pseudonym(id: string, text: string): string {
    let memo = this.#memo.get(id);
    const hit = memo?.get(text);
    if (hit !== undefined) return hit;
    const mac = this.#crypto.hmacSha256(this._pseudoKey(id), utf8Encode(text));
    const p = base64Encode(mac.subarray(0, 16), true);
    if (!memo || memo.size >= PSEUDONYM_MEMO) this.#memo.set(id, (memo = new Map()));
    memo.set(text, p);
    return p;
  }

  /** Replaces the pseudonym key; returns a fingerprint of the new key (SHA-256, 8 hex) for the audit log. */
  rotate(id: string): string {
    const key = new Uint8Array(32);
    this.#random.fill(key);
    this.#keys.set(this.name(KeyPrefix.pseudonym, id), key);
    this.#pseudoKeys.set(id, key);
    this.#memo.delete(id);
    return toHex(this.#crypto.sha256(key)).slice(0, 8);
  }

  /** Destroys the pseudonym key (the store overwrites where it can); returns whether one existed. */
  destroyKey(id: string): boolean {
    const name = this.name(KeyPrefix.pseudonym, id);
    const existed = this.#pseudoKeys.has(id) || this.#keys.get(name) !== undefined;
    this.#pseudoKeys.get(id)?.fill(0);
    this.#pseudoKeys.delete(id);
    this.#memo.delete(id);
    this.#keys.delete(name);
    return existed;
  }

  private _pseudoKey(id: string): Uint8Array {
    let key = this.#pseudoKeys.get(id) ?? this.#keys.get(this.name(KeyPrefix.pseudonym, id));
    if (!key || key.length !== 32) {
      key = new Uint8Array(32);
      this.#random.fill(key);
      this.#keys.set(this.name(KeyPrefix.pseudonym, id), key);
    }
    this.#pseudoKeys.set(id, key);
    return key;
  }

  /** The ledger of one integration (class → record), read from the KeyStore once. */
  consent(id: string): Readonly<Record<string, ConsentRecord>> {
    let rec = this.#consent.get(id);
    if (rec) return rec;
    rec = Object.create(null) as Record<string, ConsentRecord>;
    const raw = this.#keys.get(this.name(KeyPrefix.consent, id));
    const text = raw ? utf8Decode(raw) : undefined;
    if (text) {
      try {
        const parsed = JSON.parse(text) as Record<string, [ConsentState, number, string]>;
        for (const c of DataClasses) {
          const e = parsed[c];
          if (Array.isArray(e) && ConsentStates.indexOf(e[0]) >= 0) rec[c] = { state: e[0], time: Number(e[1]), who: String(e[2]) };
        }
      } catch {
        // A corrupt ledger reads as empty: every class that needs consent is then denied (fail closed).
      }
    }
    this.#consent.set(id, rec);
    return rec;
  }

  /**
   * Records a consent change durably before it takes effect.
   * @throws RangeError when the KeyStore rejects the value.
   */
  setConsent(id: string, cls: DataClass, record: ConsentRecord): void {
    const next = { ...this.consent(id), [cls]: record };
    const compact: Record<string, [ConsentState, number, string]> = {};
    for (const c of DataClasses) {
      const e = next[c];
      if (e) compact[c] = [e.state, e.time, e.who];
    }
    this.#keys.set(this.name(KeyPrefix.consent, id), utf8Encode(JSON.stringify(compact)));
    const rec = Object.create(null) as Record<string, ConsentRecord>;
    Object.assign(rec, next);
    this.#consent.set(id, rec);
  }

  /** Forgets the consent ledger of an integration (on removal). */
  clearConsent(id: string): void {
    this.#keys.delete(this.name(KeyPrefix.consent, id));
    this.#consent.delete(id);
  }

  get(prefix: string, id: string): Uint8Array | undefined {
    return this.#keys.get(this.name(prefix, id));
  }
  set(prefix: string, id: string, value: Uint8Array): void {
    this.#keys.set(this.name(prefix, id), value);
  }
  delete(prefix: string, id: string): void {
    this.#keys.delete(this.name(prefix, id));
  }
}
