/**
 * Bridge mode at run time: one client session to the home broker, reconnected with exponential
 * backoff. Each message is attributed to a device by `homeBroker.devices[].pattern` and handed to the
 * same pipeline as a direct device publish (contract evaluation, durable audit, outbound). A topic no
 * pattern claims is denied and recorded in aggregate: one record per topic and minute, with a count.
 */
import type { AuditEvent } from "../audit/types.js";
import type { Clock, HomeBroker, HomeBrokerSession, TimerId, Timers, UplinkFailure } from "../ports.js";
import { topicMatches } from "../mqtt/topic.js";
import { AGGREGATE_WINDOW_MS, Tally } from "../mqtt/tally.js";
import type { HomeBrokerConfig } from "./config.js";

export type BridgeState = "connecting" | "up" | "down" | "closed";

export interface BridgeStatus {
  readonly url: string;
  readonly state: BridgeState;
  /** Wall-clock ms of the last state change. */
  readonly since: number;
  /** Failed attempts since the link was last up. */
  readonly failures: number;
  readonly lastError?: string;
  /** While down: ms until the next attempt. */
  readonly retryInMs?: number;
  readonly received: number;
  readonly unmatched: number;
}

export interface HomeBridgeOptions {
  readonly port: HomeBroker;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly config: HomeBrokerConfig;
  /** The password, resolved by the host (`password` or `passwordFile`). */
  readonly password?: string;
  /** PEM trust anchors, resolved by the host from `ca`. */
  readonly caPem?: string;
  /** The direct-publish pipeline; resolves once the decisions are durably recorded. */
  ingest(device: string, topic: string, payload: Uint8Array): Promise<void>;
  record(event: AuditEvent): void;
}

export class HomeBridge {
  readonly #o: HomeBridgeOptions;
  readonly #unmatched: Tally;
  #session: HomeBrokerSession | undefined;
  #retry: TimerId | undefined;
  #retryAt = 0;
  #state: BridgeState = "down";
  #since: number;
  #failures = 0;
  #lastError: string | undefined;
  #received = 0;
  #unmatchedCount = 0;

  constructor(o: HomeBridgeOptions) {
    this.#o = o;
    this.#since = o.clock.now();
    this.#unmatched = new Tally(o.timers, AGGREGATE_WINDOW_MS, 16, o.record);
  }

  /** The device a home-broker topic belongs to and the topic it is evaluated as, or undefined. */
  route(topic: string): { device: string; topic: string } | undefined {
    for (const d of this.#o.config.devices) if (topicMatches(d.pattern, topic)) return { device: d.id, topic: d.topic ?? topic };
    return undefined;
  }

  start(): void {
    if (this.#state === "closed" || this.#session) return;
    this._set("connecting");
    const c = this.#o.config;
    let current: HomeBrokerSession | undefined;
    let ended = false;
    const session = this.#o.port.connect({
      url: c.url,
      clientId: c.clientId,
      keepalive: c.keepalive,
      subscribe: c.subscribe,
      ...(c.username === undefined ? {} : { username: c.username }),
      ...(this.#o.password === undefined ? {} : { password: this.#o.password }),
      ...(this.#o.caPem === undefined ? {} : { ca: this.#o.caPem }),
      onConnect: () => {
        if (ended || this.#state === "closed") return;
        const after = this.#failures;
        this.#failures = 0;
        this.#lastError = undefined;
        this._set("up");
        this.#o.record({ kind: "uplink", decision: "info", reason: "home-broker-up", detail: { url: c.url, failures: after } });
      },
      onMessage: (topic, payload) => this._message(topic, payload),
      onClose: (reason: UplinkFailure, detail: string) => {
        if (ended) return;
        ended = true;
        if (this.#session === current) this.#session = undefined;
        if (this.#state === "closed") return;
        const wasUp = this.#state === "up";
        this.#failures++;
        this.#lastError = `${reason}: ${detail}`.slice(0, 160);
        this._set("down");
        if (wasUp || this.#failures === 1) this.#o.record({ kind: "uplink", decision: "info", reason: "home-broker-down", detail: { url: c.url, why: reason, detail: detail.slice(0, 120) } });
        const wait = Math.min(c.reconnectMaxMs, c.reconnectMinMs * 2 ** Math.min(this.#failures - 1, 20));
        this.#retryAt = this.#o.clock.monotonic() + wait;
        this.#retry = this.#o.timers.after(wait, () => {
          this.#retry = undefined;
          this.start();
        });
      },
    });
    current = session;
    if (!ended) this.#session = session;
  }

  private _message(topic: string, payload: Uint8Array): Promise<void> {
    if (this.#state === "closed") return Promise.reject(new Error("bridge closed"));
    this.#received++;
    const r = this.route(topic);
    if (r === undefined) {
      this.#unmatchedCount++;
      // Fail closed: a message no device claims is never evaluated as anyone's.
      this.#unmatched.add(topic, { kind: "flow", decision: "deny", topic, reason: "bridge-unmatched", detail: { bytes: payload.length } });
      return Promise.resolve();
    }
    return this.#o.ingest(r.device, r.topic, payload);
  }

  private _set(state: BridgeState): void {
    this.#state = state;
    this.#since = this.#o.clock.now();
  }

  status(): BridgeStatus {
    return {
      url: this.#o.config.url,
      state: this.#state,
      since: this.#since,
      failures: this.#failures,
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
      ...(this.#state === "down" && this.#retry !== undefined ? { retryInMs: Math.max(0, this.#retryAt - this.#o.clock.monotonic()) } : {}),
      received: this.#received,
      unmatched: this.#unmatchedCount,
    };
  }

  /** Closes the link; no reconnect follows. */
  close(): void {
    if (this.#state === "closed") return;
    this._set("closed");
    if (this.#retry !== undefined) this.#o.timers.cancel(this.#retry);
    this.#retry = undefined;
    this.#session?.close();
    this.#session = undefined;
    this.#unmatched.flushAll();
  }
}
