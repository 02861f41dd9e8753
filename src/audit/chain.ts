/**
 * Hash chain and forward-secure seals (SPEC.md "Audit log" §5), shared by the log and the verifier.
 *
 * chain[s] = SHA-256(chain[s−1] ‖ canonical(record s)), chain[0] = 32 zero bytes.
 * A seal closes epoch e with MAC = HMAC-SHA256(k[e], "PCAS" ‖ 0x01 ‖ be32 e ‖ be32 first ‖ be32 last ‖
 * chain[last]); then k[e+1] = SHA-256(k[e]) and k[e] is destroyed (after Bellare–Yee forward-secure
 * MACs, as journald's FSS does with its evolving key). Binding the epoch number and the seq range
 * into the MAC, and requiring consecutive epochs in a verified export, stops an old range from being
 * re-sealed under a newer key (the journald FSS weakness fixed in 2023).
 *
 * A checkpoint (and an export's trailer, which is a checkpoint bound to the export's range) is MACed
 * under k[n] of the open epoch n, right after the seal that closed epoch n−1: the device vouches only
 * for its newest sealed state, and whoever steals k[m] later (m > n) cannot vouch for an older one.
 */
import type { Crypto } from "../ports.js";

export const CHAIN_SIZE = 32;
export const GENESIS_CHAIN: Uint8Array = new Uint8Array(CHAIN_SIZE);
/** Epoch numbers a verifier will evolve a key through before giving up (≈ 285 years of 15-min epochs). */
export const MAX_EPOCH = 10_000_000;

/** The crypto a verifier needs: hashes only, so an offline tool can bring its own. */
export type ChainCrypto = Pick<Crypto, "sha256" | "hmacSha256">;

export function chainNext(crypto: ChainCrypto, prev: Uint8Array, canonical: Uint8Array): Uint8Array {
  const input = new Uint8Array(prev.length + canonical.length);
  input.set(prev);
  input.set(canonical, prev.length);
  return crypto.sha256(input);
}

function be32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** The seal MAC for epoch `epoch` covering records `first..last` whose chain ends at `chain`. */
export function sealMac(crypto: ChainCrypto, key: Uint8Array, epoch: number, first: number, last: number, chain: Uint8Array): Uint8Array {
  const m = new Uint8Array(5 + 12 + CHAIN_SIZE);
  m.set([0x50, 0x43, 0x41, 0x53, 0x01]);
  be32(m, 5, epoch);
  be32(m, 9, first);
  be32(m, 13, last);
  m.set(chain, 17);
  return crypto.hmacSha256(key, m);
}

/**
 * A sealed state the device vouches for: its newest seal (seq, the seal record's own chain value,
 * time, clock state) and the open epoch `epoch` whose key MACs it (SPEC.md "Audit log" §5).
 */
export interface Checkpoint {
  readonly seq: number;
  readonly chain: Uint8Array;
  readonly time: number;
  readonly timeSet: boolean;
  readonly epoch: number;
}

/** What an export's trailer adds to its checkpoint: SHA-256 of the header line and chain[to]. */
export interface ExportRange {
  readonly headerHash: Uint8Array;
  readonly toChain: Uint8Array;
}

/**
 * The MAC of a checkpoint, or of an export trailer when `range` is given:
 * HMAC-SHA256(k[epoch], "PCAK" ‖ type ‖ be32 epoch ‖ be32 seq ‖ be32 time÷2³² ‖ be32 time mod 2³² ‖
 * u8 timeSet ‖ chain [‖ SHA-256(header line) ‖ chain[to]]), type 0x01 checkpoint, 0x02 trailer.
 * @throws RangeError on a seq, epoch or time that is not a non-negative safe integer in range.
 */
export function checkpointMac(crypto: ChainCrypto, key: Uint8Array, cp: Checkpoint, range?: ExportRange): Uint8Array {
  for (const v of [cp.seq, cp.epoch]) if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`checkpoint field ${v} out of range`);
  if (!Number.isSafeInteger(cp.time) || cp.time < 0) throw new RangeError(`checkpoint time ${cp.time} out of range`);
  if (cp.chain.length !== CHAIN_SIZE || (range && (range.headerHash.length !== CHAIN_SIZE || range.toChain.length !== CHAIN_SIZE))) {
    throw new RangeError("checkpoint digests must be 32 bytes");
  }
  const m = new Uint8Array(22 + CHAIN_SIZE + (range ? 2 * CHAIN_SIZE : 0));
  m.set([0x50, 0x43, 0x41, 0x4b, range ? 0x02 : 0x01]);
  be32(m, 5, cp.epoch);
  be32(m, 9, cp.seq);
  be32(m, 13, Math.floor(cp.time / 0x100000000));
  be32(m, 17, cp.time % 0x100000000);
  m[21] = cp.timeSet ? 1 : 0;
  m.set(cp.chain, 22);
  if (range) {
    m.set(range.headerHash, 22 + CHAIN_SIZE);
    m.set(range.toChain, 22 + 2 * CHAIN_SIZE);
  }
  return crypto.hmacSha256(key, m);
}

/** k[e+1] from k[e]. The caller wipes k[e]. */
export function evolveKey(crypto: ChainCrypto, key: Uint8Array): Uint8Array {
  return crypto.sha256(key);
}

/**
 * k[epoch] from the verification key k[0].
 * @throws RangeError when `epoch` is beyond {@link MAX_EPOCH}.
 */
export function epochKey(crypto: ChainCrypto, k0: Uint8Array, epoch: number): Uint8Array {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) throw new RangeError(`epoch ${epoch} out of range`);
  let k: Uint8Array = k0.slice();
  for (let i = 0; i < epoch; i++) k = evolveKey(crypto, k);
  return k;
}

/** Constant-time comparison of two byte strings (for MACs). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
