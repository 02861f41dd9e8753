/**
 * Detection: the gateway's own alarms (records of kind `alarm`, shown on the console at once), from
 * what already passes through it. Each counter is per key (device, or source address) over a fixed
 * window of monotonic time; reaching the threshold raises one alarm, and the key stays quiet for the
 * rest of that window.
 *
 *   undeclared-fields  a device's messages lost fields to minimization N times (fields its contracts
 *                      do not declare, or declare without the household's consent)
 *   rate-limited       a device's flows were denied by a rate limit N times (broker or contract)
 *   auth-failures      N failed authentications (MQTT CONNECT or admin HTTPS) from one address
 *   tls-mismatch       a vendor uplink's TLS handshake or certificate pin failed (possible
 *                      interception): at the first one in a window, per integration
 *   log-near-full      the audit partition is 90% full under legal hold (records will be refused);
 *                      `total` is what ordinary records may fill (the partition less the log's reserve)
 */
import type { Clock } from "../ports.js";
import type { AuditEvent } from "../audit/types.js";
import { addressOf } from "../admin/throttle.js";

export interface AlarmThresholds {
  readonly undeclaredFields: number;
  readonly rateLimited: number;
  readonly authFailures: number;
  readonly windowMs: number;
}

export const DEFAULT_ALARM_THRESHOLDS: AlarmThresholds = Object.freeze({ undeclaredFields: 3, rateLimited: 20, authFailures: 10, windowMs: 60_000 });

/** Most keys counted at once (a flood of source addresses cannot grow memory). */
export const MAX_ALARM_KEYS = 64;

export class AlarmDetector {
  readonly #clock: Pick<Clock, "monotonic">;
  readonly #t: AlarmThresholds;
  readonly #raise: (event: AuditEvent, text: string) => void;
  readonly #counts = new Map<string, { start: number; n: number; raised: boolean }>();

  constructor(o: { clock: Pick<Clock, "monotonic">; thresholds?: Partial<AlarmThresholds>; raise: (event: AuditEvent, text: string) => void }) {
    this.#clock = o.clock;
    this.#t = { ...DEFAULT_ALARM_THRESHOLDS, ...(o.thresholds ?? {}) };
    this.#raise = o.raise;
  }

  /**
   * Sees one flow decision of a device; `fieldsUndeclared` is the decision's count of fields no
   * contract of the device declares (FlowDecision.fieldsUndeclared), whatever the verdict.
   */
  flow(device: string, integration: string | null, verdict: string, reason: string, fieldsUndeclared: number): void {
    if (fieldsUndeclared > 0) this._count(`undeclared|${device}`, 1, this.#t.undeclaredFields, () => [{ kind: "alarm", decision: "info", device, ...(integration ? { integration } : {}), reason: "undeclared-fields", detail: { fields: fieldsUndeclared } }, `${device} keeps sending fields no contract of it declares (${fieldsUndeclared} in the last message): dropped`]);
    if (verdict === "deny" && (reason === "rate-limited" || reason === "rate-limit")) this._count(`rate|${device}`, 1, this.#t.rateLimited, () => [{ kind: "alarm", decision: "info", device, reason: "rate-limited" }, `${device}: flows denied by rate limit ${this.#t.rateLimited} times within ${this.#t.windowMs / 1000} s`]);
  }

  /** Sees an event on its way to the log (authentication failures, broker rate-limit tallies). */
  event(e: AuditEvent): void {
    const remote = typeof e.detail?.remote === "string" ? addressOf(e.detail.remote) : undefined;
    const n = typeof e.detail?.count === "number" ? e.detail.count : 1;
    const authFail = (e.kind === "auth" && e.decision === "deny" && e.reason === "not-authorized" && e.detail?.op === undefined) || (e.kind === "admin" && e.decision === "deny" && (e.reason === "bad-token" || e.reason === "no-token"));
    if (authFail) {
      const via = e.kind === "auth" ? "MQTT" : "HTTPS";
      this._count(`auth|${via}|${remote ?? "?"}`, n, this.#t.authFailures, () => [{ kind: "alarm", decision: "info", reason: "auth-failures", detail: { via, remote: remote ?? null } }, `authentication-failure burst on ${via} from ${remote ?? "an unknown address"}`]);
    }
    if (e.kind === "uplink" && e.decision === "deny" && e.reason === "tls") {
      const i = e.integration ?? "?";
      this._count(`tls|${i}`, 1, 1, () => [{ kind: "alarm", decision: "info", ...(e.integration ? { integration: e.integration } : {}), reason: "tls-mismatch", detail: { what: typeof e.detail?.detail === "string" ? e.detail.detail.slice(0, 120) : null } }, `vendor TLS handshake or pin mismatch for ${i}: possible interception`]);
    }
    const device = e.device;
    if (e.kind === "flow" && e.decision === "deny" && e.reason === "rate-limit" && device) this._count(`rate|${device}`, n, this.#t.rateLimited, () => [{ kind: "alarm", decision: "info", device: device, reason: "rate-limited" }, `${device}: flows denied by rate limit ${this.#t.rateLimited} times within ${this.#t.windowMs / 1000} s`]);
  }

  #nearFull = false;

  /** Sees the audit partition's fill; raises once each time it crosses 90% under a legal hold. */
  logFill(used: number, total: number, held: string | undefined): void {
    const near = held !== undefined && used >= 0.9 * total;
    if (near && !this.#nearFull) this.#raise({ kind: "alarm", decision: "info", reason: "log-near-full", detail: { used, total, hold: held ?? null } }, `audit log ${Math.floor((100 * used) / total)}% full under legal hold: records will be refused when full (export, then lift the hold when allowed)`);
    this.#nearFull = near;
  }

  /** Counts toward `key`'s alarm; `make` builds the alarm and its text only when it is raised (this runs per message). */
  private _count(key: string, n: number, threshold: number, make: () => readonly [AuditEvent, string]): void {
    const now = this.#clock.monotonic();
    let c = this.#counts.get(key);
    if (!c || now - c.start >= this.#t.windowMs) {
      if (!c && this.#counts.size >= MAX_ALARM_KEYS) {
        // Forget the oldest window first.
        const oldest = this.#counts.keys().next().value;
        if (oldest !== undefined) this.#counts.delete(oldest);
      }
      c = { start: now, n: 0, raised: false };
      this.#counts.delete(key);
      this.#counts.set(key, c);
    }
    c.n += n;
    if (!c.raised && c.n >= threshold) {
      c.raised = true;
      const [alarm, text] = make();
      this.#raise({ ...alarm, detail: { ...(alarm.detail ?? {}), count: c.n, windowMs: this.#t.windowMs } }, text);
    }
  }
}
