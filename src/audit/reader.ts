/**
 * The read side of the audit log, over a mounted ring and a record decoder: query, export lines,
 * chain lookups, the newest seal's state, the integrity pass and the retention scan. Holes (records failing CRC or
 * authentication) are handed back to the caller, which records them.
 */
import type { FlashRing, RingEntry } from "../flash/ring.js";
import type { AuditQuery, AuditRecord } from "./types.js";
import { GENESIS_CHAIN, type Checkpoint } from "./chain.js";
import { recordJson } from "./record.js";
import { FLAG_SEAL, readPrefix } from "./store.js";
import { canonicalJson } from "./text.js";
import { fromHex, toHex } from "../util/bytes.js";
import { EXPORT_FORMAT, EXPORT_VERSION } from "./verify.js";

/** Decrypts and decodes a stored payload, or undefined when it fails authentication or decoding. */
export type Decode = (seq: number, data: Uint8Array) => AuditRecord | undefined;


export function matches(r: AuditRecord, q: AuditQuery): boolean {
  if (q.fromTime !== undefined && r.time < q.fromTime) return false;
  if (q.toTime !== undefined && r.time > q.toTime) return false;
  if (q.kind !== undefined && r.kind !== q.kind) return false;
  if (q.device !== undefined && r.device !== q.device && !r.summary?.some((x) => x.device === q.device)) return false;
  if (q.integration !== undefined && r.integration !== q.integration && !r.summary?.some((x) => x.integration === q.integration)) return false;
  return true;
}

/** Up to `limit` records matching `q`, in sequence order; holes met on the way go to `holes`. */
export function queryRing(ring: FlashRing, decode: Decode, q: AuditQuery, limit: number, holes: RingEntry[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const e of ring.entries(Math.max(q.since ?? 1, ring.firstSeq), q.until ?? Infinity)) {
    if (out.length >= limit) break;
    const r = e.type === "record" ? decode(e.seq, e.data) : undefined;
    if (!r) holes.push(e);
    else if (matches(r, q)) out.push(r);
  }
  return out;
}

/** Every hole in the ring (a full pass: CRC, authentication, decoding). */
export function findHoles(ring: FlashRing, decode: Decode): RingEntry[] {
  const holes: RingEntry[] = [];
  for (const e of ring.entries(ring.firstSeq)) if (e.type === "gap" || !decode(e.seq, e.data)) holes.push(e);
  return holes;
}

/** chain[seq − 1]: from the record before, or from the purge record that gave it up. */
export function chainBefore(ring: FlashRing, decode: Decode, seq: number): Uint8Array {
  if (seq <= 1) return GENESIS_CHAIN;
  const prev = ring.read(seq - 1);
  const p = prev ? readPrefix(prev) : undefined;
  if (p) return p.chain;
  for (const e of ring.entries(seq)) {
    const r = e.type === "record" ? decode(e.seq, e.data) : undefined;
    if (r?.kind === "purge" && r.detail?.through === seq - 1 && typeof r.detail.chain === "string") return fromHex(r.detail.chain);
  }
  return GENESIS_CHAIN;
}

/** The first seal at or after `to` (the export ends there), or `sealSeq` when `to` is not before it. */
export function exportEnd(ring: FlashRing, to: number | undefined, sealSeq: number): number {
  if (to === undefined || to >= sealSeq) return sealSeq;
  for (const e of ring.entries(to, sealSeq)) {
    const p = e.type === "record" ? readPrefix(e.data) : undefined;
    if (e.type === "record" && p && (p.flags & FLAG_SEAL) !== 0) return e.seq;
  }
  return sealSeq;
}

/**
 * The export's header for `first..last` (SPEC.md "Audit log" §7): the range, the epoch of `first`,
 * chain[first − 1], and the first seq the device still retains (so a verifier can tell a purged head
 * from one left out by request).
 */
export function exportHeader(ring: FlashRing, decode: Decode, first: number, last: number): string {
  const firstPrefix = readPrefix(ring.read(first) ?? new Uint8Array(0));
  const prevChain = toHex(chainBefore(ring, decode, first));
  return canonicalJson({
    format: EXPORT_FORMAT, version: EXPORT_VERSION, from: first, to: last, epoch: firstPrefix?.epoch ?? 0, prevChain, retained: ring.firstSeq,
  });
}

/** The export's record lines for `first..last`; holes go to `holes`. */
export function* exportRecords(ring: FlashRing, decode: Decode, first: number, last: number, holes: RingEntry[]): Generator<string> {
  for (const e of ring.entries(first, last)) {
    const r = e.type === "record" ? decode(e.seq, e.data) : undefined;
    const p = e.type === "record" ? readPrefix(e.data) : undefined;
    if (!r || !p) holes.push(e);
    else yield canonicalJson({ ...recordJson(r), chain: toHex(p.chain), epoch: p.epoch });
  }
}

/** The chain value stored with record `seq`, or undefined when it cannot be read. */
export function chainAt(ring: FlashRing, seq: number): Uint8Array | undefined {
  const data = ring.read(seq);
  return data ? readPrefix(data)?.chain : undefined;
}

/**
 * The checkpoint fields of the seal at `sealSeq` (seq, its own chain value, time, clock state), or
 * undefined when it cannot be read or is not a seal.
 */
export function sealState(ring: FlashRing, decode: Decode, sealSeq: number): Omit<Checkpoint, "epoch"> | undefined {
  const data = ring.read(sealSeq);
  const p = data ? readPrefix(data) : undefined;
  const r = data ? decode(sealSeq, data) : undefined;
  if (!p || !r || r.kind !== "seal" || (p.flags & FLAG_SEAL) === 0) return undefined;
  return { seq: sealSeq, chain: p.chain, time: r.time, timeSet: r.timeSet };
}
