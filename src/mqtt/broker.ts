/** The device-side MQTT 3.1.1 broker: admits sessions, routes device publishes to the gateway and back. */
import type { AuditEvent } from "../audit/types.js";
import type { Clock, DeviceSocket, SocketHandler, Timers } from "../ports.js";
import { MAX_PACKET_BYTES } from "./packets.js";
import { PUBLISH_BURST, PUBLISH_RATE_PER_SEC } from "./rate.js";
import { Session, addressOf, type SessionHost, type SessionLimits } from "./session.js";
import { AGGREGATE_WINDOW_MS, MAX_AGGREGATE_KEYS, Tally } from "./tally.js";
import { isValidTopicName, topicMatches } from "./topic.js";

/** Connected devices at once; one more gets CONNACK 3. */
export const MAX_CONNECTIONS = 16;
/**
 * Sockets accepted but not yet through CONNECT, from all addresses together (the shared pool). A new
 * socket beyond it evicts the oldest such socket, so idle or slow-CONNECT sockets cannot lock devices out.
 */
export const MAX_PENDING_CONNECTIONS = 16;
/** Sockets awaiting CONNECT from one source address; a new one beyond it evicts that address's oldest. */
export const MAX_PENDING_PER_ADDRESS = 2;
/** Device PUBLISHes handed to the gateway and not yet accepted, per session; at the limit reading pauses. */
export const MAX_PENDING_ACCEPTS = 8;
/** Subscriptions one device may hold; more get SUBACK 0x80. */
export const MAX_SUBSCRIPTIONS_PER_CLIENT = 16;
/** Unacknowledged QoS 1 messages to one device (and messages queued on a blocked socket). */
export const MAX_INFLIGHT = 8;
/** Time a new socket has to send CONNECT. */
export const CONNECT_TIMEOUT_MS = 10000;
/** Longest client id, in UTF-8 bytes (§3.1.3.1 requires servers to allow 23). */
export const MAX_CLIENT_ID_BYTES = 64;

export interface BrokerLimits {
  readonly maxConnections?: number;
  readonly maxPendingConnections?: number;
  readonly maxPacketBytes?: number;
  readonly maxSubscriptionsPerClient?: number;
  readonly maxInflight?: number;
  readonly connectTimeoutMs?: number;
  readonly maxClientIdBytes?: number;
  readonly maxPendingPerAddress?: number;
  readonly maxPendingAccepts?: number;
  /** Sustained device PUBLISHes per second (token bucket refill). */
  readonly publishRatePerSec?: number;
  /** Token bucket size: PUBLISHes a quiet device may send at once. */
  readonly publishBurst?: number;
  /** Window of aggregated records (evictions, rate-limited publishes). */
  readonly aggregateWindowMs?: number;
}

export interface BrokerOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** The gateway's per-device credential check. A throw counts as a refusal. */
  authenticate(clientId: string, username: string | undefined, password: Uint8Array | undefined): boolean;
  /** Whether a device may subscribe to `filter`. Default: allow. A throw counts as a refusal. */
  authorizeSubscribe?(clientId: string, filter: string): boolean;
  /**
   * Device → gateway, also for will messages. Returning means accepted (a QoS 1 PUBACK follows);
   * returning a promise means accepted once it resolves (the PUBACK waits for it, in arrival order);
   * throwing or rejecting means not accepted (no PUBACK, and the connection is closed).
   */
  onPublish(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1): void | Promise<void>;
  /** Audit events (see SPEC.md "MQTT on the device side"). A throw is swallowed. */
  onEvent(event: AuditEvent): void;
  readonly limits?: BrokerLimits;
}

function limit(value: number | undefined, fallback: number, name: string, min: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`limits.${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

const INERT: SocketHandler = Object.freeze({ onData() {}, onClose() {} });

/** The broker; see the file comment and SPEC.md "MQTT on the device side". */
export class Broker {
  readonly #options: BrokerOptions;
  readonly #maxConnections: number;
  readonly #maxPending: number;
  readonly #maxPerAddress: number;
  readonly #host: SessionHost;
  readonly #tally: Tally;
  /** Every open session, connected or not. */
  readonly #sessions = new Set<Session>();
  /** Sessions awaiting CONNECT, oldest first (Set keeps insertion order). */
  readonly #pending = new Set<Session>();
  /** Connected sessions by client id. */
  readonly #byId = new Map<string, Session>();
  #closed = false;

  /**
   * @throws TypeError when a required callback or port is missing; RangeError for a bad limit.
   */
  constructor(options: BrokerOptions) {
    if (!options || typeof options !== "object") throw new TypeError("options required");
    if (typeof options.clock?.monotonic !== "function") throw new TypeError("clock required");
    if (typeof options.timers?.after !== "function") throw new TypeError("timers required");
    for (const name of ["authenticate", "onPublish", "onEvent"] as const) {
      if (typeof options[name] !== "function") throw new TypeError(`${name} required`);
    }
    if (options.authorizeSubscribe !== undefined && typeof options.authorizeSubscribe !== "function") {
      throw new TypeError("authorizeSubscribe must be a function");
    }
    const l = options.limits ?? {};
    this.#options = options;
    this.#maxConnections = limit(l.maxConnections, MAX_CONNECTIONS, "maxConnections", 1);
    this.#maxPending = limit(l.maxPendingConnections, MAX_PENDING_CONNECTIONS, "maxPendingConnections", 1);
    this.#maxPerAddress = limit(l.maxPendingPerAddress, MAX_PENDING_PER_ADDRESS, "maxPendingPerAddress", 1);
    const limits: SessionLimits = Object.freeze({
      maxPacketBytes: limit(l.maxPacketBytes, MAX_PACKET_BYTES, "maxPacketBytes", 64),
      maxSubscriptionsPerClient: limit(l.maxSubscriptionsPerClient, MAX_SUBSCRIPTIONS_PER_CLIENT, "maxSubscriptionsPerClient", 0),
      maxInflight: limit(l.maxInflight, MAX_INFLIGHT, "maxInflight", 1),
      connectTimeoutMs: limit(l.connectTimeoutMs, CONNECT_TIMEOUT_MS, "connectTimeoutMs", 1),
      maxClientIdBytes: limit(l.maxClientIdBytes, MAX_CLIENT_ID_BYTES, "maxClientIdBytes", 23),
      maxPendingAccepts: limit(l.maxPendingAccepts, MAX_PENDING_ACCEPTS, "maxPendingAccepts", 1),
      publishRatePerSec: limit(l.publishRatePerSec, PUBLISH_RATE_PER_SEC, "publishRatePerSec", 1),
      publishBurst: limit(l.publishBurst, PUBLISH_BURST, "publishBurst", 1),
      aggregateWindowMs: limit(l.aggregateWindowMs, AGGREGATE_WINDOW_MS, "aggregateWindowMs", 1),
    });
    this.#tally = new Tally(options.timers, limits.aggregateWindowMs, MAX_AGGREGATE_KEYS, (e) => this.#host.event(e));
    this.#host = this.#makeHost(limits);
  }

  #makeHost(limits: SessionLimits): SessionHost {
    const o = this.#options;
    return {
      clock: o.clock,
      timers: o.timers,
      limits,
      authenticate: (id, user, pass) => guard(() => o.authenticate(id, user, pass) === true),
      authorizeSubscribe: (id, filter) => (o.authorizeSubscribe ? guard(() => o.authorizeSubscribe!(id, filter) === true) : true),
      publish: (id, topic, payload, qos) => o.onPublish(id, topic, payload, qos),
      event: (e) => {
        try {
          o.onEvent(e);
        } catch {
          // The audit sink's failure is its own to report; the broker must not fail with it.
        }
      },
      tally: (key, e) => this.#tally.add(key, e),
      admit: (s) => this.#admit(s),
      closed: (s) => {
        this.#sessions.delete(s);
        this.#pending.delete(s);
        if (s.authenticated && s.clientId !== undefined) this.#tally.flush(`rate-limit|${s.clientId}`);
        if (s.clientId !== undefined && this.#byId.get(s.clientId) === s) this.#byId.delete(s.clientId);
      },
    };
  }

  #admit(s: Session): "new" | "takeover" | "full" {
    const id = s.clientId!;
    const old = this.#byId.get(id);
    if (old === undefined && this.#byId.size >= this.#maxConnections) return "full";
    old?.close("takeover"); // §3.1.4: the server disconnects the existing client
    this.#pending.delete(s);
    this.#byId.set(id, s);
    return old === undefined ? "new" : "takeover";
  }

  /** Wires one accepted device socket to a new session (pass to `Network.listen` as `onConnection`). */
  accept(socket: DeviceSocket): SocketHandler {
    if (this.#closed) {
      this.#host.event({ kind: "connect", decision: "deny", reason: "shutdown", detail: { remote: socket.remote } });
      socket.close();
      return INERT;
    }
    // Room for the newcomer: its address's oldest pending socket at the per-address limit, else the
    // oldest pending socket of all at the shared limit. A device that sends CONNECT at once is read
    // long before enough newer sockets arrive to make it the oldest.
    const address = addressOf(socket.remote);
    let same = 0;
    let oldestSame: Session | undefined;
    for (const s of this.#pending) {
      if (s.address !== address) continue;
      same++;
      oldestSame ??= s;
    }
    if (same >= this.#maxPerAddress) this.#evict(oldestSame!);
    else if (this.#pending.size >= this.#maxPending) this.#evict(this.#pending.values().next().value!);
    const session = new Session(this.#host, socket);
    this.#sessions.add(session);
    this.#pending.add(session);
    return session;
  }

  /** Closes a socket still awaiting CONNECT; recorded in aggregate per source address. */
  #evict(s: Session): void {
    this.#pending.delete(s);
    this.#tally.add(`evicted|${s.address}`, { kind: "connect", decision: "deny", reason: "evicted", detail: { remote: s.address } });
    s.close("evicted");
  }

  /**
   * Gateway → devices: sends to every connected device with a matching subscription, at the lower of
   * `qos` and the granted QoS (the highest over its matching subscriptions, §3.3.5). Returns how many
   * devices got it; a device at its in-flight limit or with a blocked socket is skipped.
   * @throws RangeError for an invalid topic name or QoS (a gateway bug).
   */
  deliver(topic: string, payload: Uint8Array, qos: 0 | 1 = 0): number {
    if (!isValidTopicName(topic)) throw new RangeError(`bad topic name "${topic}"`);
    if (qos !== 0 && qos !== 1) throw new RangeError(`bad QoS ${String(qos)}`);
    let count = 0;
    for (const s of this.#byId.values()) {
      let granted = -1;
      for (const [filter, g] of s.subscriptions) if (g > granted && topicMatches(filter, topic)) granted = g;
      if (granted >= 0 && s.deliver(topic, payload, qos, granted as 0 | 1)) count++;
    }
    return count;
  }

  /** Connected devices; `since` is the monotonic ms of their CONNECT (subtract from `clock.monotonic()`). */
  clients(): { clientId: string; remote: string; since: number }[] {
    const out: { clientId: string; remote: string; since: number }[] = [];
    for (const [clientId, s] of this.#byId) out.push({ clientId, remote: s.remote, since: s.since });
    return out;
  }

  /** Closes the live session of `clientId`, if any (its credentials were just disabled). Returns whether one was closed. */
  disconnect(clientId: string): boolean {
    const s = this.#byId.get(clientId);
    if (!s) return false;
    s.close("disabled");
    return true;
  }

  /** Closes every session (no wills: the gateway itself is going away) and refuses new sockets. Harmless twice. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#sessions]) s.close("shutdown");
    this.#tally.flushAll();
  }
}

function guard(f: () => boolean): boolean {
  try {
    return f();
  } catch {
    return false;
  }
}
