/**
 * The message path's CPU meter, per stage (issue 9, "A fraction of the CPU per message"): where the
 * time of one device message goes, measured on the board itself with its CPU clock
 * (Clock.cpuMicros: the XS thread's CPU time on the lin firmware, so other processes on a shared
 * machine do not count). Off by default; the console's `profile` command turns it on and reports.
 *
 * Times are exclusive: a stage that runs inside another (an audit record written while the policy
 * decides, say) is charged to itself and taken out of the outer one, so the stages add up to the
 * metered time and never count a microsecond twice. Stages are synchronous spans: `start` and `stop`
 * of one span run in the same turn of the event loop, so an await inside a stage ends it.
 *
 * One meter per machine (module state): the stages sit deep in the core (session, policy, audit log,
 * outbound), and threading an object through each constructor would cost a slot per instance for a
 * diagnostic. When off, a stage costs a method call and a comparison.
 */

/** The stages, in the order a forwarded message meets them. */
export const STAGES = Object.freeze([
  /** Bytes from a device socket: MQTT decode and the session/broker handling around the others. */
  "receive",
  /** The policy engine's decision: contract match, minimization, pseudonyms, rate limits. */
  "policy",
  /** The gateway's side of the audit log for one decision (summaries, aggregation). */
  "audit",
  /** One audit record written: encode, hash chain, encryption at rest, the ring's buffer. */
  "record",
  /** An allowed message handed to its integration's flash queue. */
  "queue",
  /** The envelope: HPKE seal to the vendor's key. */
  "seal",
  /** The uplink's MQTT publish: encode and the TLS write it triggers. */
  "uplink",
  /** The board's flash store under NorFlash: reads, programs (with the NOR rule check) and erases. */
  "flash",
  /** The board's device sockets around the core: reading TCP, the send queue (hosts' Network port). */
  "network",
  /** The vendor side after the publish: TLS records in and out, the MQTT client's parsing of PUBACKs. */
  "vendor",
] as const);

export type Stage = (typeof STAGES)[number];

/** Each stage's position in STAGES (derived, so the two cannot drift apart). */
const INDEX = Object.freeze(Object.fromEntries(STAGES.map((s, i) => [s, i]))) as Readonly<Record<Stage, number>>;
const MAX_DEPTH = 16;

/** One stage's figures since the last reset. */
export interface StageFigure {
  readonly stage: Stage;
  /** Spans measured. */
  readonly count: number;
  /** Exclusive CPU microseconds. */
  readonly micros: number;
}

export interface MeterReport {
  readonly stages: readonly StageFigure[];
  /** CPU microseconds since the last reset, metered or not (the rest is timers, sockets, GC outside stages). */
  readonly totalMicros: number;
}

/**
 * Plain (TypeScript-private) properties, not `#` fields: the one instance is built at preload on the
 * device, and XS copies a preloaded object to RAM on its first write only for ordinary properties (a
 * `#` field write fails there with "undefined private property").
 */
class StageMeter {
  private _now: (() => number) | undefined;
  private _totals: Float64Array | undefined;
  private _counts: Float64Array | undefined;
  /** Per open span: the time its nested spans took (exclusive accounting). */
  private _inner: Float64Array | undefined;
  /** Per open span: the CPU time it started. */
  private _starts: Float64Array | undefined;
  private _depth = 0;
  private _since = 0;

  /** Turns the meter on with a CPU clock in microseconds, or off (undefined). Resets the figures. */
  use(now: (() => number) | undefined): void {
    this._now = now;
    if (now === undefined) {
      this._totals = this._counts = this._inner = this._starts = undefined;
      return;
    }
    // Allocated when turned on (never at preload, where a module's buffers would sit in flash).
    this._totals = new Float64Array(STAGES.length);
    this._counts = new Float64Array(STAGES.length);
    this._inner = new Float64Array(MAX_DEPTH);
    this._starts = new Float64Array(MAX_DEPTH);
    this.reset();
  }

  get on(): boolean {
    return this._now !== undefined;
  }

  reset(): void {
    this._totals?.fill(0);
    this._counts?.fill(0);
    this._depth = 0;
    this._since = this._now?.() ?? 0;
  }

  /**
   * Opens a span: its depth, to give back to `stop`, or -1 when the meter is off (then `stop` does
   * nothing). A span left open by an exception is closed by the next `stop` of an outer one.
   */
  start(): number {
    const now = this._now;
    if (now === undefined || this._depth >= MAX_DEPTH) return -1;
    const d = this._depth++;
    this._inner![d] = 0;
    this._starts![d] = now();
    return d;
  }

  /** Closes the span `start` opened (`span` its answer) and charges it, less its nested spans, to `stage`. */
  stop(stage: Stage, span: number): void {
    const now = this._now;
    if (span < 0 || now === undefined || span >= this._depth) return;
    const elapsed = now() - this._starts![span]!;
    const inner = this._inner!;
    this._depth = span;
    const i = INDEX[stage];
    this._totals![i] = this._totals![i]! + Math.max(0, elapsed - inner[span]!);
    this._counts![i] = this._counts![i]! + 1;
    if (span > 0) inner[span - 1] = inner[span - 1]! + elapsed;
  }

  report(): MeterReport {
    const stages: StageFigure[] = [];
    const totals = this._totals;
    const counts = this._counts;
    if (totals !== undefined && counts !== undefined) {
      for (let i = 0; i < STAGES.length; i++) stages.push({ stage: STAGES[i]!, count: counts[i]!, micros: totals[i]! });
    }
    return { stages, totalMicros: this._now === undefined ? 0 : this._now() - this._since };
  }
}

/** The machine's meter. */
export const meter = new StageMeter();

/**
 * The `profile` line: the device messages (one policy decision each), the CPU time, then per stage
 * `<stage> <spans> <µs total> <µs per message>`, and the unmetered rest (timers, socket callbacks, GC).
 */
export function meterLine(r: MeterReport): string {
  const messages = r.stages.find((s) => s.stage === "policy")?.count ?? 0;
  let metered = 0;
  const parts: string[] = [];
  const per = (us: number): string => (messages > 0 ? us / messages : 0).toFixed(1);
  for (const s of r.stages) {
    metered += s.micros;
    parts.push(`${s.stage} ${s.count} ${Math.round(s.micros)} ${per(s.micros)}`);
  }
  const rest = Math.max(0, r.totalMicros - metered);
  parts.push(`other - ${Math.round(rest)} ${per(rest)}`);
  return `profile: ${messages} messages ${Math.round(r.totalMicros)} us; ${parts.join("; ")}`;
}
