/**
 * Offline verification of an audit export (JSON Lines, SPEC.md "Audit log" §7) with the verification
 * key alone. Pure and portable: the CLI (tools/audit-verify.ts) and the XS test run share it.
 *
 * It fails, naming the first bad sequence number where there is one, when a line is modified,
 * removed, reordered, inserted, re-sealed, when the header or trailer was edited, when the export was
 * cut (tail: no trailer; head: not explained by a sealed purge record), when it ends before a
 * checkpoint saved earlier, or when its newest seal is older than allowed. When intact it says exactly
 * what it vouches for: the seq range, the epochs, how the head and tail end, the newest seal's time.
 */
import { chainNext, checkpointMac, epochKey, evolveKey, GENESIS_CHAIN, sameBytes, sealMac, type ChainCrypto, type Checkpoint } from "./chain.js";
import { parseCheckpoint, parseTrailer, type Vouched } from "./checkpoint.js";
import { canonicalJson, type Json } from "./text.js";
import { fromHex, toHex, utf8 } from "../util/bytes.js";

export const EXPORT_FORMAT = "portcullis-audit-export";
/** Version 2: the header names `retained`, and the last line is a trailer (version 1 had neither). */
export const EXPORT_VERSION = 2;

export interface VerifyOptions {
  /** A checkpoint saved earlier (the parsed JSON of `GET /api/v1/audit/checkpoint`). */
  readonly checkpoint?: unknown;
  /** Fail when the newest seal is older than this many ms at `now`. */
  readonly freshWithinMs?: number;
  /** The verifier's time, ms since the epoch (needed with `freshWithinMs`). */
  readonly now?: number;
}

/** What an intact export proves. */
export interface Vouches {
  readonly from: number;
  readonly to: number;
  readonly firstEpoch: number;
  readonly lastEpoch: number;
  /** `genesis`: from seq 1; `purged`: records before `from` were purged (a sealed purge record says so); `omitted`: left out by request. */
  readonly head: "genesis" | "purged" | "omitted";
  /** True when `to` is the device's newest seal at export time. */
  readonly complete: boolean;
  /** The device's newest seal at export time (the trailer's checkpoint). */
  readonly newestSeal: Checkpoint;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** One line for a human: the summary when intact, the first failure otherwise. */
  readonly message: string;
  /** When intact: one line each on the head, the tail, and the checks asked for. */
  readonly details: readonly string[];
  /** The first bad sequence number, when not ok (and one can be named). */
  readonly badSeq?: number;
  readonly records: number;
  readonly seals: number;
  readonly firstSeq?: number;
  readonly lastSeq?: number;
  readonly vouches?: Vouches;
}

type Obj = { [k: string]: Json };
const HEADER_KEYS = Object.freeze(["epoch", "format", "from", "prevChain", "retained", "to", "version"]);

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
function when(cp: Checkpoint): string {
  return cp.timeSet ? new Date(cp.time).toISOString() : `${cp.time} ms (the device's clock was not set: not evidence)`;
}
function span(ms: number): string {
  return ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${Math.round(ms / 1000)} s`;
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

/** Checks a vouched state's MAC under k[epoch]; false also when the epoch is out of range. */
function macOk(crypto: ChainCrypto, k0: Uint8Array, v: Vouched, range?: { headerHash: Uint8Array; toChain: Uint8Array }): boolean {
  let key: Uint8Array;
  try {
    key = epochKey(crypto, k0, v.cp.epoch);
  } catch {
    return false;
  }
  const ok = sameBytes(checkpointMac(crypto, key, v.cp, range), v.mac);
  key.fill(0);
  return ok;
}

/**
 * Verifies an export. `lines` are the export's lines (a final empty line, from a trailing newline,
 * is ignored); `verificationKey` is k[0] as written at first boot.
 */
export function verifyExport(lines: readonly string[], verificationKey: Uint8Array, crypto: ChainCrypto, options: VerifyOptions = {}): VerifyResult {
  const ls = lines.length > 0 && lines[lines.length - 1] === "" ? lines.slice(0, -1) : lines;
  let records = 0;
  let seals = 0;
  const fail = (message: string, badSeq?: number): VerifyResult => ({
    ok: false, message: badSeq === undefined ? message : `seq ${badSeq}: ${message}`, details: [], records, seals,
    ...(badSeq === undefined ? {} : { badSeq }),
  });
  if (verificationKey.length !== 32) return fail("the verification key must be 32 bytes");
  let saved: Vouched | undefined;
  if (options.checkpoint !== undefined) {
    const c = parseCheckpoint(options.checkpoint);
    if (typeof c === "string") return fail(`the checkpoint is malformed: ${c}`);
    if (!macOk(crypto, verificationKey, c)) return fail("the checkpoint's MAC does not verify under this key: it was edited, or is from another device");
    saved = c;
  }
  if (options.freshWithinMs !== undefined && (options.now === undefined || !(options.freshWithinMs >= 0))) return fail("a freshness check needs the current time and a non-negative limit");
  const header = ls[0] === undefined ? undefined : parseCanonical(ls[0]);
  if (!header || header.format !== EXPORT_FORMAT || header.version !== EXPORT_VERSION) return fail(`line 1 is not a version-${EXPORT_VERSION} export header`);
  const { from, to, retained, epoch: startEpoch } = header;
  let chain = hex32(header.prevChain);
  if (!isSeq(from) || from < 1 || !isSeq(to) || to < from || !isSeq(retained) || retained < 1 || !isSeq(startEpoch) || !chain || Object.keys(header).some((k) => !HEADER_KEYS.includes(k))) {
    return fail("the export header is malformed", isSeq(from) ? from : undefined);
  }
  if (from < retained) return fail(`the header says the device retained from seq ${retained}, after the export's first seq`, from);
  let key: Uint8Array;
  try {
    key = epochKey(crypto, verificationKey, startEpoch);
  } catch {
    return fail(`epoch ${startEpoch} is out of range`, from);
  }
  let epoch = startEpoch;
  let epochFirst: number | undefined;
  let expected = from;
  let lastSeal: Obj | undefined;
  let purge: Obj | undefined;
  let savedChain: Uint8Array | undefined;
  let trailer: Obj | undefined;
  for (let i = 1; i < ls.length; i++) {
    const o = parseCanonical(ls[i]!);
    if (o && o.trailer !== undefined && i === ls.length - 1) {
      trailer = o;
      break;
    }
    if (!o || !isSeq(o.seq)) return fail(`line ${i + 1} is malformed or not canonical`, expected);
    if (o.seq !== expected) return fail(o.seq > expected ? "missing (removed, or lines reordered)" : `line ${i + 1} repeats or reorders seq ${o.seq}`, expected);
    const stated = hex32(o.chain);
    if (isSeq(o.epoch) && o.epoch > epoch) return fail(`in epoch ${o.epoch} where epoch ${epoch} was due: epochs are not consecutive (one dropped?)`, expected);
    if (!stated || o.epoch !== epoch) return fail(`epoch or chain field wrong (expected epoch ${epoch})`, expected);
    const { chain: _c, epoch: _e, ...record } = o;
    const next = chainNext(crypto, chain, utf8(canonicalJson(record)));
    if (!sameBytes(next, stated)) return fail("hash chain broken (record modified, inserted or reordered)", expected);
    if (o.kind === "seal") {
      const d = o.detail;
      const sealed = isObj(d) ? hex32(d.chain) : undefined;
      const mac = isObj(d) ? hex32(d.mac) : undefined;
      if (!isObj(d) || !sealed || !mac || !isSeq(d.epoch) || !isSeq(d.first) || d.last !== expected - 1 || !sameBytes(sealed, chain)) {
        return fail(`seal does not close epoch ${epoch} at this point (re-sealed or misplaced)`, expected);
      }
      if (d.epoch !== epoch) return fail(`seal closes epoch ${d.epoch} where epoch ${epoch} was due: epochs are not consecutive (one dropped?)`, expected);
      if (epochFirst !== undefined ? d.first !== epochFirst : d.first > from) return fail(`seal's first seq ${String(d.first)} does not start epoch ${epoch}`, expected);
      if (!sameBytes(sealMac(crypto, key, epoch, d.first, expected - 1, chain), mac)) return fail(`seal MAC does not verify under the key of epoch ${epoch}`, expected);
      const k = evolveKey(crypto, key);
      key.fill(0);
      key = k;
      epoch++;
      epochFirst = expected + 1;
      seals++;
      lastSeal = o;
    }
    const pd = o.detail;
    if (o.kind === "purge" && isObj(pd) && pd.through === from - 1 && pd.chain === header.prevChain) purge ??= o;
    if (saved && expected === saved.cp.seq) savedChain = next;
    chain = next;
    records++;
    expected++;
  }
  key.fill(0);
  if (records === 0) return fail("the export holds no records", from);
  const lastSealSeq = lastSeal?.seq as number | undefined;
  if (lastSealSeq !== expected - 1) return fail("records after the last seal: the export is truncated or unsealed", (lastSealSeq ?? from - 1) + 1);
  if (expected - 1 !== to) return fail(`the export ends before seq ${to} (truncated)`, expected);

  // The trailer: the device's newest seal and the header, MACed under the open epoch's key.
  if (!trailer) return fail(`no trailer after seq ${to}: the export was cut (at a seal) or is incomplete`);
  const t = parseTrailer(trailer);
  if (t === undefined || typeof t === "string") return fail(`the trailer is malformed: ${t ?? "no trailer member"}`);
  const range = { headerHash: crypto.sha256(utf8(ls[0]!)), toChain: t.toChain! };
  if (!macOk(crypto, verificationKey, t, range)) {
    return fail("the trailer's MAC does not verify: the header (from, to, epoch, prevChain, retained) or the trailer was edited, or the export is not from this device");
  }
  if (!sameBytes(t.toChain!, chain)) return fail(`the trailer's chain value for seq ${to} differs from the records': records were replaced`, to);
  const newest = t.cp;
  const complete = newest.seq === to;
  if (complete) {
    if (!sameBytes(newest.chain, chain) || newest.epoch !== epoch || newest.time !== lastSeal!.time || newest.timeSet !== lastSeal!.timeSet) {
      return fail("the trailer's newest seal does not match the export's last seal", to);
    }
  } else if (newest.seq < to || newest.epoch <= epoch) {
    return fail(`the trailer's newest seal (seq ${newest.seq}, epoch ${newest.epoch - 1}) cannot follow the export's last seal (epoch ${epoch - 1})`, to);
  }

  // The head: the log's first record, a purge the log recorded and sealed, or left out by request.
  let head: Vouches["head"];
  let headLine: string;
  if (from === 1) {
    if (!sameBytes(fromHex(header.prevChain as string), GENESIS_CHAIN)) return fail("an export from seq 1 must start from the zero chain value", 1);
    head = "genesis";
    headLine = "head: the log's first record (seq 1)";
  } else if (from === retained) {
    if (!purge) return fail(`records before seq ${from} are missing and no sealed purge record in the export explains them (head cut?)`, from);
    head = "purged";
    headLine = `head: records 1..${from - 1} were purged (purge record seq ${String(purge.seq)}, reason ${String((purge.detail as Obj).reason)}, chain value matches)`;
  } else {
    head = "omitted";
    headLine = `head: records ${retained}..${from - 1} are on the device but not in this export (exported from seq ${from})`;
  }
  const details = [
    headLine,
    complete
      ? `tail: the device's newest seal at export time (seq ${to}, closing epoch ${epoch - 1}), sealed at ${when(newest)}`
      : `tail: ends at seal seq ${to}; the device had sealed through seq ${newest.seq} (epoch ${newest.epoch - 1}) at ${when(newest)}, not in this export`,
  ];

  if (saved) {
    const c = saved.cp;
    if (c.seq > to) return fail(`the export ends at seq ${to}, before the checkpoint's seq ${c.seq} saved earlier: an older export replayed, or its tail cut`, to);
    if (c.seq < from) details.push(`checkpoint: seq ${c.seq} precedes this export (purged or left out since); only its position is checked`);
    else if (!savedChain || !sameBytes(savedChain, c.chain)) return fail("the export's chain value here differs from the checkpoint's: not the history the device vouched for", c.seq);
    else details.push(`checkpoint: seq ${c.seq} (epoch ${c.epoch}) matches the export's chain`);
  }
  if (options.freshWithinMs !== undefined) {
    if (!newest.timeSet) return fail("the newest seal's time is not evidence (the device's clock was not set), so freshness cannot be shown");
    const age = options.now! - newest.time;
    if (age > options.freshWithinMs) {
      return fail(`the newest seal (seq ${newest.seq}, ${when(newest)}) is ${span(age)} old, more than the ${span(options.freshWithinMs)} allowed: the device stopped sealing, or this export is old`);
    }
    details.push(`fresh: the newest seal is ${span(Math.max(age, 0))} old (allowed ${span(options.freshWithinMs)})`);
  }
  const summary = `intact: seq ${from}..${to}, ${records} records, ${seals} seals, epochs ${startEpoch}..${epoch - 1}, chain ${toHex(chain).slice(0, 16)}`;
  return {
    ok: true, message: summary, details, records, seals, firstSeq: from, lastSeq: to,
    vouches: { from, to, firstEpoch: startEpoch, lastEpoch: epoch - 1, head, complete, newestSeal: newest },
  };
}
