/**
 * Offline verification of an audit export (JSON Lines, SPEC.md "Audit log" §7) with the verification
 * key alone. Pure and portable: the CLI (tools/audit-verify.ts) and the XS test run share it.
 *
 * It fails, naming the first bad sequence number, when a line is modified, removed, reordered,
 * inserted, re-sealed, or the export ends before its last seal.
 */
import { chainNext, epochKey, evolveKey, sameBytes, sealMac, type ChainCrypto } from "./chain.js";
import { canonicalJson, type Json } from "./text.js";import { fromHex, toHex, utf8 } from "../util/bytes.js";

export const EXPORT_FORMAT = "portcullis-audit-export";
export const EXPORT_VERSION = 1;

export interface VerifyResult {
  readonly ok: boolean;
  /** One line for a human: the summary when intact, the first failure otherwise. */
  readonly message: string;
  /** The first bad sequence number, when not ok (and one can be named). */
  readonly badSeq?: number;
  readonly records: number;
  readonly seals: number;
  readonly firstSeq?: number;
  readonly lastSeq?: number;
}

type Obj = { [k: string]: Json };

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function isSeq(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}
function hex32(v: unknown): Uint8Array | undefined {
  if (typeof v !== "string" || v.length !== 64) return undefined;
  try {
    return fromHex(v);
  } catch {
    return undefined;
  }
}

/** Parses one line and insists it is exactly the canonical form of what it parses to. */
function parseCanonical(line: string): Obj | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObj(v)) return undefined;
  try {
    return canonicalJson(v) === line ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verifies an export. `lines` are the export's lines (a final empty line, from a trailing newline,
 * is ignored); `verificationKey` is k[0] as written at first boot.
 */
export function verifyExport(lines: readonly string[], verificationKey: Uint8Array, crypto: ChainCrypto): VerifyResult {
  const ls = lines.length > 0 && lines[lines.length - 1] === "" ? lines.slice(0, -1) : lines;
  let records = 0;
  let seals = 0;
  const fail = (message: string, badSeq?: number): VerifyResult => ({
    ok: false, message: badSeq === undefined ? message : `seq ${badSeq}: ${message}`, records, seals,
    ...(badSeq === undefined ? {} : { badSeq }),
  });
  if (verificationKey.length !== 32) return fail("the verification key must be 32 bytes");
  const header = ls[0] === undefined ? undefined : parseCanonical(ls[0]);
  if (!header || header.format !== EXPORT_FORMAT || header.version !== EXPORT_VERSION) return fail("line 1 is not a version-1 export header");
  const from = header.from;
  const to = header.to;
  const startEpoch = header.epoch;
  let chain = hex32(header.prevChain);
  if (!isSeq(from) || from < 1 || !isSeq(to) || to < from || !isSeq(startEpoch) || !chain) return fail("the export header is malformed", isSeq(from) ? from : undefined);
  let key: Uint8Array;
  try {
    key = epochKey(crypto, verificationKey, startEpoch);
  } catch {
    return fail(`epoch ${startEpoch} is out of range`, from);
  }
  let epoch = startEpoch;
  let epochFirst: number | undefined;
  let expected = from;
  let lastSealSeq: number | undefined;
  for (let i = 1; i < ls.length; i++) {
    const o = parseCanonical(ls[i]!);
    if (!o || !isSeq(o.seq)) return fail(`line ${i + 1} is malformed or not canonical`, expected);
    if (o.seq !== expected) return fail(o.seq > expected ? "missing (removed, or lines reordered)" : `line ${i + 1} repeats or reorders seq ${o.seq}`, expected);
    const stated = hex32(o.chain);
    if (!stated || o.epoch !== epoch) return fail(`epoch or chain field wrong (expected epoch ${epoch})`, expected);
    const { chain: _c, epoch: _e, ...record } = o;
    const next = chainNext(crypto, chain, utf8(canonicalJson(record)));
    if (!sameBytes(next, stated)) return fail("hash chain broken (record modified, inserted or reordered)", expected);
    if (o.kind === "seal") {
      const d = o.detail;
      const sealed = isObj(d) ? hex32(d.chain) : undefined;
      const mac = isObj(d) ? hex32(d.mac) : undefined;
      if (!isObj(d) || !sealed || !mac || d.epoch !== epoch || !isSeq(d.first) || d.last !== expected - 1 || !sameBytes(sealed, chain)) {
        return fail(`seal does not close epoch ${epoch} at this point (re-sealed or misplaced)`, expected);
      }
      if (epochFirst !== undefined ? d.first !== epochFirst : d.first > from) return fail(`seal's first seq ${String(d.first)} does not start epoch ${epoch}`, expected);
      if (!sameBytes(sealMac(crypto, key, epoch, d.first, expected - 1, chain), mac)) return fail(`seal MAC does not verify under the key of epoch ${epoch}`, expected);
      const k = evolveKey(crypto, key);
      key.fill(0);
      key = k;
      epoch++;
      epochFirst = expected + 1;
      seals++;
      lastSealSeq = expected;
    }
    chain = next;
    records++;
    expected++;
  }
  if (records === 0) return fail("the export holds no records", from);
  if (lastSealSeq !== expected - 1) return fail("records after the last seal: the export is truncated or unsealed", (lastSealSeq ?? from - 1) + 1);
  if (expected - 1 !== to) return fail(`the export ends before seq ${to} (truncated)`, expected);
  const summary = `intact: seq ${from}..${to}, ${records} records, ${seals} seals, epochs ${startEpoch}..${epoch - 1}, chain ${toHex(chain).slice(0, 16)}`;
  return { ok: true, message: summary, records, seals, firstSeq: from, lastSeq: to };
}
