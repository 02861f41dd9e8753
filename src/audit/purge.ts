/**
 * Which sectors the audit log may give up (issue 13, "Noise cannot displace evidence"). A sector is a
 * whole-purge unit, so it may go only when every record in it may go:
 *
 * - seals, purge and corruption records follow their neighbours (they describe the others);
 * - noise (prefix flag {@link FLAG_NOISE}) may go whenever space is needed, and expires after the
 *   noise retention;
 * - a kind with a configured retention is kept until that retention has passed: a full log refuses
 *   records (the gateway fails closed) rather than purge it sooner;
 * - a kind without a configured retention may go when space is needed, and never expires by time;
 * - a record that fails its checks (a hole, already reported as corruption) does not hold a sector.
 */
import type { FlashRing, RingSpan } from "../flash/ring.js";
import type { AuditKind, AuditRecord } from "./types.js";
import { FLAG_NOISE, readPrefix } from "./store.js";

/** Decrypts and decodes a stored payload, or undefined when it fails authentication or decoding. */
export type Decode = (seq: number, data: Uint8Array) => AuditRecord | undefined;

const STRUCTURAL: readonly AuditKind[] = Object.freeze(["seal", "purge", "corruption"]);

export interface PurgeRules {
  readonly retention: Partial<Record<AuditKind, number>>;
  readonly noiseRetentionMs: number;
}

/**
 * The first record of `span` that must not be purged to make space at `now`, or undefined when the
 * whole sector may go.
 */
export function blocker(ring: FlashRing, decode: Decode, span: RingSpan, rules: PurgeRules, now: number): AuditRecord | undefined {
  for (const e of ring.entries(span.firstSeq, span.lastSeq)) {
    if (e.type !== "record" || ((readPrefix(e.data)?.flags ?? 0) & FLAG_NOISE) !== 0) continue;
    const r = decode(e.seq, e.data);
    if (!r || STRUCTURAL.includes(r.kind)) continue;
    const keep = rules.retention[r.kind];
    if (keep !== undefined && r.time + keep > now) return r;
  }
  return undefined;
}

/**
 * The oldest sectors (never the head) whose records have all outlived their retention at `now`, as the
 * last seq of each, oldest first. Kinds without a retention never expire by time; noise expires after
 * the noise retention.
 */
export function expiredSpans(ring: FlashRing, decode: Decode, rules: PurgeRules, now: number): number[] {
  const out: number[] = [];
  for (const span of ring.spans().slice(0, -1)) {
    for (const e of ring.entries(span.firstSeq, span.lastSeq)) {
      if (e.type !== "record") continue;
      const noise = ((readPrefix(e.data)?.flags ?? 0) & FLAG_NOISE) !== 0;
      const r = decode(e.seq, e.data);
      if (!r || STRUCTURAL.includes(r.kind)) continue;
      const keep = noise ? rules.noiseRetentionMs : (rules.retention[r.kind] ?? Infinity);
      if (r.time + keep > now) return out;
    }
    out.push(span.lastSeq);
  }
  return out;
}

/**
 * The history the partition holds at the rate seen so far, in ms, or undefined while the log is too
 * young to tell (less than an hour or 5 % of the partition). Used to warn at boot when a configured
 * retention cannot fit: the log would fail closed when it fills.
 */
export function projectedHistoryMs(oldestTime: number, now: number, bytesUsed: number, bytesTotal: number): number | undefined {
  const span = now - oldestTime;
  if (!(span >= 3600_000) || !(bytesUsed >= bytesTotal * 0.05)) return undefined;
  return (span * bytesTotal) / bytesUsed;
}
