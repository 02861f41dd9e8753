/**
 * The tamper-evident audit log on NOR flash: a hash-chained, forward-securely sealed, encrypted record
 * stream on a {@link FlashRing}, with retention, legal hold, flow aggregation, query and export.
 * Formats: SPEC.md "Audit log"; trade-offs: DESIGN.md "Audit log".
 */
import type { Clock, Crypto, Flash, KeyStore, Random, TimerId, Timers } from "../ports.js";
import type { AuditEvent, AuditKind, AuditLog, AuditQuery, AuditRecord } from "./types.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { FlashRing, type RingEntry } from "../flash/ring.js";
import { canonicalBytes, decodeBody, encodeBody, normalizeEvent } from "./record.js";
import { chainNext, checkpointMac, evolveKey, GENESIS_CHAIN, sealMac, type Checkpoint, type ExportRange } from "./chain.js";
import { fromUtf8, toHex, utf8 } from "../util/bytes.js";
import {
  FLAG_NOISE, FLAG_SEAL, KEY_CLEAN, KEY_HOLD, loadSealState, nextBoot, openPayload, PREFIX_SIZE, readPrefix, sealPayload,
  storageKey, storeSealState, TAG_SIZE, type SealState,
} from "./store.js";
import { FlowAggregator, type FlowSample } from "./aggregate.js";
import { chainAt, chainBefore, exportEnd, exportHeader, exportRecords, findHoles, queryRing, sealState } from "./reader.js";
import { checkpointJson, trailerLine, type CheckpointJson } from "./checkpoint.js";
import { blocker, expiredSpans, type PurgeRules } from "./purge.js";
import { NoiseAggregator } from "./noise.js";
import { meter } from "../util/meter.js";
import { NumberRows } from "../util/number-rows.js";

/** The ring tag of the audit region ("A1"); the outbound queue uses another. */
export const AUDIT_RING_TAG = 0xa1;
export const DEFAULT_SEAL_EVERY_RECORDS = 256;
export const DEFAULT_SEAL_EVERY_MS = 15 * 60_000;
export const DEFAULT_RETENTION_CHECK_MS = 60 * 60_000;
/** How often the whole log is re-read for holes (mount checks only the head sector). */
export const DEFAULT_SCRUB_EVERY_MS = 24 * 60 * 60_000;
/** Records one query returns at most. */
export const MAX_QUERY_RECORDS = 1000;
export const SUMMARY_ROWS_PER_RECORD = 256;
/** Share of the partition's bytes that noise records may hold at most (see `noise.ts`). */
export const NOISE_SHARE_PERCENT = 10;
/** How long noise records are kept when space is not needed sooner. */
export const DEFAULT_NOISE_RETENTION_MS = 7 * 24 * 3600_000;
/**
 * Free sectors each class of record must leave: ordinary records stop at 2 (then the oldest sector is
 * purged, or under legal hold they are refused); seals and incident records may use one more; the
 * seal-and-purge-record pair that frees space may take the last, so a purge always gets through.
 */
const KEEP_NORMAL = 2;
const KEEP_PRIORITY = 1;
const KEEP_PURGE = 0;
/** Upper bound of a seal record's payload (prefix, body with two hex digests, GCM tag). */
const SEAL_PAYLOAD_MAX = 320;

export interface AuditLogOptions {
  /** Partition byte offset and size inside `flash` (default: all of it). */
  readonly offset?: number;
  readonly size?: number;
  /** Group-commit window (0: every append is programmed at once). */
  readonly groupCommitMs?: number;
  readonly sealEveryRecords?: number;
  readonly sealEveryMs?: number;
  /** Milliseconds to keep each kind; kinds not listed are kept until space is needed. */
  readonly retention?: Partial<Record<AuditKind, number>>;
  readonly retentionCheckMs?: number;
  /** How often `scrub()` runs on its own (default daily). */
  readonly scrubEveryMs?: number;
  /** How often aggregated flow summaries are written (default 5 min). */
  readonly summaryEveryMs?: number;
  /** Longest wait before a flow commit record covers an allowed flow (default 2 s; `aggregate.ts`). */
  readonly flowCommitMs?: number;
  /** Percent of the partition noise may occupy (default {@link NOISE_SHARE_PERCENT}). */
  readonly noiseSharePercent?: number;
  readonly noiseRetentionMs?: number;
  /** Receives k[0] once, at first boot; the device keeps no copy once epoch 0 is sealed. */
  readonly onVerificationKey?: (key: Uint8Array) => void;
  /** Console alarms (full under legal hold, flash failure, key state lost). */
  readonly onAlarm?: (text: string) => void;
}

export interface FlashAuditLogInit {
  readonly flash: Flash;
  readonly crypto: Crypto;
  readonly random: Random;
  readonly keys: KeyStore;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly options?: AuditLogOptions;
}

function fail(code: ErrorCode, message: string): PortcullisError {
  return new PortcullisError(code, message);
}

export class FlashAuditLog implements AuditLog {
  readonly #ring: FlashRing;
  readonly #i: FlashAuditLogInit;
  readonly #o: AuditLogOptions;
  readonly #boot: number;
  readonly #storeKey: Uint8Array;
  readonly #aggregator: FlowAggregator;
  readonly #noise: NoiseAggregator;
  readonly #rules: PurgeRules;
  /**
   * Noise records still in the log, oldest first, as [seq, payload bytes] rows (no object per record
   * under a flood); counted at the first noise write.
   */
  #noiseRecords: NumberRows | undefined;
  /** The bytes of the rows in #noiseRecords. */
  #noiseSum = 0;
  #noiseFull = false;
  /** The oldest sector's first seq while it holds a record kept until `until` (see _ensureSpace). */
  #blocked: { firstSeq: number; until: number; record: AuditRecord } | undefined;
  /** The last durable seq at mount when the previous run did not close cleanly. */
  readonly uncleanStop: number | undefined;
  readonly #reported = new Set<string>();
  readonly #decoder = (seq: number, data: Uint8Array): AuditRecord | undefined => this._decode(seq, data);
  readonly #retentionTimer: TimerId;
  readonly #scrubTimer: TimerId;
  #seal: SealState;
  #chain: Uint8Array;
  #held: string | undefined;
  #sealTimer: TimerId | undefined;
  #failed: unknown;
  #alarmedFull = false;
  #closed = false;

  /**
   * Mounts the log (first boot: creates the keys, hands out the verification key, seals epoch 0).
   * @throws PortcullisError `corrupt` when the key store's sealing state does not match the log (fail
   * closed: the gateway must not run without its audit log), or a flash error.
   */
  static async open(init: FlashAuditLogInit): Promise<FlashAuditLog> {
    return new FlashAuditLog(init);
  }

  private constructor(init: FlashAuditLogInit) {
    const o = init.options ?? {};
    this.#i = init;
    this.#o = o;
    if ((o.sealEveryRecords ?? 1) < 1 || (o.sealEveryMs ?? 1) <= 0) throw new RangeError("seal intervals must be positive");
    const share = o.noiseSharePercent ?? NOISE_SHARE_PERCENT;
    if (!(share >= 0 && share <= 50)) throw new RangeError("noiseSharePercent must be 0..50");
    this.#rules = { retention: o.retention ?? {}, noiseRetentionMs: o.noiseRetentionMs ?? DEFAULT_NOISE_RETENTION_MS };
    this.#ring = FlashRing.mount({
      flash: init.flash, tag: AUDIT_RING_TAG, timers: init.timers, groupCommitMs: o.groupCommitMs ?? 0, reserveSectors: KEEP_NORMAL,
      ...(o.offset === undefined ? {} : { offset: o.offset }), ...(o.size === undefined ? {} : { size: o.size }),
    });
    let aggregator: FlowAggregator | undefined;
    let noise: NoiseAggregator | undefined;
    let retention: TimerId | undefined;
    let scrub: TimerId | undefined;
    try {
      this.#boot = nextBoot(init.keys);
      this.#storeKey = storageKey(init.keys, init.random);
      const hold = init.keys.get(KEY_HOLD);
      this.#held = hold ? fromUtf8(hold) : undefined;
      const last = this.#ring.last();
      // Cleared before anything is written: a crash from now on is an unclean stop of this run.
      const clean = init.keys.get(KEY_CLEAN) !== undefined;
      if (clean) init.keys.delete(KEY_CLEAN);
      this.uncleanStop = last && !clean ? last.seq : undefined;
      const state = loadSealState(init.keys);
      if (!last) {
        this.#chain = GENESIS_CHAIN;
        const resume = state && state.epoch === 0;
        this.#seal = resume ? { ...state, first: this.#ring.nextSeq } : this._newVerificationKey(state !== undefined);
      } else {
        const p = readPrefix(last.data);
        if (!p) throw fail(ErrorCode.Corrupt, `audit record ${last.seq} is not a version-1 audit payload`);
        if (!state) throw this._alarm(fail(ErrorCode.Corrupt, "audit log holds records but the key store has no sealing state"));
        const isSeal = (p.flags & FLAG_SEAL) !== 0;
        if (isSeal && state.epoch === p.epoch) {
          // The power failed between writing a seal and evolving the key: finish the evolution now.
          const key = evolveKey(init.crypto, state.key);
          state.key.fill(0);
          Object.assign(state, { epoch: p.epoch + 1, first: last.seq + 1, key });
          storeSealState(init.keys, state);
        } else if (state.epoch !== (isSeal ? p.epoch + 1 : p.epoch)) {
          throw this._alarm(fail(ErrorCode.Corrupt, `audit sealing key is at epoch ${state.epoch} but the log is at epoch ${p.epoch}`));
        }
        this.#seal = state;
        this.#chain = p.chain;
        // The power failed between a purge record and its trim: finish the trim it announced.
        const r = this._decode(last.seq, last.data);
        const through = r?.kind === "purge" ? r.detail?.through : undefined;
        if (typeof through === "number" && through >= this.#ring.firstSeq && this.#held === undefined) this.#ring.trimThrough(through);
      }
      this.#aggregator = aggregator = new FlowAggregator({
        clock: init.clock, timers: init.timers, rowsPerRecord: SUMMARY_ROWS_PER_RECORD,
        ...(o.summaryEveryMs === undefined ? {} : { summaryEveryMs: o.summaryEveryMs }),
        ...(o.flowCommitMs === undefined ? {} : { flowCommitMs: o.flowCommitMs }),
        commitNow: () => this.#ring.commit(),
        // On a flash with durable() (the Node board) a flow waits for the flush, not a window (issue #14).
        commitPerFlush: init.flash.durable !== undefined,
        emit: (ev) => this._emitSplit(ev),
        // A refusal (full, held) is already alarmed and fails the gateway closed; only flash faults fail the log.
        onError: (e) => {
          if (!(e instanceof PortcullisError && e.code === ErrorCode.Limit)) this._markFailed(e);
        },
      });
      this.#noise = noise = new NoiseAggregator({ clock: init.clock, timers: init.timers, emit: (ev) => this._emitNoise(ev) });
      this.#retentionTimer = retention = init.timers.every(o.retentionCheckMs ?? DEFAULT_RETENTION_CHECK_MS, () => this._safely(() => this.applyRetention()));
      this.#scrubTimer = scrub = init.timers.every(o.scrubEveryMs ?? DEFAULT_SCRUB_EVERY_MS, () => this._safely(() => void this.scrub()));
      const spans = this.#ring.spans();
      const head = spans[spans.length - 1];
      if (head) this._reportGaps(this.#ring.entries(head.firstSeq));
      if (!last) this._doSeal();
      else this._armSealTimer();
      if (this.uncleanStop !== undefined) {
        const detail = { lastDurableSeq: this.uncleanStop };
        this.#o.onAlarm?.(`audit: the previous run did not stop cleanly; the last durable record was seq ${this.uncleanStop}`);
        this._safely(() => void this._write(normalizeEvent({ kind: "boot", decision: "info", reason: "unclean-stop", detail }), KEEP_PRIORITY));
      }
    } catch (e) {
      // A failed open leaves no timer behind (the board may retry or halt).
      this.#closed = true;
      aggregator?.close();
      noise?.close();
      if (retention !== undefined) init.timers.cancel(retention);
      if (scrub !== undefined) init.timers.cancel(scrub);
      if (this.#sealTimer !== undefined) init.timers.cancel(this.#sealTimer);
      this.#ring.close();
      throw e;
    }
  }

  get nextSeq(): number {
    return this.#ring.nextSeq;
  }
  /** The legal-hold reason, when the log is held. */
  get held(): string | undefined {
    return this.#held;
  }
  /** The current sealing epoch. */
  get epoch(): number {
    return this.#seal.epoch;
  }

  append(event: AuditEvent): Promise<number> {
    try {
      return this._write(normalizeEvent(event), KEEP_NORMAL).done;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Records one flow decision through the aggregator (see `aggregate.ts`): denials individually,
   * allowed flows as per-minute summaries. Rejects when the log cannot accept records.
   */
  aggregate(sample: FlowSample): Promise<number | undefined> {
    try {
      this._usable();
      return this.#aggregator.add(sample);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Counts one publish routed between local clients in the per-minute summaries (`aggregate.ts`). Never throws. */
  countLocal(device: string, topic: string, bytes: number): void {
    if (!this.#closed && this.#failed === undefined) this.#aggregator.countLocal(device, topic, bytes);
  }

  /**
   * Counts one event from an unauthenticated source (see `noise.ts`): written as one record per source
   * × kind × reason × minute, within the noise share. Never rejects; ignored after `close()`.
   */
  noise(event: AuditEvent): void {
    if (!this.#closed && this.#failed === undefined) this.#noise.add(event);
  }

  /**
   * Writes the aggregator's pending rows now, the current minute's too (a minute may then span two
   * summary records), so a reader pulling the log sees every decision made so far. Resolves once
   * they are durable.
   */
  flushSummaries(): Promise<void> {
    if (this.#closed || this.#failed !== undefined) return Promise.resolve();
    this.#noise.flush(true);
    return Promise.all([this.#aggregator.commit(), this.#aggregator.flush(true)]).then(() => undefined);
  }

  /**
   * Seals the current epoch now (also when empty) and evolves the key. Returns the seal's seq.
   * @throws PortcullisError when the log cannot write.
   */
  seal(): number {
    this._usable();
    return this._doSeal();
  }

  /**
   * Places a legal hold: from now on nothing is purged, and a full partition makes appends reject.
   * The hold survives reboots. Resolves with the seq of the incident record.
   */
  hold(reason: string): Promise<number> {
    try {
      this._usable();
      this.#i.keys.set(KEY_HOLD, utf8(reason));
      this.#held = reason;
      return this._write(normalizeEvent({ kind: "incident", decision: "info", reason: "legal-hold", detail: { hold: reason } }), KEEP_PRIORITY).done;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Lifts the legal hold. Resolves with the seq of the incident record. */
  release(): Promise<number> {
    try {
      this._usable();
      this.#i.keys.delete(KEY_HOLD);
      this.#held = undefined;
      this.#alarmedFull = false;
      return this._write(normalizeEvent({ kind: "incident", decision: "info", reason: "legal-hold-released" }), KEEP_PRIORITY).done;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Records matching `q`, in sequence order (at most {@link MAX_QUERY_RECORDS}). Works after a flash
   * failure (reading what is there); holes found on the way get `corruption` records.
   * @throws PortcullisError `bad-option` after `close()`.
   */
  query(q: AuditQuery): AuditRecord[] {
    if (this.#closed) throw fail(ErrorCode.BadOption, "audit log is closed");
    const holes: RingEntry[] = [];
    const out = queryRing(this.#ring, this.#decoder, q, Math.min(q.limit ?? MAX_QUERY_RECORDS, MAX_QUERY_RECORDS), holes);
    this._reportGaps(holes);
    return out;
  }

  /**
   * Seals, then returns a self-verifying export of `from..to` (default: everything retained) as JSON
   * Lines: a header, then each record with its chain value and epoch, ending at a seal at or after
   * `to`; then a trailer vouching for the header and the newest seal under the open epoch's key.
   * See SPEC.md "Audit log" §7.
   * @throws PortcullisError `bad-option` on an empty range, or when the log cannot seal.
   */
  exportJsonl(from?: number, to?: number): string[] {
    return [...this.exportLines(from, to)];
  }

  /** {@link exportJsonl} as a generator, for streaming a large export without holding it all. */
  *exportLines(from?: number, to?: number): Generator<string> {
    // Seal first: making room for the seal may purge, which moves the first retained seq.
    const sealSeq = this._sealForExport();
    const first = Math.max(from ?? 1, this.#ring.firstSeq);
    const last = exportEnd(this.#ring, to, sealSeq);
    if (first > last) throw fail(ErrorCode.BadOption, `empty export range ${first}..${last}`);
    const header = exportHeader(this.#ring, this.#decoder, first, last);
    const toChain = chainAt(this.#ring, last);
    if (!toChain) throw fail(ErrorCode.Corrupt, `audit record ${last} (the export's last seal) cannot be read`);
    // The trailer is made now, under the key that is current now (a seal may follow while streaming).
    const trailer = this._vouch(sealSeq, { headerHash: this.#i.crypto.sha256(utf8(header)), toChain });
    const holes: RingEntry[] = [];
    yield header;
    yield* exportRecords(this.#ring, this.#decoder, first, last, holes);
    yield trailerLine(trailer.cp, toChain, trailer.mac);
    this._reportGaps(holes);
  }

  /**
   * The newest sealed state (sealing first when the open epoch holds records), MACed under the open
   * epoch's key: an auditor saves it and later rejects exports that end before it. Only the log's own
   * state is ever MACed. See SPEC.md "Audit log" §5.
   * @throws PortcullisError when the log is closed, failed, or its newest seal cannot be read.
   */
  checkpoint(): CheckpointJson {
    const { cp, mac } = this._vouch(this._sealForExport());
    return checkpointJson(cp, mac);
  }

  /**
   * Purges whole sectors, oldest first, whose records have all outlived their kind's retention.
   * Does nothing under legal hold. Returns the seq purged through, or undefined.
   */
  applyRetention(): number | undefined {
    this._usable();
    if (this.#held !== undefined) return undefined;
    let through: number | undefined;
    for (const lastSeq of expiredSpans(this.#ring, this.#decoder, this.#rules, this.#i.clock.now())) {
      // One sector per purge record: a power cut can then never leave a half-done multi-sector trim.
      this._purge(lastSeq, "retention");
      through = lastSeq;
    }
    return through;
  }

  /**
   * Reads every stored record and checks it (CRC, authentication, decoding); each newly found hole
   * gets a `corruption` record and an alarm. Returns the number of holes. Mount checks only the head
   * sector; this runs every `scrubEveryMs` (daily by default) and on demand.
   */
  scrub(): number {
    this._usable();
    const holes = findHoles(this.#ring, this.#decoder);
    this._reportGaps(holes);
    return holes.length;
  }

  stats(): { records: number; bytesUsed: number; bytesTotal: number; firstSeq: number; nextSeq: number; epoch: number; held: boolean; freeSectors: number } {
    return {
      records: this.#ring.nextSeq - this.#ring.firstSeq,
      bytesUsed: this.#ring.bytesUsed,
      bytesTotal: this.#ring.sectors * this.#ring.sectorSize,
      firstSeq: this.#ring.firstSeq,
      nextSeq: this.#ring.nextSeq,
      epoch: this.#seal.epoch,
      held: this.#held !== undefined,
      freeSectors: this.#ring.freeSectors,
    };
  }

  /** Writes pending summaries, seals, and closes. Harmless twice; nothing may be appended after it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#failed === undefined) {
        this.#aggregator.close();
        this.#noise.close();
        this._doSeal();
      }
    } catch (e) {
      // Full under legal hold: the alarm is already raised and the records stay as they are.
      if (!(e instanceof PortcullisError && e.code === ErrorCode.Limit)) throw e;
    } finally {
      this.#closed = true;
      this.#aggregator.close();
      this.#noise.close();
      this.#i.timers.cancel(this.#retentionTimer);
      this.#i.timers.cancel(this.#scrubTimer);
      if (this.#sealTimer !== undefined) this.#i.timers.cancel(this.#sealTimer);
      if (this.#failed === undefined) {
        this.#ring.close();
        // Everything acknowledged is on flash now: the next mount finds a clean stop.
        if (this.#failed === undefined) this.#i.keys.set(KEY_CLEAN, new Uint8Array([1]));
      }
      this.#seal.key.fill(0);
      this.#storeKey.fill(0);
    }
  }

  // ---- internals ----

  private _newVerificationKey(wiped: boolean): SealState {
    const k0 = new Uint8Array(32);
    this.#i.random.fill(k0);
    this.#o.onVerificationKey?.(k0.slice());
    const s = { epoch: 0, first: this.#ring.nextSeq, key: k0 };
    storeSealState(this.#i.keys, s);
    if (wiped) this.#o.onAlarm?.("audit: the log was empty but a sealing key existed; a new verification key was issued");
    return s;
  }

  private _usable(): void {
    if (this.#closed) throw fail(ErrorCode.BadOption, "audit log is closed");
    if (this.#failed !== undefined) throw fail(ErrorCode.Corrupt, `audit log failed: ${String(this.#failed)}`);
  }

  private _alarm(e: PortcullisError): PortcullisError {
    this.#o.onAlarm?.(`audit: ${e.message}`);
    return e;
  }

  private _markFailed(e: unknown): void {
    if (this.#failed !== undefined) return;
    this.#failed = e;
    this.#o.onAlarm?.(`audit: flash failure, the log refuses records until restart: ${String(e)}`);
  }

  private _safely(op: () => void): void {
    try {
      if (this.#failed === undefined && !this.#closed) op();
    } catch (e) {
      if (!(e instanceof PortcullisError && e.code === ErrorCode.Limit)) this._markFailed(e);
    }
  }

  /**
   * Appends a normalised event: encrypts its body, extends the chain, and seals when the epoch is
   * full. `keep`: free sectors this record must leave (KEEP_*).
   */
  private _write(ev: AuditEvent, keep: number, flags = 0): { seq: number; done: Promise<number> } {
    // No wrapper frame or try/finally (the boot path runs near the esp32 stack's end): a throw leaves
    // the span open and the meter closes it with the outer one (src/util/meter.ts).
    const t0 = meter.start();
    this._usable();
    const clock = this.#i.clock;
    const partial = { ...ev, seq: 0, time: Math.floor(clock.now()), timeSet: clock.isSet() };
    const body = encodeBody(partial);
    const length = PREFIX_SIZE + body.length + TAG_SIZE;
    if (length > this.#ring.maxPayload) throw fail(ErrorCode.Limit, `audit record of ${length} bytes exceeds ${this.#ring.maxPayload}`);
    this._ensureSpace(length, keep);
    const seq = this.#ring.nextSeq;
    const record: AuditRecord = { ...partial, seq };
    const chain = chainNext(this.#i.crypto, this.#chain, canonicalBytes(record));
    const payload = sealPayload(this.#i.crypto, this.#storeKey, seq, { flags, epoch: this.#seal.epoch, boot: this.#boot, chain }, body);
    const done = this.#ring.append(payload, keep);
    this.#chain = chain;
    done.catch((e: unknown) => this._markFailed(e));
    if (flags === 0 && this.#ring.nextSeq - this.#seal.first >= (this.#o.sealEveryRecords ?? DEFAULT_SEAL_EVERY_RECORDS)) {
      this._safely(() => this._doSeal());
    }
    meter.stop("record", t0);
    return { seq, done };
  }

  /** Aggregator output: a summary too large for one record is split in halves. */
  private _emitSplit(ev: AuditEvent): { seq: number; done: Promise<number> } {
    const rows = ev.summary;
    try {
      return this._write(normalizeEvent(ev), KEEP_NORMAL);
    } catch (e) {
      if (!(e instanceof PortcullisError && e.code === ErrorCode.Limit && rows && rows.length > 1 && /exceeds/.test(e.message))) throw e;
      const half = Math.ceil(rows.length / 2);
      const a = this._emitSplit({ ...ev, summary: rows.slice(0, half) });
      const b = this._emitSplit({ ...ev, summary: rows.slice(half) });
      return { seq: a.seq, done: Promise.all([a.done, b.done]).then(() => a.seq) };
    }
  }

  /**
   * Noise aggregator output: written (flagged as noise) only while noise holds less than its share of
   * the partition; false leaves the row to the aggregator, which keeps counting it.
   */
  private _emitNoise(ev: AuditEvent): boolean {
    if (this.#closed || this.#failed !== undefined) return false;
    try {
      const e = normalizeEvent(ev);
      const clock = this.#i.clock;
      const length = PREFIX_SIZE + encodeBody({ ...e, seq: 0, time: Math.floor(clock.now()), timeSet: clock.isSet() }).length + TAG_SIZE;
      const budget = (this.#ring.sectors * this.#ring.sectorSize * (this.#o.noiseSharePercent ?? NOISE_SHARE_PERCENT)) / 100;
      if (this._noiseBytes() + length > budget) {
        // Once per episode: an attack (or a misconfigured device) is under way; evidence is safe.
        if (!this.#noiseFull) this.#o.onAlarm?.("audit: unauthenticated noise fills its share of the log; it is counted in RAM until older noise is purged");
        this.#noiseFull = true;
        return false;
      }
      const { seq } = this._write(e, KEEP_NORMAL, FLAG_NOISE);
      this.#noiseRecords!.push(seq, length);
      this.#noiseSum += length;
      this.#noiseFull = false;
      return true;
    } catch (e) {
      // A row the log can never take (malformed) is dropped rather than block the rows behind it.
      if (e instanceof PortcullisError && e.code === ErrorCode.BadOption) return true;
      if (!(e instanceof PortcullisError && e.code === ErrorCode.Limit)) this._markFailed(e);
      return false;
    }
  }

  /** Payload bytes of the noise records still in the log (the first call reads every prefix once). */
  private _noiseBytes(): number {
    let rows = this.#noiseRecords;
    if (!rows) {
      rows = this.#noiseRecords = new NumberRows(2);
      this.#noiseSum = 0;
      for (const e of this.#ring.entries(this.#ring.firstSeq)) {
        if (e.type === "record" && ((readPrefix(e.data)?.flags ?? 0) & FLAG_NOISE) !== 0) {
          rows.push(e.seq, e.data.length);
          this.#noiseSum += e.data.length;
        }
      }
    }
    const first = this.#ring.firstSeq;
    let drop = 0;
    while (drop < rows.length && rows.get(drop, 0) < first) this.#noiseSum -= rows.get(drop++, 1);
    rows.removeFront(drop);
    return this.#noiseSum;
  }

  /** Seals the current epoch (durably), then evolves and stores the key, wiping the old one. */
  private _doSeal(keep = KEEP_PRIORITY): number {
    // Make room first: a purge appends records, which would change what this seal covers.
    this._ensureSpace(SEAL_PAYLOAD_MAX, keep);
    const s = this.#seal;
    const last = this.#ring.nextSeq - 1;
    const mac = sealMac(this.#i.crypto, s.key, s.epoch, s.first, last, this.#chain);
    const detail = { epoch: s.epoch, first: s.first, last, chain: toHex(this.#chain), mac: toHex(mac) };
    const { seq } = this._write({ kind: "seal", decision: "info", detail }, keep, FLAG_SEAL);
    this.#ring.flush();
    const key = evolveKey(this.#i.crypto, s.key);
    s.key.fill(0);
    this.#seal = { epoch: s.epoch + 1, first: seq + 1, key };
    storeSealState(this.#i.keys, this.#seal);
    this._armSealTimer();
    return seq;
  }

  /**
   * The seal an export ends at: a new one, or the last one when the epoch is empty. Full under legal
   * hold with the reserve spent, the export ends at the last seal (later records cannot be sealed).
   */
  private _sealForExport(): number {
    this._usable();
    if (this.#seal.first === this.#ring.nextSeq) return this.#seal.first - 1;
    try {
      return this._doSeal();
    } catch (e) {
      if (!(e instanceof PortcullisError && e.code === ErrorCode.Limit)) throw e;
      this.#o.onAlarm?.(`audit: export ends at the last seal (seq ${this.#seal.first - 1}); later records cannot be sealed while full`);
      return this.#seal.first - 1;
    }
  }

  /** The checkpoint of the seal at `sealSeq` (the newest), MACed under the open epoch's key. */
  private _vouch(sealSeq: number, range?: ExportRange): { cp: Checkpoint; mac: Uint8Array } {
    const s = sealState(this.#ring, this.#decoder, sealSeq);
    if (!s || sealSeq !== this.#seal.first - 1) throw fail(ErrorCode.Corrupt, `the newest seal (seq ${sealSeq}) cannot be read`);
    const cp = { ...s, epoch: this.#seal.epoch };
    return { cp, mac: checkpointMac(this.#i.crypto, this.#seal.key, cp, range) };
  }

  private _armSealTimer(): void {
    if (this.#sealTimer !== undefined) this.#i.timers.cancel(this.#sealTimer);
    this.#sealTimer = this.#i.timers.after(this.#o.sealEveryMs ?? DEFAULT_SEAL_EVERY_MS, () => {
      this.#sealTimer = undefined;
      // An empty epoch is sealed too (truncation shows), except while full: seals would eat the reserve.
      if (this.#seal.first === this.#ring.nextSeq && !this.#ring.canAppend(SEAL_PAYLOAD_MAX, KEEP_NORMAL)) this._armSealTimer();
      else this._safely(() => this._doSeal());
    });
  }

  /** Seal, record "purged through N" durably, then give the sectors up (so a gap is always explained). */
  private _purge(through: number, reason: "retention" | "full"): void {
    this._doSeal(KEEP_PURGE);
    const detail = { through, reason, chain: toHex(chainBefore(this.#ring, this.#decoder, through + 1)) };
    this._write({ kind: "purge", decision: "info", detail }, KEEP_PURGE);
    this.#ring.flush();
    this.#ring.trimThrough(through);
  }

  /**
   * Makes room for a record of `length` payload bytes: without a hold, purges oldest sectors until it
   * fits, as long as each may go (`purge.ts`: nothing within its retention); under hold, or when the
   * oldest sector holds a record that must be kept, raises the alarm once and refuses.
   * @throws PortcullisError `limit` when the record cannot be written.
   */
  private _ensureSpace(length: number, keep: number): void {
    let kept: AuditRecord | undefined;
    while (!this.#ring.canAppend(length, keep) && keep > KEEP_PURGE && this.#held === undefined) {
      const spans = this.#ring.spans();
      if (spans.length < 2) break;
      const now = this.#i.clock.now();
      // While the same oldest sector is known to be kept, do not decrypt it again on every append.
      const b = this.#blocked;
      if (b && b.firstSeq === spans[0]!.firstSeq && now < b.until) {
        kept = b.record;
        break;
      }
      kept = blocker(this.#ring, this.#decoder, spans[0]!, this.#rules, now);
      if (kept) {
        this.#blocked = { firstSeq: spans[0]!.firstSeq, until: kept.time + (this.#rules.retention[kept.kind] ?? 0), record: kept };
        break;
      }
      this._purge(spans[0]!.lastSeq, "full");
    }
    if (this.#ring.canAppend(length, keep)) {
      if (keep === KEEP_NORMAL) this.#alarmedFull = false;
      return;
    }
    const why = this.#held !== undefined ? `partition full under legal hold (${this.#held})`
      : kept ? `partition full of records within their retention (oldest kept: seq ${kept.seq}, ${kept.kind})` : "partition full";
    if (!this.#alarmedFull) this.#o.onAlarm?.(`audit: ${why}; records are refused and the gateway fails closed`);
    this.#alarmedFull = true;
    throw fail(ErrorCode.Limit, `audit log ${why}`);
  }

  private _decode(seq: number, data: Uint8Array): AuditRecord | undefined {
    const body = openPayload(this.#i.crypto, this.#storeKey, seq, data);
    if (!body) return undefined;
    try {
      return decodeBody(seq, body);
    } catch {
      return undefined;
    }
  }

  /** Writes one `corruption` record per newly seen hole (CRC or authentication failure). */
  private _reportGaps(entries: Iterable<RingEntry>): void {
    const found: [number, number][] = [];
    for (const e of entries) {
      if (e.type === "gap") found.push([e.from, e.to]);
      else if (!this._decode(e.seq, e.data)) found.push([e.seq, e.seq]);
    }
    for (const [from, to] of found) {
      const key = `${from}-${to}`;
      if (this.#reported.has(key)) continue;
      this.#reported.add(key);
      this.#o.onAlarm?.(`audit: records ${from}..${to} failed their integrity check`);
      this._safely(() => void this._write(normalizeEvent({ kind: "corruption", decision: "info", detail: { from, to } }), KEEP_PRIORITY));
    }
  }
}
