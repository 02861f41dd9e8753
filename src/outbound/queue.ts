/**
 * The per-integration store-and-forward queue: FIFO, bounded by the contract's queue terms (max bytes,
 * overflow policy, time to live), with every drop reported with its cause. `QueueBase` holds the
 * policy; a store below it keeps the bytes (RAM here, the flash ring in flash-queue.ts).
 *
 * Sequence numbers are the messages' own (per integration, strictly increasing, never reused): the
 * envelope carries them so the vendor can spot gaps and duplicates.
 *
 * Acknowledgement is a cursor: `ack` marks one message delivered (PUBACKs of a window may come in any
 * order), and the queue retires everything up to the highest contiguous acknowledged seq in one step,
 * with one consumption record per batch (acks that arrive while a record is being written share the
 * next one). An acknowledged message above a gap stays stored, but is never handed out again.
 */
import type { Clock } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { NumberRows } from "../util/number-rows.js";

/** The contract's queue terms. */
export interface QueueTerms {
  /** Bytes of queued topic + payload at most. */
  readonly maxBytes: number;
  readonly overflow: "drop-oldest" | "reject-new";
  /** Messages older than this are dropped (cause "ttl"). */
  readonly ttlSeconds: number;
}

/** Why messages left the queue without being delivered. */
export type DropCause = "overflow" | "ttl" | "purge" | "corrupt";

/** A report of dropped messages, for the audit log (kind "queue"). */
export interface QueueDrop {
  readonly cause: DropCause;
  readonly count: number;
  readonly bytes: number;
  readonly fromSeq: number;
  readonly toSeq: number;
}

export type PushResult =
  | { readonly ok: true; readonly seq: number; readonly dropped: readonly QueueDrop[] }
  | { readonly ok: false; readonly reason: "overflow" | "too-large" | "frozen" | "failed"; readonly detail: string };

/** One queued message. */
export interface QueueItem {
  readonly seq: number;
  readonly topic: string;
  readonly payload: Uint8Array;
  /** Wall-clock ms when queued. */
  readonly enqueuedAt: number;
}

/** The queue as the UplinkManager sees it. */
export interface OutboundQueue {
  /**
   * Queues a message, applying the overflow policy. Resolves once the message is durable (for a
   * durable store). Never throws for a full queue or a bad size: that is a result.
   */
  push(topic: string, payload: Uint8Array): Promise<PushResult>;
  /**
   * The oldest message not yet acknowledged with a seq above `after` (default: none), or undefined
   * when there is none or the queue is frozen. A window walks the queue with `peek(lastSent)`.
   */
  peek(after?: number): QueueItem | undefined;
  /**
   * A queued message was delivered (in any order). Resolves once the cursor step that followed it is
   * durable: everything up to the highest contiguous acknowledged seq is then retired.
   * @throws PortcullisError(BadOption) when seq is not queued or already acknowledged.
   */
  ack(seq: number): Promise<void>;
  /** Messages acknowledged but not yet durably retired (above a gap of unacknowledged ones, or being written). */
  readonly acknowledged: number;
  /** Drops messages past their time to live (oldest first). */
  expire(): Promise<QueueDrop | undefined>;
  /** Drops everything at once (consent withdrawn, quarantine with purge terms). */
  purge(): Promise<QueueDrop | undefined>;
  /** Nothing is handed out (peek gives undefined) and nothing accepted until `thaw`. */
  freeze(): void;
  thaw(): void;
  readonly frozen: boolean;
  /** Queued topic + payload bytes. */
  readonly bytes: number;
  readonly count: number;
  /** The seq the next pushed message gets. */
  readonly nextSeq: number;
  /** What was lost before this boot (torn or corrupt records found at mount), if anything. */
  readonly recovered: QueueDrop | undefined;
}

/** What the store keeps about each queued message in RAM (the bytes may live on flash). */
export interface IndexEntry {
  readonly seq: number;
  readonly size: number;
  readonly enqueuedAt: number;
  /** Store-specific handle (the ring sequence number for the flash store). */
  readonly ref: number;
}

/**
 * The index in RAM is NumberRows of four columns, one row an IndexEntry (no object per queued message;
 * see src/util/number-rows.ts). A store builds its recovered index with `push(seq, size, enqueuedAt, ref)`.
 */
export const SEQ = 0;
export const SIZE = 1;
export const AT = 2;
export const REF = 3;

/** Row `i` of an index as an IndexEntry (for the store hooks), or undefined past its end. */
export function entryAt(index: NumberRows, i: number): IndexEntry | undefined {
  if (i < 0 || i >= index.length) return undefined;
  return { seq: index.get(i, SEQ), size: index.get(i, SIZE), enqueuedAt: index.get(i, AT), ref: index.get(i, REF) };
}

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

/** One mutation waiting its turn (see QueueBase #serial). */
interface Job {
  readonly op: () => Promise<unknown>;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** Queue policy over a store. Subclasses provide the four store hooks. */
export abstract class QueueBase implements OutboundQueue {
  readonly terms: QueueTerms;
  readonly #clock: Clock;
  readonly #index: NumberRows;
  /** Seqs acknowledged and still in the index (the cursor has not passed them yet). */
  readonly #acked = new Set<number>();
  /** Acknowledged messages whose consumption record is being written (not yet durably retired). */
  #retiring = 0;
  /** Seqs stored but not yet durable: never handed out (nor anything after them) until they are. */
  readonly #unsynced = new Set<number>();
  /** A cursor step is queued on the chain and has not started: later acks join it. */
  #advancing: Promise<void> | undefined;
  #bytes = 0;
  #frozen = false;
  #nextSeq: number;
  #failed: string | undefined;
  /** Mutations waiting their turn (pushes, sweeps, purges), in call order; `#head` is the next one. */
  #ops: Job[] = [];
  #head = 0;
  /** Cursor steps waiting: they go before any waiting push (see #serial). */
  readonly #urgent: Job[] = [];
  #running = false;
  readonly #onDrop: ((d: QueueDrop) => void) | undefined;
  recovered: QueueDrop | undefined;

  /**
   * `onDrop` hears of drops no call returns: a message that cannot be read back (dropped, never handed
   * out) and drops made for a push that then failed.
   * @throws PortcullisError(BadOption) on bad terms.
   */
  constructor(terms: QueueTerms, clock: Clock, recovered: { items: NumberRows; nextSeq: number; lost?: QueueDrop }, onDrop?: (d: QueueDrop) => void) {
    if (!(terms.maxBytes > 0) || !(terms.ttlSeconds > 0)) throw new PortcullisError(ErrorCode.BadOption, "queue maxBytes and ttlSeconds must be positive");
    if (terms.overflow !== "drop-oldest" && terms.overflow !== "reject-new") throw new PortcullisError(ErrorCode.BadOption, "overflow must be drop-oldest or reject-new");
    this.terms = terms;
    this.#clock = clock;
    this.#index = recovered.items;
    for (let i = 0; i < this.#index.length; i++) this.#bytes += this.#index.get(i, SIZE);
    this.#nextSeq = recovered.nextSeq;
    this.recovered = recovered.lost;
    this.#onDrop = onDrop;
  }

  /** Largest message (topic + payload bytes) the store can hold. */
  protected abstract maxItem(): number;
  /** True when the store has room for one more message of `size` bytes now. */
  protected abstract fits(size: number): boolean;
  /**
   * Stores a message; returns its ref at once and `durable`, which resolves once it is durable (a
   * group commit may batch several) or rejects on a store failure. May throw (a full store: Limit).
   */
  protected abstract store(item: QueueItem): { readonly ref: number; readonly durable: Promise<void> };
  /** Reads a message back. Undefined when the store lost it. */
  protected abstract load(entry: IndexEntry): { topic: string; payload: Uint8Array } | undefined;
  /**
   * Records that every message up to `through` is gone; `next` is the oldest one kept. The record is
   * made when it returns (throws on failure); the promise resolves once it is durable. A drop (any
   * cause but "ack") also frees its room before returning.
   */
  protected abstract consume(through: number, cause: DropCause | "ack", next: IndexEntry | undefined): Promise<void>;

  get frozen(): boolean {
    return this.#frozen;
  }
  get bytes(): number {
    return this.#bytes;
  }
  get count(): number {
    return this.#index.length;
  }
  get acknowledged(): number {
    return this.#acked.size + this.#retiring;
  }
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /**
   * The queue's bookkeeping runs one push at a time; the wait for durability does not, so the pushes
   * of one group-commit window share one flash program (and one fsync on the Node board).
   */
  async push(topic: string, payload: Uint8Array): Promise<PushResult> {
    const staged = await this.#serial(() => this._push(topic, payload));
    if (!("durable" in staged)) return staged;
    const r = staged.result;
    try {
      await staged.durable;
      return r;
    } catch (e) {
      // Not durable: it never leaves (it may or may not be on flash; the queue fails closed).
      const at = this._find(r.seq);
      if (at >= 0) {
        this.#bytes -= this.#index.get(at, SIZE);
        this.#index.removeAt(at);
      }
      this.#failed ??= `store failed: ${(e as Error).message}`;
      return this._refused(r.dropped, { ok: false, reason: "failed", detail: this.#failed });
    } finally {
      this.#unsynced.delete(r.seq);
    }
  }
  ack(seq: number): Promise<void> {
    const at = this._find(seq);
    if (at < 0) return Promise.reject(new PortcullisError(ErrorCode.BadOption, `ack of ${seq}, which is not queued`));
    if (this.#acked.has(seq)) return Promise.reject(new PortcullisError(ErrorCode.BadOption, `ack of ${seq} twice`));
    this.#acked.add(seq);
    // One cursor step per batch: an ack made while a step waits its turn rides along with it.
    this.#advancing ??= this.#serial(() => {
      this.#advancing = undefined;
      return Promise.resolve({ durable: this._advance() });
    }, true).then((step) => step.durable);
    return this.#advancing;
  }
  expire(): Promise<QueueDrop | undefined> {
    return this.#serial(() => this._expire());
  }
  purge(): Promise<QueueDrop | undefined> {
    return this.#serial(async () => (this.#index.length > 0 ? this._drop(this.#index.length, "purge") : undefined));
  }

  /**
   * Mutations run one at a time, so concurrent callers never interleave inside one: in call order,
   * except that a cursor step (`urgent`) runs as soon as the mutation under way ends, ahead of the
   * pushes waiting. Under intake load thousands of pushes may wait; a cursor step behind them would
   * hold the acknowledged messages in the uplink's window and starve it (issue 14).
   */
  #serial<T>(op: () => Promise<T>, urgent = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // A job is the op and its promise's own settle functions: no closure per mutation.
      const job: Job = { op, resolve: resolve as (v: unknown) => void, reject };
      if (urgent) this.#urgent.push(job);
      else this.#ops.push(job);
      // From idle, the first one starts in a microtask (never inside the caller's own statement).
      if (!this.#running) {
        this.#running = true;
        void Promise.resolve().then(this.#after);
      }
    });
  }

  /** Runs the next job once the current one settled (one function per queue, shared by every job). */
  readonly #after = (): void => this._next();

  /** Starts the next waiting mutation (cursor steps first), or marks the queue idle. */
  private _next(): void {
    let job = this.#urgent.shift();
    if (!job && this.#head < this.#ops.length) {
      job = this.#ops[this.#head++];
      // Compact now and then, so the array does not grow for ever nor shift on every call.
      if (this.#head > 1024 && this.#head * 2 > this.#ops.length) {
        this.#ops = this.#ops.slice(this.#head);
        this.#head = 0;
      }
    }
    if (!job) {
      this.#running = false;
      this.#ops.length = 0;
      this.#head = 0;
      return;
    }
    this.#running = true;
    let p: Promise<unknown>;
    try {
      p = job.op();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(job.resolve, job.reject).then(this.#after, this.#after);
  }

  private async _push(topic: string, payload: Uint8Array): Promise<PushResult | { readonly result: PushResult & { readonly ok: true }; readonly durable: Promise<void> }> {
    if (this.#failed) return { ok: false, reason: "failed", detail: this.#failed };
    if (this.#frozen) return { ok: false, reason: "frozen", detail: "queue frozen" };
    const size = utf8Length(topic) + payload.length;
    if (size > this.terms.maxBytes || size > this.maxItem()) {
      return { ok: false, reason: "too-large", detail: `${size} bytes exceeds ${Math.min(this.terms.maxBytes, this.maxItem())}` };
    }
    const dropped: QueueDrop[] = [];
    // Delivered messages leave first: never counted as dropped to make room.
    void this._advance();
    const expired = await this._expire();
    if (expired) dropped.push(expired);
    const full = (): boolean => this.#bytes + size > this.terms.maxBytes || !this.fits(size);
    if (full()) {
      if (this.terms.overflow === "reject-new" || this.#index.length === 0) {
        return { ok: false, reason: "overflow", detail: `queue holds ${this.#bytes} of ${this.terms.maxBytes} bytes` };
      }
      // How many of the oldest must go for the new one to fit (the byte bound and the store's room).
      const n = this._dropCount(size);
      if (n < 0) return { ok: false, reason: "overflow", detail: "the store has no room even when emptied" };
      const d = await this._drop(n, "overflow");
      if (d) dropped.push(d);
      if (this.#failed) return this._refused(dropped, { ok: false, reason: "failed", detail: this.#failed });
    }
    const seq = this.#nextSeq++;
    const enqueuedAt = this.#clock.now();
    let durable: Promise<void>;
    try {
      const stored = this.store({ seq, topic, payload, enqueuedAt });
      durable = stored.durable;
      this.#index.push(seq, size, enqueuedAt, stored.ref);
      this.#bytes += size;
      this.#unsynced.add(seq);
    } catch (e) {
      this.#nextSeq--;
      // A full store is an overflow (reported, nothing written); anything else fails the queue closed.
      if (e instanceof PortcullisError && e.code === ErrorCode.Limit) return this._refused(dropped, { ok: false, reason: "overflow", detail: e.message });
      this.#failed = `store failed: ${(e as Error).message}`;
      return this._refused(dropped, { ok: false, reason: "failed", detail: this.#failed });
    }
    return { result: { ok: true, seq, dropped }, durable };
  }

  /** A refusal after drops were made for it: the drops are still reported. */
  private _refused(dropped: readonly QueueDrop[], r: PushResult): PushResult {
    for (const d of dropped) this.#onDrop?.(d);
    return r;
  }

  peek(after = -1): QueueItem | undefined {
    if (this.#frozen || this.#failed) return undefined;
    for (let i = this._firstAbove(after); i < this.#index.length; i++) {
      const seq = this.#index.get(i, SEQ);
      if (this.#unsynced.has(seq)) return undefined;
      if (this.#acked.has(seq)) continue;
      const e = entryAt(this.#index, i)!;
      const data = this.load(e);
      if (data) return { seq: e.seq, topic: data.topic, payload: data.payload, enqueuedAt: e.enqueuedAt };
      // Unreadable (corrupt or tampered): never handed out; reported, and retired by the cursor as
      // if delivered (earlier messages may still be in flight, so it cannot be consumed on its own).
      this.#onDrop?.({ cause: "corrupt", count: 1, bytes: e.size, fromSeq: e.seq, toSeq: e.seq });
      void this.ack(e.seq).catch(() => undefined);
    }
    return undefined;
  }

  /** Index position of `seq`, or −1 (the index is sorted by seq). */
  private _find(seq: number): number {
    const i = this._firstAbove(seq - 1);
    return i < this.#index.length && this.#index.get(i, SEQ) === seq ? i : -1;
  }

  /** Index position of the first entry with a seq above `after` (binary search). */
  private _firstAbove(after: number): number {
    let lo = 0;
    let hi = this.#index.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#index.get(mid, SEQ) <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Records a consumption; resolves once it is durable. A store failure fails the queue closed here,
   * where it occurs (never thrown on, never rejected).
   */
  private _consumed(through: number, cause: DropCause | "ack", next: IndexEntry | undefined): Promise<void> {
    const fail = (e: unknown): void => {
      this.#failed ??= `consumption record failed: ${e instanceof Error ? e.message : String(e)}`;
    };
    try {
      return this.consume(through, cause, next).catch(fail);
    } catch (e) {
      fail(e);
      return Promise.resolve();
    }
  }

  /**
   * Retires the acknowledged prefix of the index with one consumption record (none when empty), at
   * once; resolves when that record is durable.
   */
  private _advance(): Promise<void> {
    let n = 0;
    let bytes = 0;
    while (n < this.#index.length && this.#acked.has(this.#index.get(n, SEQ))) {
      this.#acked.delete(this.#index.get(n, SEQ));
      bytes += this.#index.get(n, SIZE);
      n++;
    }
    if (n === 0) return Promise.resolve();
    const lastSeq = this.#index.get(n - 1, SEQ);
    this.#index.removeFront(n);
    this.#bytes -= bytes;
    this.#retiring += n;
    return this._consumed(lastSeq, "ack", entryAt(this.#index, 0)).then(() => {
      this.#retiring -= n;
    });
  }

  private async _expire(): Promise<QueueDrop | undefined> {
    const limit = this.#clock.now() - this.terms.ttlSeconds * 1000;
    let n = 0;
    while (n < this.#index.length && this.#index.get(n, AT) <= limit) n++;
    return n > 0 ? this._drop(n, "ttl") : undefined;
  }

  freeze(): void {
    this.#frozen = true;
  }
  thaw(): void {
    this.#frozen = false;
  }

  /** How many of the oldest messages must go so that `size` more bytes fit; −1 when never. */
  private _dropCount(size: number): number {
    let bytes = this.#bytes;
    for (let n = 1; n <= this.#index.length; n++) {
      bytes -= this.#index.get(n - 1, SIZE);
      if (bytes + size <= this.terms.maxBytes && this.fitsAfterDropping(entryAt(this.#index, n), size)) return n;
    }
    return -1;
  }

  /**
   * Whether `size` bytes fit once every message before `nextKept` is consumed. The RAM store has no
   * room limit of its own; the flash store frees whole sectors only (see flash-queue.ts).
   */
  protected fitsAfterDropping(_nextKept: IndexEntry | undefined, _size: number): boolean {
    return true;
  }

  private async _drop(n: number, cause: DropCause): Promise<QueueDrop | undefined> {
    const count = Math.min(n, this.#index.length);
    if (count <= 0) return undefined;
    const firstSeq = this.#index.get(0, SEQ);
    const lastSeq = this.#index.get(count - 1, SEQ);
    let bytes = 0;
    let lost = 0;
    let lostBytes = 0;
    for (let i = 0; i < count; i++) {
      const size = this.#index.get(i, SIZE);
      bytes += size;
      // A message acknowledged above a gap was delivered: it goes, but is not counted as dropped.
      if (this.#acked.delete(this.#index.get(i, SEQ))) continue;
      lost++;
      lostBytes += size;
    }
    this.#index.removeFront(count);
    this.#bytes -= bytes;
    await this._consumed(lastSeq, cause, entryAt(this.#index, 0));
    return lost > 0 ? { cause, count: lost, bytes: lostBytes, fromSeq: firstSeq, toSeq: lastSeq } : undefined;
  }
}

/** The queue in RAM: bounded the same way, lost on reboot. For tests and boards without a queue partition. */
export class MemoryQueue extends QueueBase {
  readonly #items = new Map<number, { topic: string; payload: Uint8Array }>();

  /** @throws PortcullisError(BadOption) on bad terms. */
  constructor(terms: QueueTerms, clock: Clock, firstSeq = 1) {
    super(terms, clock, { items: new NumberRows(4), nextSeq: firstSeq });
  }
  protected maxItem(): number {
    return Number.MAX_SAFE_INTEGER;
  }
  protected fits(): boolean {
    return true;
  }
  protected store(item: QueueItem): { ref: number; durable: Promise<void> } {
    this.#items.set(item.seq, { topic: item.topic, payload: item.payload.slice() });
    return { ref: item.seq, durable: Promise.resolve() };
  }
  protected load(e: IndexEntry): { topic: string; payload: Uint8Array } | undefined {
    const it = this.#items.get(e.ref);
    return it && { topic: it.topic, payload: it.payload.slice() };
  }
  protected consume(through: number): Promise<void> {
    for (const k of [...this.#items.keys()]) if (k <= through) this.#items.delete(k);
    return Promise.resolve();
  }
}
