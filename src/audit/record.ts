/**
 * Audit records: validation of what callers append, the canonical plaintext the hash chain covers
 * (canonical JSON, RFC 8785), and the compact binary body stored (encrypted) on flash.
 */
import { AuditKinds, type AuditDecision, type AuditEvent, type AuditKind, type AuditRecord, type DetailValue } from "./types.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { canonicalJson, wellFormed, type Json } from "./text.js";
import { utf8 } from "../util/bytes.js";
import { Reader, Writer } from "./varint.js";
import { compareRows, decodeSummary, encodeSummary } from "./summary.js";

/** Longest string field, in UTF-16 units; longer input is rejected (bad input loses nothing silently). */
export const MAX_FIELD_CHARS = 256;
export const MAX_DETAIL_ENTRIES = 32;
export const MAX_SUMMARY_ROWS = 1024;
export const BODY_VERSION = 1;

const DECISIONS: readonly AuditDecision[] = Object.freeze(["allow", "minimize", "deny", "info"]);
const STRING_FIELDS = Object.freeze(["device", "integration", "topic", "rule", "reason"] as const);

/** Sets an own data property even for the key "__proto__" (plain assignment would set the prototype instead and lose the entry). */
function setOwn(o: Record<string, DetailValue>, k: string, v: DetailValue): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function bad(message: string): PortcullisError {
  return new PortcullisError(ErrorCode.BadOption, message);
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw bad(`${what} must be a string`);
  if (v.length > MAX_FIELD_CHARS) throw new PortcullisError(ErrorCode.Limit, `${what} longer than ${MAX_FIELD_CHARS}`);
  return wellFormed(v);
}

function count(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw bad(`${what} must be a non-negative integer`);
  return v;
}

/**
 * Checks and normalises an event: closed kinds and decisions, bounded well-formed strings, finite
 * numbers (−0 becomes 0), sorted summary rows.
 * @throws PortcullisError `bad-option` or `limit`.
 */
export function normalizeEvent(e: AuditEvent): AuditEvent {
  if (!AuditKinds.includes(e.kind)) throw bad(`unknown audit kind ${String(e.kind)}`);
  if (!DECISIONS.includes(e.decision)) throw bad(`unknown decision ${String(e.decision)}`);
  const out: { -readonly [K in keyof AuditEvent]: AuditEvent[K] } = { kind: e.kind, decision: e.decision };
  for (const f of STRING_FIELDS) if (e[f] !== undefined) out[f] = str(e[f], f);
  if (e.detail !== undefined) {
    const keys = Object.keys(e.detail);
    if (keys.length > MAX_DETAIL_ENTRIES) throw new PortcullisError(ErrorCode.Limit, `more than ${MAX_DETAIL_ENTRIES} detail entries`);
    const d: Record<string, DetailValue> = {};
    for (const k of keys) {
      const v = e.detail[k];
      if (typeof v === "number") {
        if (!Number.isFinite(v)) throw bad(`detail ${k} is not finite`);
        setOwn(d, str(k, "detail key"), v === 0 ? 0 : v);
      } else if (typeof v === "string") setOwn(d, str(k, "detail key"), str(v, `detail ${k}`));
      else if (v === null || typeof v === "boolean") setOwn(d, str(k, "detail key"), v);
      else throw bad(`detail ${k} must be a scalar`);
    }
    out.detail = d;
  }
  if (e.summary !== undefined) {
    if (e.summary.length > MAX_SUMMARY_ROWS) throw new PortcullisError(ErrorCode.Limit, `more than ${MAX_SUMMARY_ROWS} summary rows`);
    const rows = e.summary.map((r) => {
      if (r.decision !== "allow" && r.decision !== "minimize") throw bad("summary decision must be allow or minimize");
      if (count(r.minute, "minute") % 60000 !== 0) throw bad("summary minute must be a whole minute");
      return {
        minute: r.minute, device: str(r.device, "device"), decision: r.decision,
        integration: r.integration === null ? null : str(r.integration, "integration"),
        rule: r.rule === null ? null : str(r.rule, "rule"),
        count: count(r.count, "count"), bytes: count(r.bytes, "bytes"), fieldsDropped: count(r.fieldsDropped, "fieldsDropped"),
      };
    });
    // Canonical order (group by device × integration × decision × rule, then minute): what the
    // compact flash encoding reproduces, so the chain covers the same bytes after a round trip.
    rows.sort(compareRows);
    for (let i = 1; i < rows.length; i++) if (compareRows(rows[i - 1]!, rows[i]!) === 0) throw bad("duplicate summary row");
    out.summary = rows;
  }
  return out;
}

/** The record as a JSON object: what the chain covers and what an export line carries. */
export function recordJson(r: AuditRecord): { [k: string]: Json } {
  const o: { [k: string]: Json } = { seq: r.seq, time: r.time, timeSet: r.timeSet, kind: r.kind, decision: r.decision };
  for (const f of STRING_FIELDS) if (r[f] !== undefined) o[f] = r[f];
  if (r.detail !== undefined) o.detail = { ...r.detail };
  if (r.summary !== undefined) o.summary = r.summary.map((x) => ({ ...x }));
  return o;
}

/** The canonical plaintext encoding the hash chain covers: UTF-8 of the record's canonical JSON. */
export function canonicalBytes(r: AuditRecord): Uint8Array {
  return utf8(canonicalJson(recordJson(r)));
}

// ---- Binary body (SPEC.md "Audit log" §4): compact, so a day of summaries fits a 1 MiB partition. ----

const TAG_NULL = 0, TAG_FALSE = 1, TAG_TRUE = 2, TAG_STRING = 3, TAG_UINT = 4, TAG_NINT = 5, TAG_F64 = 6;

/** Encodes a normalised record's body (everything but `seq`, which the ring frame carries). */
export function encodeBody(r: AuditRecord): Uint8Array {
  const w = new Writer();
  w.u8(BODY_VERSION);
  w.u8(AuditKinds.indexOf(r.kind));
  w.u8(DECISIONS.indexOf(r.decision));
  let flags = r.timeSet ? 1 : 0;
  STRING_FIELDS.forEach((f, i) => { if (r[f] !== undefined) flags |= 2 << i; });
  if (r.detail !== undefined) flags |= 0x40;
  if (r.summary !== undefined) flags |= 0x80;
  w.u8(flags);
  w.varint(r.time);
  for (const f of STRING_FIELDS) if (r[f] !== undefined) w.str(r[f]);
  if (r.detail !== undefined) {
    const keys = Object.keys(r.detail).sort();
    w.varint(keys.length);
    for (const k of keys) {
      w.str(k);
      const v = r.detail[k]!;
      if (v === null) w.u8(TAG_NULL);
      else if (typeof v === "boolean") w.u8(v ? TAG_TRUE : TAG_FALSE);
      else if (typeof v === "string") (w.u8(TAG_STRING), w.str(v));
      else if (Number.isSafeInteger(v)) (w.u8(v < 0 ? TAG_NINT : TAG_UINT), w.varint(Math.abs(v)));
      else {
        w.u8(TAG_F64);
        const f = new Uint8Array(8);
        new DataView(f.buffer).setFloat64(0, v, true);
        for (const x of f) w.u8(x);
      }
    }
  }
  if (r.summary !== undefined) encodeSummary(w, r.summary);
  return Uint8Array.from(w.bytes);
}

/**
 * Decodes a body stored with sequence number `seq`.
 * @throws RangeError on a malformed body.
 */
export function decodeBody(seq: number, b: Uint8Array): AuditRecord {
  const r = new Reader(b);
  if (r.u8() !== BODY_VERSION) throw new RangeError("unknown body version");
  const kind: AuditKind | undefined = AuditKinds[r.u8()];
  const decision = DECISIONS[r.u8()];
  if (kind === undefined || decision === undefined) throw new RangeError("bad kind or decision");
  const flags = r.u8();
  const out: { -readonly [K in keyof AuditRecord]: AuditRecord[K] } = { seq, time: r.varint(), timeSet: (flags & 1) !== 0, kind, decision };
  STRING_FIELDS.forEach((f, i) => { if (flags & (2 << i)) out[f] = r.str(); });
  if (flags & 0x40) {
    const d: Record<string, DetailValue> = {};
    for (let n = r.varint(); n > 0; n--) {
      const k = r.str();
      const tag = r.u8();
      if (tag === TAG_NULL) setOwn(d, k, null);
      else if (tag === TAG_FALSE || tag === TAG_TRUE) setOwn(d, k, tag === TAG_TRUE);
      else if (tag === TAG_STRING) setOwn(d, k, r.str());
      else if (tag === TAG_UINT || tag === TAG_NINT) setOwn(d, k, tag === TAG_NINT ? -r.varint() : r.varint());
      else if (tag === TAG_F64) {
        const f = new Uint8Array(8);
        for (let i = 0; i < 8; i++) f[i] = r.u8();
        setOwn(d, k, new DataView(f.buffer).getFloat64(0, true));
      } else throw new RangeError("bad detail tag");
    }
    out.detail = d;
  }
  if (flags & 0x80) out.summary = decodeSummary(r);
  if (r.at !== b.length) throw new RangeError("trailing bytes in body");
  return out;
}
