/**
 * One integration's way out: owns the uplink session to the vendor, reconnects with exponential
 * backoff and full jitter (capped at 5 minutes), drains the queue in order with QoS 1 and a window of
 * up to `window` messages in flight (the board profile's `uplinkWindow`), seals each message at send
 * time in send order in the session's HPKE context (HPKE seq = envelope seq), and reports `uplink` and
 * `queue` audit events. PUBACKs may come in any order: each acknowledges its message to the queue,
 * whose cursor retires the contiguous prefix. A new session resends, in order, every message not
 * acknowledged (at least once; the vendor drops duplicates by envelope seq).
 *
 *   idle ──start──▶ connecting ──onConnect──▶ connected ──onClose──▶ waiting ──timer──▶ connecting
 *                       └──────────onClose──────────────────────────────▲
 *   any ──stop──▶ stopped (no callback after)
 */
import type { AuditEvent } from "../audit/types.js";
import type { Clock, Random, TimerId, Timers, Uplink, UplinkFailure, UplinkOptions, UplinkSession } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import type { EnvelopeSealer } from "./envelope.js";
import type { OutboundQueue, PushResult, QueueDrop } from "./queue.js";
import { PROFILES } from "../profiles.js";
import { meter } from "../util/meter.js";

export const DEFAULT_BACKOFF_BASE_MS = 1000;
/** The cap: never wait longer than 5 minutes between attempts. */
export const MAX_BACKOFF_MS = 5 * 60 * 1000;
export const DEFAULT_EXPIRE_EVERY_MS = 60 * 1000;
/**
 * Queue drops of the causes that come one per push under load (overflow, ttl) are written as one
 * record per cause and window, with their count (issue 14): never one record per push.
 */
export const DEFAULT_DROP_WINDOW_MS = 1000;
/** Longest a congested queue holds the devices; then, for CONGESTION_CALM_MS, its overflow policy alone. */
export const MAX_CONGESTION_HOLD_MS = 1000;
export const CONGESTION_CALM_MS = 5000;
const AGGREGATED_DROPS: readonly string[] = Object.freeze(["overflow", "ttl"]);

export type UplinkState = "idle" | "connecting" | "connected" | "waiting" | "stopped";

export interface UplinkManagerOptions {
  readonly integration: string;
  readonly uplink: Uplink;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
  readonly queue: OutboundQueue;
  readonly sealer: EnvelopeSealer;
  /** Where and how to connect (host, port, clientId, credentials, pins, keepalive). */
  readonly connection: Omit<UplinkOptions, "onConnect" | "onClose">;
  /** Audit events (kinds "uplink" and "queue"); the caller appends them to the log. Must not throw. */
  readonly onEvent: (event: AuditEvent) => void;
  readonly backoffBaseMs?: number;
  /** At most MAX_BACKOFF_MS. */
  readonly backoffCapMs?: number;
  readonly expireEveryMs?: number;
  /** QoS 1 messages in flight at once (1 = stop and wait). Default: the node profile's `uplinkWindow`. */
  readonly window?: number;
  /** Overflow and TTL drops within this window share one record (default DEFAULT_DROP_WINDOW_MS). */
  readonly dropWindowMs?: number;
}

/** Drops (with their seq range) or refusals of one cause in the current window, not yet written. */
interface Tally {
  readonly key: string;
  readonly reason: string;
  count: number;
  bytes: number;
  readonly fromSeq?: number;
  toSeq?: number;
  /** Reports (pushes, sweeps) folded into this record. */
  reports: number;
  /** The first refusal's explanation. */
  readonly detail?: string;
  readonly timer: TimerId | undefined;
}

/** Counters for the console and the data map. */
export interface UplinkStats {
  readonly state: UplinkState;
  readonly queued: number;
  readonly queuedBytes: number;
  /** Messages acknowledged by the vendor (PUBACK), their envelope and payload bytes. */
  readonly sent: number;
  readonly sentBytes: number;
  readonly payloadBytes: number;
  readonly dropped: Readonly<Record<string, number>>;
  readonly failures: Readonly<Record<string, number>>;
  readonly connects: number;
  readonly contexts: number;
  /** Messages sent and not yet acknowledged in this session; the window. */
  readonly inFlight: number;
  /** Acknowledged by the vendor, not yet durably retired by the queue's cursor (they hold the window too). */
  readonly acknowledged: number;
  readonly window: number;
}

/** Drives one integration's uplink. */
export class UplinkManager {
  readonly #o: UplinkManagerOptions;
  readonly #base: number;
  readonly #cap: number;
  #state: UplinkState = "idle";
  #session: UplinkSession | undefined;
  #attempt = 0;
  #retry: TimerId | undefined;
  #expiry: TimerId | undefined;
  readonly #window: number;
  #inFlight = 0;
  /** Seq of the newest message sent in this session (−1 before the first). */
  #lastSent = -1;
  #sent = 0;
  #sentBytes = 0;
  #payloadBytes = 0;
  #connects = 0;
  readonly #dropped: Record<string, number> = {};
  readonly #failures: Record<string, number> = {};
  readonly #tallies = new Map<string, Tally>();
  /** Drops and refusals recorded since boot, per "drop:<cause>" / "refused:<reason>" (the records' `total`). */
  readonly #recorded = new Map<string, number>();
  /** Messages queued when the queue last overflowed; congested until half of them have left. */
  #highWater = 0;
  /** Monotonic ms when this congestion began, and before which no new one may begin. */
  #congestedSince = 0;
  #calmUntil = 0;
  /** The last backoff delay chosen (for tests and the console). */
  lastDelayMs = 0;

  /** @throws PortcullisError(BadOption) on bad options. */
  constructor(options: UplinkManagerOptions) {
    if (!options.integration) throw new PortcullisError(ErrorCode.BadOption, "integration required");
    this.#base = options.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.#cap = Math.min(options.backoffCapMs ?? MAX_BACKOFF_MS, MAX_BACKOFF_MS);
    if (!(this.#base > 0) || !(this.#cap >= this.#base)) throw new PortcullisError(ErrorCode.BadOption, "backoff base must be positive and not above the cap");
    this.#window = options.window ?? PROFILES.node.limits.uplinkWindow;
    if (!Number.isInteger(this.#window) || this.#window < 1 || this.#window > 65535) throw new PortcullisError(ErrorCode.BadOption, "window must be an integer in 1..65535");
    this.#o = options;
  }

  get state(): UplinkState {
    return this.#state;
  }

  /** Starts connecting, and the periodic TTL sweep. Reports what was lost before this boot. */
  start(): void {
    if (this.#state !== "idle") return;
    const lost = this.#o.queue.recovered;
    if (lost) this.reportDrop(lost);
    this.#expiry = this.#o.timers.every(this.#o.expireEveryMs ?? DEFAULT_EXPIRE_EVERY_MS, () => {
      void this.#o.queue.expire().then((d) => d && this.reportDrop(d), () => undefined);
    });
    this._connect();
  }

  /**
   * Queues an allowed message for the vendor (sealed at send time) and sends it as soon as the uplink
   * allows. Drops made room for it are reported; a refusal is reported and returned.
   */
  async enqueue(topic: string, payload: Uint8Array): Promise<PushResult> {
    const r = await this.#o.queue.push(topic, payload);
    if (((r.ok && r.dropped.some((d) => d.cause === "overflow")) || (!r.ok && r.reason === "overflow")) && this.#highWater === 0) {
      const now = this.#o.clock.monotonic();
      if (now >= this.#calmUntil) {
        this.#highWater = Math.max(this.#o.queue.count, 2);
        this.#congestedSince = now;
      }
    }
    if (r.ok) {
      for (const d of r.dropped) this.reportDrop(d);
      this._pump();
    } else {
      this._reportRefusal(r.reason, payload.length, r.detail);
    }
    return r;
  }

  /**
   * The queue overflowed and has not yet drained to half of what it held then: the gateway stops
   * reading device sockets meanwhile (back-pressure before the queue's overflow policy, issue 14), so
   * the intake cannot take the whole event loop from the uplink. A frozen or disconnected uplink never
   * drains, so it does not count: its queue's overflow policy applies instead.
   */
  get congested(): boolean {
    if (this.#highWater === 0) return false;
    const now = this.#o.clock.monotonic();
    const held = now - this.#congestedSince >= MAX_CONGESTION_HOLD_MS;
    if (held || this.#state !== "connected" || this.#o.queue.frozen || this.#o.queue.count <= this.#highWater / 2) {
      this.#highWater = 0;
      // A vendor that stays connected but stops acknowledging must not hold the devices for good:
      // after a hold that did not drain, the overflow policy alone applies for a while.
      if (held) this.#calmUntil = now + CONGESTION_CALM_MS;
      return false;
    }
    return true;
  }

  /** Stops sending at once and keeps the queue (quarantine that freezes). */
  freeze(reason: string): void {
    this.#o.queue.freeze();
    this._event({ kind: "queue", decision: "info", reason: "freeze", detail: { why: reason, queued: this.#o.queue.count } });
  }

  /** Resumes sending after a freeze. */
  thaw(reason: string): void {
    this.#o.queue.thaw();
    this._event({ kind: "queue", decision: "info", reason: "thaw", detail: { why: reason, queued: this.#o.queue.count } });
    this._pump();
  }

  /** Stops sending at once and drops everything queued (consent withdrawn, or quarantine that purges). */
  async purge(reason: string): Promise<void> {
    this.#o.queue.freeze();
    const d = await this.#o.queue.purge();
    this._event({ kind: "queue", decision: "info", reason: "purge", detail: { why: reason, count: d?.count ?? 0, bytes: d?.bytes ?? 0 } });
    if (d) this._count(this.#dropped, d.cause, d.count);
    this.#o.queue.thaw();
  }

  /** Closes the session and stops every timer. Harmless twice; no event follows. */
  stop(): void {
    if (this.#state === "stopped") return;
    // Drops tallied so far are written before the last event: each drop is in the log once.
    this.flushDrops();
    this.#state = "stopped";
    if (this.#retry !== undefined) this.#o.timers.cancel(this.#retry);
    if (this.#expiry !== undefined) this.#o.timers.cancel(this.#expiry);
    this.#session?.close();
    this.#session = undefined;
  }

  stats(): UplinkStats {
    return {
      state: this.#state,
      queued: this.#o.queue.count,
      queuedBytes: this.#o.queue.bytes,
      sent: this.#sent,
      sentBytes: this.#sentBytes,
      payloadBytes: this.#payloadBytes,
      dropped: { ...this.#dropped },
      failures: { ...this.#failures },
      connects: this.#connects,
      contexts: this.#o.sealer.contextsStarted,
      inFlight: this.#inFlight,
      acknowledged: this.#o.queue.acknowledged,
      window: this.#window,
    };
  }

  /**
   * Full-jitter exponential backoff (the AWS Architecture Blog's "Exponential Backoff and Jitter"):
   * uniform in [0, min(cap, base × 2^attempt)].
   */
  backoffMs(attempt: number): number {
    const ceiling = Math.min(this.#cap, this.#base * 2 ** Math.min(attempt, 30));
    const r = new Uint8Array(4);
    this.#o.random.fill(r);
    const u = (((r[0] ?? 0) << 24) >>> 0) + ((r[1] ?? 0) << 16) + ((r[2] ?? 0) << 8) + (r[3] ?? 0);
    return Math.floor((u / 0x100000000) * (ceiling + 1));
  }

  private _connect(): void {
    if (this.#state === "stopped") return;
    this.#retry = undefined;
    this.#state = "connecting";
    let session: UplinkSession | undefined;
    const mine = (): boolean => this.#session === session && this.#state !== "stopped";
    session = this.#o.uplink.connect({
      ...this.#o.connection,
      onConnect: () => {
        if (!mine()) return;
        this.#state = "connected";
        this.#attempt = 0;
        this.#connects++;
        this.#inFlight = 0;
        this.#lastSent = -1;
        this.#o.sealer.reset();
        this._event({ kind: "uplink", decision: "info", reason: "connected", detail: { host: this.#o.connection.host, queued: this.#o.queue.count } });
        this._pump();
      },
      onClose: (reason, detail) => {
        if (!mine()) return;
        this.#session = undefined;
        this.#inFlight = 0;
        this.#lastSent = -1;
        this._closed(reason, detail);
      },
    });
    this.#session = session;
  }

  private _closed(reason: UplinkFailure, detail: string): void {
    this._count(this.#failures, reason);
    const delay = this.backoffMs(this.#attempt++);
    this.lastDelayMs = delay;
    this.#state = "waiting";
    const queued = this.#o.queue.count;
    // A failed handshake or pin mismatch is a denied flow (reason "tls"); the messages stay queued.
    this._event({
      kind: "uplink",
      decision: reason === "tls" ? "deny" : "info",
      reason,
      detail: { detail, queued, retryInMs: delay },
    });
    this.#retry = this.#o.timers.after(delay, () => this._connect());
  }

  /**
   * Fills the window: sends the next unacknowledged messages, in seq order, while the session is up.
   * The window counts what is in flight and what is acknowledged but not yet retired by the queue's
   * cursor, so a crash redelivers at most `window` messages the vendor may already have.
   */
  private _pump(): void {
    const session = this.#session;
    while (this.#inFlight + this.#o.queue.acknowledged < this.#window && this.#state === "connected" && session && this.#session === session) {
      const item = this.#o.queue.peek(this.#lastSent);
      if (!item) return;
      this.#lastSent = item.seq;
      let envelope: Uint8Array;
      const t0 = meter.start();
      try {
        envelope = this.#o.sealer.seal(item.seq, item.topic, item.payload);
        meter.stop("seal", t0);
      } catch (e) {
        meter.stop("seal", t0);
        // Cannot be sealed (a limit): it can never leave; drop it, audited, rather than block the queue.
        this._count(this.#dropped, "seal");
        this._event({ kind: "queue", decision: "deny", topic: item.topic, reason: "seal", detail: { seq: item.seq, detail: (e as Error).message } });
        this.#o.queue.ack(item.seq).then(() => this._pump(), () => undefined);
        continue;
      }
      this.#inFlight++;
      const t1 = meter.start();
      const sent = session.publish(item.topic, envelope, 1);
      meter.stop("uplink", t1);
      sent.then(
        () => {
          if (this.#session !== session) return;
          this.#inFlight--;
          this.#o.sealer.acknowledged();
          this.#sent++;
          this.#sentBytes += envelope.length;
          this.#payloadBytes += item.payload.length;
          // Acked even when frozen meanwhile (it was delivered). After a purge or TTL sweep it may
          // already be gone: the queue then refuses the ack, and there is nothing to do.
          this.#o.queue.ack(item.seq).then(() => this._pump(), () => undefined);
          this._pump();
        },
        () => {
          // The session closed first: the message stays queued and goes again in the next session.
        },
      );
    }
  }

  /**
   * Counts a drop (status) and records it: overflow and TTL drops are tallied per cause for
   * `dropWindowMs` and written as one record with the sum of their counts and the seq range they span
   * (drops take the oldest messages, so their seqs rise; the range may also span messages delivered
   * in between, which the count leaves out, as a single drop's range does). Other causes are written
   * at once. Every drop record also carries `total`: the drops of its cause since boot, so a reader
   * still gets the sum when the log has purged older records. A tally not yet written when the board
   * loses power is lost with RAM (at most one window of drop records; the messages were durable and
   * their consumption is on flash).
   */
  reportDrop(d: QueueDrop): void {
    this._count(this.#dropped, d.cause, d.count);
    if (!AGGREGATED_DROPS.includes(d.cause) || this.#state === "stopped") {
      this._writeTally({ key: "", reason: d.cause, count: d.count, bytes: d.bytes, fromSeq: d.fromSeq, toSeq: d.toSeq, reports: 1, timer: undefined });
      return;
    }
    const key = `drop:${d.cause}`;
    let t = this.#tallies.get(key);
    // Out of order (cannot happen from the head of one queue): the range would lie, so close it first.
    if (t && t.toSeq !== undefined && d.fromSeq <= t.toSeq) {
      this._flushTally(key);
      t = undefined;
    }
    if (t) {
      t.count += d.count;
      t.bytes += d.bytes;
      t.toSeq = d.toSeq;
      t.reports++;
      return;
    }
    this.#tallies.set(key, { key, reason: d.cause, count: d.count, bytes: d.bytes, fromSeq: d.fromSeq, toSeq: d.toSeq, reports: 1, timer: this._tallyTimer(key) });
  }

  /** A refused push (never given a seq): tallied per reason and window like the drops. */
  private _reportRefusal(reason: string, bytes: number, detail: string): void {
    this._count(this.#dropped, reason);
    const key = `refused:${reason}`;
    const t = this.#tallies.get(key);
    if (t && this.#state !== "stopped") {
      t.count++;
      t.bytes += bytes;
      t.reports++;
      return;
    }
    const tally: Tally = { key, reason, count: 1, bytes, reports: 1, detail, timer: undefined };
    if (this.#state === "stopped") this._writeTally(tally);
    else this.#tallies.set(key, { ...tally, timer: this._tallyTimer(key) });
  }

  /** Writes the drop and refusal tallies of the current window now (stop, shutdown, tests). */
  flushDrops(): void {
    for (const key of Array.from(this.#tallies.keys())) this._flushTally(key);
  }

  private _tallyTimer(key: string): TimerId {
    return this.#o.timers.after(this.#o.dropWindowMs ?? DEFAULT_DROP_WINDOW_MS, () => this._flushTally(key));
  }

  private _flushTally(key: string): void {
    const t = this.#tallies.get(key);
    if (!t) return;
    this.#tallies.delete(key);
    if (t.timer !== undefined) this.#o.timers.cancel(t.timer);
    this._writeTally(t);
  }

  private _writeTally(t: Tally): void {
    const totalKey = `${t.fromSeq === undefined ? "refused" : "drop"}:${t.reason}`;
    const total = (this.#recorded.get(totalKey) ?? 0) + t.count;
    this.#recorded.set(totalKey, total);
    const detail: Record<string, number | string> = { count: t.count, bytes: t.bytes, total };
    if (t.fromSeq !== undefined && t.toSeq !== undefined) {
      detail.fromSeq = t.fromSeq;
      detail.toSeq = t.toSeq;
    }
    if (t.reports > 1) detail.reports = t.reports;
    if (t.detail !== undefined) detail.detail = t.detail;
    // Written even after stop (a drop must never go unrecorded); _event would skip it.
    this.#o.onEvent({ kind: "queue", decision: "deny", integration: this.#o.integration, reason: t.reason, detail });
  }

  private _count(table: Record<string, number>, key: string, n = 1): void {
    table[key] = (table[key] ?? 0) + n;
  }

  private _event(e: Omit<AuditEvent, "integration">): void {
    if (this.#state === "stopped") return;
    this.#o.onEvent({ ...e, integration: this.#o.integration });
  }
}
