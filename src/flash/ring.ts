/**
 * A log-structured ring of flash sectors holding sequence-numbered records: the flash machinery the
 * audit log and the outbound store-and-forward queue share (each on its own part of the partition).
 *
 * Sectors are used in ring order, so wear spreads over the whole region; each carries its erase count.
 * Mount reads only the sector headers and scans the head sector (littlefs DESIGN.md: bounded work
 * after a power cut). A torn tail is skipped, never patched: appends resume after it, so a
 * (sector, offset) position is programmed at most once between erases.
 */
import type { Flash, TimerId, Timers } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import {
  encodeFrame, encodePartA, encodePartB, frameSize, FRAME_HEADER, HEADER_SIZE, parseHeader,
  PART_B_OFFSET, RETIRE_OFFSET, scanSector, type SectorState,
} from "./ring-format.js";

/** Sectors kept free beyond the head for records that must get through (seal, purge, alarm). */
export const DEFAULT_RESERVE_SECTORS = 1;
/** Prepared (erased, headed) sectors kept ahead of the head by the idle eraser. */
export const DEFAULT_PREPARE_AHEAD = 2;
export const DEFAULT_ERASE_IDLE_MS = 500;

export interface RingOptions {
  readonly flash: Flash;
  /** Byte offset of the ring's region; a multiple of the sector size. Default 0. */
  readonly offset?: number;
  /** Bytes; a multiple of the sector size, at least 3 sectors. Default: the rest of the flash. */
  readonly size?: number;
  /** Identifies the ring's owner (1–254), so two rings never adopt each other's sectors. */
  readonly tag: number;
  /**
   * Group-commit window in ms; 0 (default) programs every append at once. Needs `timers`. On a flash
   * with `durable()` the window closes at the end of the current job instead (the host's flush then
   * batches the turn), and an append resolves once `durable()` resolved for it.
   */
  readonly groupCommitMs?: number;
  readonly timers?: Timers;
  readonly reserveSectors?: number;
  readonly prepareAhead?: number;
  readonly eraseIdleMs?: number;
}

/** One item of iteration: a record, or a hole where stored records failed their checksum. */
export type RingEntry =
  | { readonly type: "record"; readonly seq: number; readonly data: Uint8Array }
  | { readonly type: "gap"; readonly from: number; readonly to: number };

/** A live sector and the sequence numbers it holds. */
export interface RingSpan {
  readonly sector: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** A sector's state as one byte, its index in this list (the per-sector tables are typed arrays: no slot per sector). */
const STATE_CODES: readonly SectorState[] = ["dirty", "prepared", "live", "retired"];
const PREPARED = 1;
const LIVE = 2;
const RETIRED = 3;

/**
 * Appends waiting for the group-commit window. Their seqs are consecutive from `first`, so each waiter
 * is the promise's own resolve (called with first + its index): no closure per append.
 */
interface Pending {
  frames: Uint8Array[];
  bytes: number;
  first: number;
  resolve: ((seq: number) => void)[];
  reject: ((e: unknown) => void)[];
}

/** Taken out of the window as one buffer. */
interface Taken {
  readonly bytes: Uint8Array;
  readonly first: number;
  readonly resolve: ((seq: number) => void)[];
  readonly reject: ((e: unknown) => void)[];
}

/** Resolves each waiter with its seq (consecutive from `first`). */
function resolveAll(waiters: readonly ((seq: number) => void)[], first: number): void {
  for (let i = 0; i < waiters.length; i++) waiters[i]!(first + i);
}

/** Programmed appends waiting for the flash's `durable()`, with the highest seq they hold. */
interface Batch {
  readonly through: number;
  readonly first: number;
  readonly resolve: ((seq: number) => void)[];
  readonly reject: ((e: unknown) => void)[];
}

/** Raised when an append needs a sector and none is free (the layer above purges or fails closed). */
export function ringFull(message: string): PortcullisError {
  return new PortcullisError(ErrorCode.Limit, `ring full: ${message}`);
}

export class FlashRing {
  readonly sectors: number;
  readonly sectorSize: number;
  /** Largest payload one record can carry. */
  readonly maxPayload: number;
  /** Erase counts per sector, from the headers (a sector without a readable count gets the largest seen); a view of the table. */
  get eraseCounts(): Uint32Array {
    return this.#t.subarray(0, this.sectors);
  }
  /** Erases that had to happen on the append path because no prepared sector was ready. */
  syncErases = 0;
  readonly #flash: Flash;
  readonly #base: number;
  readonly #tag: number;
  readonly #timers: Timers | undefined;
  readonly #groupMs: number;
  readonly #reserve: number;
  readonly #ahead: number;
  readonly #idleMs: number;
  /**
   * The per-sector table, 4 words a sector in one Uint32Array (a typed array costs several slots, so
   * one serves all three): erase counts at [0, n), states (STATE_CODES) at [n, 2n), and from 2n the live
   * sectors, oldest first, as a circular deque of n entries [sector index, first seq]. A full 1 MiB log
   * so holds its 256 sectors' bookkeeping in 4 KiB of chunk and no slot per sector.
   */
  readonly #t: Uint32Array;
  #liveHead = 0;
  #liveCount = 0;
  #nextSeq = 1;
  #nextSectorSeq = 1;
  #writeOffset = 0;
  #headClosed = true;
  #pending: Pending | undefined;
  /** Programmed batches not yet known durable, oldest first (only on a flash with `durable()`). */
  #awaiting: Batch[] = [];
  /** The highest seq known to be durable. */
  #durableSeq = 0;
  /** A close of the group commit is queued for the end of the current job. */
  #turnQueued = false;
  #flushTimer: TimerId | undefined;
  #eraseTimer: TimerId | undefined;
  #failed: unknown;
  #closed = false;

  /**
   * Mounts the ring: reads every sector header, scans the head sector, and continues the sequence.
   * @throws RangeError on bad options; PortcullisError `bad-option` when the region holds another
   * ring's sectors (overlapping regions: refuse rather than erase them); FlashError when the flash
   * cannot be read.
   */
  static mount(options: RingOptions): FlashRing {
    return new FlashRing(options);
  }

  private constructor(o: RingOptions) {
    const f = o.flash;
    const offset = o.offset ?? 0;
    const size = o.size ?? f.size - offset;
    if (offset % f.sectorSize !== 0 || size % f.sectorSize !== 0 || offset < 0 || offset + size > f.size) {
      throw new RangeError(`ring region ${offset}+${size} must be whole sectors inside the flash`);
    }
    if (size / f.sectorSize < 3) throw new RangeError("a ring needs at least 3 sectors");
    if (!Number.isInteger(o.tag) || o.tag < 1 || o.tag > 254) throw new RangeError("ring tag must be 1..254");
    if ((o.groupCommitMs ?? 0) > 0 && !o.timers) throw new RangeError("group commit needs timers");
    this.#flash = f;
    this.#base = offset / f.sectorSize;
    this.#tag = o.tag;
    this.#timers = o.timers;
    this.#groupMs = o.groupCommitMs ?? 0;
    this.#reserve = o.reserveSectors ?? DEFAULT_RESERVE_SECTORS;
    this.#ahead = o.prepareAhead ?? DEFAULT_PREPARE_AHEAD;
    this.#idleMs = o.eraseIdleMs ?? DEFAULT_ERASE_IDLE_MS;
    this.sectors = size / f.sectorSize;
    this.sectorSize = f.sectorSize;
    this.maxPayload = Math.min(0xffff, f.sectorSize - HEADER_SIZE - FRAME_HEADER);
    if (this.#reserve < 0 || this.#reserve > this.sectors - 2) throw new RangeError("reserveSectors out of range");
    this.#t = new Uint32Array(4 * this.sectors);
    this._mount();
    this.#durableSeq = this.#nextSeq - 1;
  }

  /** True when the flash acknowledges through `durable()` (the Node board's file image). */
  private get _async(): boolean {
    return this.#flash.durable !== undefined;
  }

  /** The highest sequence number known to be durable (appends at or below it have resolved or will). */
  get durableSeq(): number {
    return this.#durableSeq;
  }

  /** The sequence number the next append gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }
  /** The oldest live sequence number (equals `nextSeq` when the ring holds nothing). */
  get firstSeq(): number {
    return this.#liveCount > 0 ? this._liveFirstSeq(0) : this.#nextSeq;
  }
  /** Sectors not holding live records. */
  get freeSectors(): number {
    return this.sectors - this.#liveCount;
  }
  /** Bytes of live sectors in use (headers and padding included). */
  get bytesUsed(): number {
    const n = this.#liveCount;
    return n === 0 ? 0 : (n - 1) * this.sectorSize + this.#writeOffset + (this.#pending?.bytes ?? 0);
  }

  /** Live sectors, oldest first, with the sequence range each holds. */
  spans(): RingSpan[] {
    const spans: RingSpan[] = [];
    for (let k = 0; k < this.#liveCount; k++) {
      spans.push({ sector: this._liveIndex(k), firstSeq: this._liveFirstSeq(k), lastSeq: (k + 1 < this.#liveCount ? this._liveFirstSeq(k + 1) : this.#nextSeq) - 1 });
    }
    return spans;
  }

  /**
   * True when a record of `length` payload bytes can be appended now and leave at least `keep` free
   * sectors (default: the configured reserve; 0 lets a record take the last free sector).
   */
  canAppend(length: number, keep = this.#reserve): boolean {
    if (this.#failed !== undefined || this.#closed || length > this.maxPayload) return false;
    if (!this.#headClosed && this.#writeOffset + (this.#pending?.bytes ?? 0) + frameSize(length) <= this.sectorSize) return true;
    return this.freeSectors - 1 >= keep;
  }

  /**
   * Appends one record and returns its sequence number (assigned synchronously: `nextSeq` before the
   * call). The promise resolves once the record is durable: at once, or when the group-commit window
   * closes. A new sector is opened only if `keep` free sectors remain after it (default: the reserve;
   * the layer above passes less for records that must get through, such as seals and purge records).
   * @throws PortcullisError `limit` when the ring is full or the payload too large (synchronously,
   * nothing written); rejects with the flash error if programming fails (the ring then refuses
   * further appends until it is mounted again).
   */
  append(data: Uint8Array, keep = this.#reserve): Promise<number> {
    this._usable();
    if (data.length > this.maxPayload) {
      throw new PortcullisError(ErrorCode.Limit, `record of ${data.length} bytes exceeds ${this.maxPayload}`);
    }
    const size = frameSize(data.length);
    if (this.#headClosed || this.#writeOffset + (this.#pending?.bytes ?? 0) + size > this.sectorSize) {
      if (this.freeSectors - 1 < keep) throw ringFull(`${this.freeSectors} free sectors`);
      try {
        this._drain();
        this._openNext();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const seq = this.#nextSeq++;
    const frame = encodeFrame(seq, data);
    if (this._async) {
      // Closed at the end of this job: one program per job, the host batches the flushes of a turn.
      const p = (this.#pending ??= { frames: [], bytes: 0, first: seq, resolve: [], reject: [] });
      p.frames.push(frame);
      p.bytes += frame.length;
      if (!this.#turnQueued) {
        this.#turnQueued = true;
        void Promise.resolve().then(() => this._endOfJob());
      }
      return this._waitFor(p);
    }
    if (this.#groupMs === 0) {
      try {
        this._program(frame);
        this._sync();
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve(seq);
    }
    const p = (this.#pending ??= { frames: [], bytes: 0, first: seq, resolve: [], reject: [] });
    p.frames.push(frame);
    p.bytes += frame.length;
    if (this.#flushTimer === undefined) this.#flushTimer = this.#timers!.after(this.#groupMs, () => this._timedFlush());
    return this._waitFor(p);
  }

  /** A promise for the append just added to `p` (its frame is the last one). */
  private _waitFor(p: Pending): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      p.resolve.push(resolve);
      p.reject.push(reject);
    });
  }

  /**
   * Programs the records waiting for the group-commit window now (one program operation) and syncs
   * the flash (a blocking flush on a file image: for the rare points that must be durable before the
   * next step, such as a seal before its key evolves). When it returns, every append made so far is
   * durable — on a flash with `durable()` but no `sync()`, once that resolves.
   * @throws the flash error when programming fails (waiting appends are rejected with it too), or
   * the earlier write failure again (so nothing may be assumed durable).
   */
  flush(): void {
    // The first failure (a power cut, a flash fault) is the cause every later call reports.
    if (this.#failed !== undefined) throw this.#failed;
    const p = this._takePending();
    if (!this._async) {
      if (!p) return;
      try {
        this._program(p.bytes);
        this._sync();
      } catch (e) {
        for (const r of p.reject) r(e);
        throw e;
      }
      this.#durableSeq = this.#nextSeq - 1;
      resolveAll(p.resolve, p.first);
      return;
    }
    if (p) this._programBatch(p);
    if (this.#flash.sync && this.#durableSeq < this.#nextSeq - 1) {
      try {
        this._sync();
      } catch (e) {
        this._failAwaiting(e);
        throw e;
      }
      this._settle(this.#nextSeq - 1);
    }
  }

  /**
   * Programs the records waiting for the group commit now, without waiting for the flash to make
   * them durable: their appends resolve once it has (`durable()`). On a flash without `durable()`
   * this is {@link flush}.
   * @throws as {@link flush}.
   */
  commit(): void {
    this._drain();
  }

  /**
   * Records and gaps from `from` to `to` (inclusive), in sequence order. Waiting appends are flushed
   * first so a reader sees what was acknowledged.
   */
  *entries(from = 1, to = Infinity): Generator<RingEntry> {
    if (this.#failed === undefined && !this.#closed) this._drain();
    const spans = this.spans();
    let expected = spans[0]?.firstSeq ?? this.#nextSeq;
    let i = 0;
    while (i + 1 < spans.length && spans[i + 1]!.firstSeq <= from) i++;
    if (i > 0) expected = spans[i]!.firstSeq;
    for (; i < spans.length; i++) {
      const span = spans[i]!;
      if (span.firstSeq > to) return;
      if (span.firstSeq > expected) {
        if (span.firstSeq - 1 >= from) yield { type: "gap", from: Math.max(expected, from), to: Math.min(span.firstSeq - 1, to) };
        expected = span.firstSeq;
      }
      const scan = scanSector(this.#flash.read((this.#base + span.sector) * this.sectorSize, this.sectorSize));
      for (const f of scan.frames) {
        if (f.seq < expected || f.seq > span.lastSeq) continue;
        if (f.seq > expected && f.seq - 1 >= from && expected <= to) yield { type: "gap", from: Math.max(expected, from), to: Math.min(f.seq - 1, to) };
        expected = f.seq + 1;
        if (f.seq > to) return;
        if (f.seq >= from) yield { type: "record", seq: f.seq, data: f.payload };
      }
      const end = span.lastSeq + 1;
      if (end > expected && i + 1 === spans.length) {
        if (end - 1 >= from && expected <= to) yield { type: "gap", from: Math.max(expected, from), to: Math.min(end - 1, to) };
        expected = end;
      }
    }
  }

  /** The record with sequence number `seq`, or undefined when it is not (or no longer) stored intact. */
  read(seq: number): Uint8Array | undefined {
    for (const e of this.entries(seq, seq)) if (e.type === "record") return e.data;
    return undefined;
  }

  /** The newest intact record, looking back sector by sector from the head. */
  last(): { seq: number; data: Uint8Array } | undefined {
    this._drain();
    const spans = this.spans();
    for (let i = spans.length - 1; i >= 0; i--) {
      const scan = scanSector(this.#flash.read((this.#base + spans[i]!.sector) * this.sectorSize, this.sectorSize));
      const f = scan.frames[scan.frames.length - 1];
      if (f) return { seq: f.seq, data: f.payload };
    }
    return undefined;
  }

  /**
   * Gives up whole sectors, oldest first, whose records are all at or below `seq`; never the head.
   * Each is retired with one 4-byte program (durable, ordered oldest first) and erased later by the
   * idle eraser. Returns the highest sequence number given up (firstSeq − 1 when none was).
   * `after`: the record that justifies the trim (default: every append so far); a retire mark is
   * never programmed before it is durable, so on a flash with `durable()` a trim whose record already
   * is durable costs no blocking sync.
   */
  trimThrough(seq: number, after = this.#nextSeq - 1): number {
    this._usable();
    if (!this._async) this.flush();
    else if (this.#liveCount > 1 && this._liveFirstSeq(1) - 1 <= seq && this.#durableSeq < after) this.flush();
    else this._drain();
    let through = this.firstSeq - 1;
    while (this.#liveCount > 1) {
      const lastSeq = this._liveFirstSeq(1) - 1;
      if (lastSeq > seq) break;
      const index = this._liveIndex(0);
      this._guard(() => this.#flash.program(this._addr(index) + RETIRE_OFFSET, new Uint8Array(4)));
      this.#t[this.sectors + index] = RETIRED;
      this.#liveHead = (this.#liveHead + 1) % this.sectors;
      this.#liveCount--;
      through = lastSeq;
    }
    this._scheduleErase();
    return through;
  }

  /**
   * The idle eraser's work: erases every retired sector (purged records do not linger on flash) and
   * prepares free sectors ahead of the head until `prepareAhead` are ready.
   */
  maintain(): void {
    if (this.#failed !== undefined || this.#closed) return;
    for (let i = 0; i < this.sectors; i++) if (this.#t[this.sectors + i] === RETIRED) this._prepare(i);
    const headIndex = this.#liveCount > 0 ? this._liveIndex(this.#liveCount - 1) : this.sectors - 1;
    for (let k = 1; k <= Math.min(this.#ahead, this.freeSectors); k++) {
      const idx = (headIndex + k) % this.sectors;
      if (this.#t[this.sectors + idx] !== PREPARED) this._prepare(idx);
    }
  }

  /** Flushes waiting appends and stops the timers. Harmless twice; nothing is appended after it. */
  close(): void {
    if (this.#closed) return;
    if (this.#failed === undefined) this.flush();
    if (this.#eraseTimer !== undefined) this.#timers!.cancel(this.#eraseTimer);
    if (this.#flushTimer !== undefined) this.#timers!.cancel(this.#flushTimer);
    this.#eraseTimer = this.#flushTimer = undefined;
    this.#closed = true;
  }

  private _mount(): void {
    let maxErase = 0;
    let maxSectorSeq = 0;
    const live: { index: number; sectorSeq: number; firstSeq: number }[] = [];
    const unknownErase: number[] = [];
    for (let i = 0; i < this.sectors; i++) {
      const h = parseHeader(this.#flash.read(this._addr(i), HEADER_SIZE), this.#tag);
      if (h.foreignTag >= 0) {
        // Never erase another ring's records: the partition layout is wrong, so refuse to mount.
        throw new PortcullisError(ErrorCode.BadOption, `ring ${this.#tag}: sector ${this.#base + i} belongs to ring ${h.foreignTag}; the regions overlap (check offset/size)`);
      }
      this.#t[this.sectors + i] = STATE_CODES.indexOf(h.state);
      if (h.eraseCount < 0) unknownErase.push(i);
      else this.#t[i] = h.eraseCount;
      maxErase = Math.max(maxErase, h.eraseCount);
      if (h.state === "live" || h.state === "retired") maxSectorSeq = Math.max(maxSectorSeq, h.sectorSeq);
      if (h.state === "live") live.push({ index: i, sectorSeq: h.sectorSeq, firstSeq: h.firstSeq });
    }
    // A sector without a readable count gets the largest seen (parseHeader's -1 cannot be stored).
    for (const i of unknownErase) this.#t[i] = maxErase;
    live.sort((a, b) => a.sectorSeq - b.sectorSeq);
    for (const l of live) this._livePush(l.index, l.firstSeq);
    this.#nextSectorSeq = maxSectorSeq + 1;
    this._scheduleErase();
    const head = live[live.length - 1];
    if (head === undefined) return;
    const scan = scanSector(this.#flash.read(this._addr(head.index), this.sectorSize));
    const lastFrame = scan.frames[scan.frames.length - 1];
    this.#nextSeq = lastFrame ? Math.max(lastFrame.seq + 1, head.firstSeq) : head.firstSeq;
    // A torn tail is skipped, not patched: appends resume at the first erased word after it, so no
    // byte is programmed twice and a torn record never costs a whole sector (a full ring could
    // otherwise be left with no room for the purge that frees it). Its seq is reused, so no gap shows.
    this.#writeOffset = scan.erasedFrom;
    this.#headClosed = scan.erasedFrom + FRAME_HEADER > this.sectorSize;
  }

  private _addr(index: number): number {
    return (this.#base + index) * this.sectorSize;
  }

  private _usable(): void {
    if (this.#closed) throw new PortcullisError(ErrorCode.BadOption, "ring is closed");
    // The first failure (a power cut, a flash fault) is the cause every later call reports.
    if (this.#failed !== undefined) throw this.#failed;
  }

  /** Runs a flash mutation; on failure the ring refuses further writes (a remount re-reads the truth). */
  private _guard(op: () => void): void {
    try {
      op();
    } catch (e) {
      this.#failed = e;
      throw e;
    }
  }

  /** An acknowledgement point: what was programmed so far must survive the host's power too. */
  private _sync(): void {
    if (this.#flash.sync) this._guard(() => this.#flash.sync!());
  }

  /** Takes the waiting appends out of the group-commit window, as one buffer. */
  private _takePending(): Taken | undefined {
    const p = this.#pending;
    if (!p) return undefined;
    this.#pending = undefined;
    if (this.#flushTimer !== undefined) this.#timers!.cancel(this.#flushTimer);
    this.#flushTimer = undefined;
    const all = new Uint8Array(p.bytes);
    let at = 0;
    for (const f of p.frames) {
      all.set(f, at);
      at += f.length;
    }
    return { bytes: all, first: p.first, resolve: p.resolve, reject: p.reject };
  }

  /** Programs what waits without a blocking sync (a flash with `durable()`), else {@link flush}. */
  private _drain(): void {
    if (!this._async) {
      this.flush();
      return;
    }
    if (this.#failed !== undefined) throw this.#failed;
    const p = this._takePending();
    if (p) this._programBatch(p);
  }

  /** Programs one batch and asks the flash to make it durable; its appends resolve then, in order. */
  private _programBatch(p: Taken): void {
    try {
      this._program(p.bytes);
    } catch (e) {
      for (const r of p.reject) r(e);
      throw e;
    }
    const through = this.#nextSeq - 1;
    this.#awaiting.push({ through, first: p.first, resolve: p.resolve, reject: p.reject });
    this.#flash.durable!().then(() => this._settle(through), (e: unknown) => {
      this.#failed ??= e;
      this._failAwaiting(e);
    });
  }

  /** Every append through `through` is durable: resolve the batches it covers, oldest first. */
  private _settle(through: number): void {
    if (through > this.#durableSeq) this.#durableSeq = through;
    while (this.#awaiting.length > 0 && this.#awaiting[0]!.through <= through) {
      const b = this.#awaiting.shift()!;
      resolveAll(b.resolve, b.first);
    }
  }

  private _failAwaiting(e: unknown): void {
    const all = this.#awaiting;
    this.#awaiting = [];
    for (const b of all) for (const r of b.reject) r(e);
  }

  /** The end of the job that appended: programs the batch of this job (one program operation). */
  private _endOfJob(): void {
    this.#turnQueued = false;
    if (this.#closed) return;
    if (this.#failed !== undefined) {
      // Nothing more is programmed after a failure: what waits is refused, not left hanging.
      const p = this._takePending();
      for (const r of p?.reject ?? []) r(this.#failed);
      return;
    }
    try {
      this._drain();
    } catch {
      // Already delivered to every waiting append as a rejection.
    }
  }

  private _program(bytes: Uint8Array): void {
    const head = this._liveIndex(this.#liveCount - 1);
    this._guard(() => this.#flash.program(this._addr(head) + this.#writeOffset, bytes));
    this.#writeOffset += bytes.length;
  }

  /** The sector index of the k-th live sector, oldest first. */
  private _liveIndex(k: number): number {
    return this.#t[2 * (this.sectors + ((this.#liveHead + k) % this.sectors))]!;
  }

  /** The first record seq of the k-th live sector, oldest first. */
  private _liveFirstSeq(k: number): number {
    return this.#t[2 * (this.sectors + ((this.#liveHead + k) % this.sectors)) + 1]!;
  }

  /** Appends a live sector after the head. */
  private _livePush(index: number, firstSeq: number): void {
    const at = 2 * (this.sectors + ((this.#liveHead + this.#liveCount) % this.sectors));
    this.#t[at] = index;
    this.#t[at + 1] = firstSeq;
    this.#liveCount++;
  }

  private _erasedBody(idx: number): boolean {
    const b = this.#flash.read(this._addr(idx) + PART_B_OFFSET, this.sectorSize - PART_B_OFFSET);
    for (let i = 0; i < b.length; i++) if (b[i] !== 0xff) return false;
    return true;
  }

  private _prepare(idx: number): void {
    const count = this.#t[idx]! + 1;
    this._guard(() => {
      this.#flash.erase(this.#base + idx);
      this.#flash.program(this._addr(idx), encodePartA(this.#tag, count));
    });
    this.#t[idx] = count;
    this.#t[this.sectors + idx] = PREPARED;
  }

  /** Activates the sector after the head (erasing it first only if the idle eraser has not). */
  private _openNext(): void {
    const idx = this.#liveCount > 0 ? (this._liveIndex(this.#liveCount - 1) + 1) % this.sectors : 0;
    // A "prepared" header promises an erased body, but an erase cut short can leave an old part A
    // intact over cells that never reached 0xFF: check before programming into it, else erase again.
    if (this.#t[this.sectors + idx] !== PREPARED || !this._erasedBody(idx)) {
      this.syncErases++;
      this._prepare(idx);
    }
    const sectorSeq = this.#nextSectorSeq++;
    this._guard(() => this.#flash.program(this._addr(idx) + PART_B_OFFSET, encodePartB(sectorSeq, this.#nextSeq)));
    this.#t[this.sectors + idx] = LIVE;
    this._livePush(idx, this.#nextSeq);
    this.#writeOffset = HEADER_SIZE;
    this.#headClosed = false;
    if (this.#timers) this._scheduleErase();
    else this.maintain();
  }

  private _scheduleErase(): void {
    if (!this.#timers || this.#eraseTimer !== undefined || this.#closed) return;
    this.#eraseTimer = this.#timers.after(this.#idleMs, () => {
      this.#eraseTimer = undefined;
      try {
        this.maintain();
      } catch {
        // The failure is kept in #failed and surfaces on the next append.
      }
    });
  }

  private _timedFlush(): void {
    this.#flushTimer = undefined;
    try {
      this.flush();
    } catch {
      // Already delivered to every waiting append as a rejection.
    }
  }
}
