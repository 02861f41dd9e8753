/**
 * The device-side MQTT 3.1.1 broker: admits sessions, hands device publishes to the gateway (the
 * contracts), routes them between local clients through a topic tree (`subtree.ts`) under per-device
 * ACLs, keeps retained messages (`retained.ts`), and delivers the gateway's messages to devices.
 */
import type { AuditEvent } from "../audit/types.js";
import type { Clock, DeviceSocket, SocketHandler, TimerId, Timers } from "../ports.js";
import { MAX_PACKET_BYTES } from "./packets.js";
import { PUBLISH_BURST, PUBLISH_RATE_PER_SEC } from "./rate.js";
import { Session, addressOf, type SessionHost, type SessionLimits } from "./session.js";
import type { PublishAck } from "./inbound.js";

export type { PublishAck } from "./inbound.js";
import { AGGREGATE_WINDOW_MS, MAX_AGGREGATE_KEYS, Tally } from "./tally.js";
import { isValidTopicName } from "./topic.js";
import { SubscriptionTree } from "./subtree.js";
import { NO_LOCAL, ParkedSession, RETAIN_AS_PUBLISHED } from "./persist.js";
import type { Properties } from "./packets.js";
import { MAX_RETAINED_BYTES, MAX_RETAINED_MESSAGES, RetainedStore, type RetainOutcome, type RetainedMessage } from "./retained.js";

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
  /** Retained messages held at once (0: none kept). */
  readonly maxRetainedMessages?: number;
  /** Bytes of retained messages (topics' UTF-8 + payloads) held at once. */
  readonly maxRetainedBytes?: number;
  /** Highest QoS granted to a subscription: 2 (default) or 1 (then QoS 2 closes the connection). */
  readonly maxQos?: number;
  /** Persistent sessions (clean session 0) kept for offline clients; one more ends the oldest. */
  readonly maxParkedSessions?: number;
  /** QoS 1/2 messages kept per persistent session; beyond it the oldest is dropped and counted. */
  readonly maxQueuedPerSession?: number;
  /** MQTT 5 topic aliases a client may set (Topic Alias Maximum in CONNACK; 0: none). */
  readonly maxTopicAliases?: number;
}

/** Default MQTT 5 Topic Alias Maximum: an alias costs one topic string per session. */
export const MAX_TOPIC_ALIASES = 8;

/** Defaults of the persistent-session bounds. */
export const MAX_PARKED_SESSIONS = 16;
export const MAX_QUEUED_PER_SESSION = 32;

export interface BrokerOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** The gateway's per-device credential check. A throw counts as a refusal. */
  authenticate(clientId: string, username: string | undefined, password: Uint8Array | undefined): boolean;
  /** Whether a device may subscribe to `filter`. Default: allow. A throw counts as a refusal. */
  authorizeSubscribe?(clientId: string, filter: string): boolean;
  /**
   * Whether a device may publish to `topic` (its PUBLISHes and its will). Default: allow. A refused
   * PUBLISH is dropped (acknowledged, not handed on) and recorded in aggregate. A throw counts as a refusal.
   */
  authorizePublish?(clientId: string, topic: string): boolean;
  /**
   * Route device publishes to local subscribers and keep retained messages (default true). Off, the
   * broker is the old chokepoint only: device publishes go to the gateway alone.
   */
  readonly localRouting?: boolean;
  /**
   * A device publish was delivered to `receivers` (> 0) local sessions: for the per-minute summaries.
   * A throw is swallowed.
   */
  onLocal?(clientId: string, topic: string, bytes: number, receivers: number): void;
  /** The retained set changed (`stored`, `replaced`, `cleared`): for keeping it on flash. A throw is swallowed. */
  onRetained?(outcome: RetainOutcome, message: RetainedMessage): void;
  /** Retained messages to start with (read back from flash at boot), oldest first. */
  readonly retained?: readonly RetainedMessage[];
  /**
   * Device → gateway, also for will messages. Returning means accepted (a QoS 1 PUBACK follows);
   * returning a promise means accepted once it resolves (the PUBACK waits for it, in arrival order);
   * throwing or rejecting means not accepted (no PUBACK, and the connection is closed).
   */
  onPublish(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1): void | Promise<void>;
  /**
   * Device → gateway for the devices' own PUBLISHes, when present (wills still go to onPublish): the host
   * settles `ack` once, with `accept()` (the PUBACK follows, in arrival order) or `refuse(reason)` (no
   * PUBACK, the connection closes), at once or later. No promise per message in flight: on XS a promise
   * and its reaction cost tens of heap slots for each message awaiting its record.
   */
  onPublishAck?(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1, ack: PublishAck): void;
  /** Audit events (see SPEC.md "MQTT on the device side"). A throw is swallowed. */
  onEvent(event: AuditEvent): void;
  /**
   * A limit was reached: `sessions` (a CONNECT refused with CONNACK 3) or `pending` (a socket awaiting
   * CONNECT evicted at the shared limit). The refusal itself is already recorded (aggregated); this
   * only counts it. A throw is swallowed.
   */
  onLimit?(name: "sessions" | "pending"): void;
  readonly limits?: BrokerLimits;
}

function limit(value: number | undefined, fallback: number, name: string, min: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`limits.${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

const INERT: SocketHandler = Object.freeze({ onData() {}, onClose() {} });

interface Hold {
  held: boolean;
}

/**
 * The socket a session sees when the host's socket can pause: its pause/resume combine with the
 * broker's hold. Methods on the prototype, state in three fields: no closures per session.
 */
class HeldSocket implements DeviceSocket {
  readonly raw: DeviceSocket;
  readonly remote: string;
  readonly #hold: Hold;
  /** The session asked for a pause. */
  paused = false;

  constructor(raw: DeviceSocket, hold: Hold) {
    this.raw = raw;
    this.remote = raw.remote;
    this.#hold = hold;
  }

  write(data: Uint8Array): boolean {
    return this.raw.write(data);
  }

  close(): void {
    this.raw.close();
  }

  pause(): void {
    this.paused = true;
    this.raw.pause!();
  }

  resume(): void {
    this.paused = false;
    if (!this.#hold.held) this.raw.resume!();
  }
}

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
  /** Reading of every socket is stopped (the gateway's pipeline is full): see {@link pauseAll}. One per broker, shared by its wrapped sockets. */
  readonly #hold: Hold = { held: false };
  /** Every wrapped socket (what a session sees), each with the host's socket and its session's own pause. */
  readonly #own = new Set<HeldSocket>();
  /** Every granted subscription of every connected session. */
  readonly #subs = new SubscriptionTree<Session | ParkedSession>();
  /** Persistent sessions of offline clients by client id, oldest first. */
  readonly #parked = new Map<string, ParkedSession>();
  /** MQTT 5 wills waiting out their delay, by client id. */
  readonly #wills = new Map<string, TimerId>();
  readonly #maxParked: number;
  readonly #retained: RetainedStore;
  readonly #local: boolean;
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
    if (options.onPublishAck !== undefined && typeof options.onPublishAck !== "function") throw new TypeError("onPublishAck must be a function");
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
      maxQos: limit(l.maxQos, 2, "maxQos", 1) >= 2 ? 2 : 1,
      maxQueuedPerSession: limit(l.maxQueuedPerSession, MAX_QUEUED_PER_SESSION, "maxQueuedPerSession", 0),
      maxTopicAliases: Math.min(limit(l.maxTopicAliases, MAX_TOPIC_ALIASES, "maxTopicAliases", 0), 0xffff),
    });
    this.#maxParked = limit(l.maxParkedSessions, MAX_PARKED_SESSIONS, "maxParkedSessions", 0);
    for (const name of ["onLocal", "onRetained", "authorizePublish"] as const) {
      if (options[name] !== undefined && typeof options[name] !== "function") throw new TypeError(`${name} must be a function`);
    }
    this.#local = options.localRouting !== false;
    this.#retained = new RetainedStore(
      limit(l.maxRetainedMessages, MAX_RETAINED_MESSAGES, "maxRetainedMessages", 0),
      limit(l.maxRetainedBytes, MAX_RETAINED_BYTES, "maxRetainedBytes", 0),
    );
    for (const m of options.retained ?? []) this.#retained.set(m.topic, m.payload, m.qos, m.properties);
    this.#tally = new Tally(options.timers, limits.aggregateWindowMs, MAX_AGGREGATE_KEYS, (e) => this.#host.event(e));
    this.#host = new Broker.#Host(this, limits);
  }

  /**
   * What every session of this broker calls: one instance (four fields) whose methods are the class's,
   * built at preload on the device, instead of an object of ~17 closures per broker (DESIGN.md
   * "Census"). Declared in the class body so that it reaches the broker's private state.
   */
  static readonly #Host = class BrokerHost implements SessionHost {
    readonly broker: Broker;
    readonly limits: SessionLimits;
    readonly clock: Clock;
    readonly timers: Timers;
    constructor(broker: Broker, limits: SessionLimits) {
      this.broker = broker;
      this.limits = limits;
      this.clock = broker.#options.clock;
      this.timers = broker.#options.timers;
    }

    // The gateway's checks may throw: a throw is a refusal, never an escape into the session.
    authenticate(id: string, user: string | undefined, pass: Uint8Array | undefined): boolean {
      try {
        return this.broker.#options.authenticate(id, user, pass) === true;
      } catch {
        return false;
      }
    }

    authorizeSubscribe(id: string, filter: string): boolean {
      return allowed(this.broker.#options.authorizeSubscribe, id, filter);
    }

    authorizePublish(id: string, topic: string): boolean {
      return allowed(this.broker.#options.authorizePublish, id, topic);
    }

    route(id: string, topic: string, payload: Uint8Array, qos: 0 | 1 | 2, retain: boolean, props?: Properties): void {
      this.broker._routeFrom(id, topic, payload, qos, retain, props);
    }

    subscribed(s: Session, filter: string, qos: number, fresh: boolean, rh: 0 | 1 | 2 = 0): void {
      const b = this.broker;
      b.#subs.add(filter, s, qos);
      // §3.3.1.3: retained messages go to every new subscription; a renewed one gets them again too
      // (§3.8.4 allows either; MQTT 5 retain handling 1: new ones only, 2: never); RETAIN set since
      // they answer the subscription.
      if (!b.#local || b.#retained.size === 0 || rh === 2 || (rh === 1 && !fresh)) return;
      for (const m of b.#retained.matching(filter, b.#options.clock.monotonic())) {
        if (!s.deliver(m.topic, m.payload, m.qos, qos, true, m.properties)) b._dropped(s, m.topic);
      }
    }

    delayWill(id: string, ms: number, publish: () => void): void {
      const b = this.broker;
      b._cancelWill(id);
      const t = this.timers.after(ms, () => {
        b.#wills.delete(id);
        publish();
      });
      b.#wills.set(id, t);
    }

    unsubscribed(s: Session, filter: string): void {
      this.broker.#subs.remove(filter, s);
    }

    park(s: Session): void {
      this.broker._park(s);
    }

    resume(s: Session, resume: boolean): ParkedSession | undefined {
      return this.broker._resume(s, resume);
    }

    publish(id: string, topic: string, payload: Uint8Array, qos: 0 | 1): void | Promise<void> {
      return this.broker.#options.onPublish(id, topic, payload, qos);
    }

    get settlesAcks(): boolean {
      return this.broker.#options.onPublishAck !== undefined;
    }

    publishAck(id: string, topic: string, payload: Uint8Array, qos: 0 | 1, ack: PublishAck): void {
      this.broker.#options.onPublishAck!(id, topic, payload, qos, ack);
    }

    event(e: AuditEvent): void {
      try {
        this.broker.#options.onEvent(e);
      } catch {
        // The audit sink's failure is its own to report; the broker must not fail with it.
      }
    }

    tally(key: string, e: AuditEvent): void {
      this.broker.#tally.add(key, e);
    }

    admit(s: Session): "new" | "takeover" | "full" {
      return this.broker._admit(s);
    }

    full(id: string): boolean {
      const b = this.broker;
      if (b.#byId.has(id) || b.#byId.size < b.#maxConnections) return false;
      b._limit("sessions");
      return true;
    }

    closed(s: Session): void {
      const b = this.broker;
      b.#own.delete(s.socket as HeldSocket);
      b.#sessions.delete(s);
      b.#pending.delete(s);
      if (s.authenticated && s.clientId !== undefined) b.#tally.flush(`rate-limit|${s.clientId}`);
      if (s.clientId !== undefined && b.#byId.get(s.clientId) === s) b.#byId.delete(s.clientId);
    }
  };

  /** A delayed will (MQTT 5) of `id` is dropped: the client came back in time. */
  private _cancelWill(id: string): void {
    const t = this.#wills.get(id);
    if (t === undefined) return;
    this.#options.timers.cancel(t);
    this.#wills.delete(id);
  }

  private _admit(s: Session): "new" | "takeover" | "full" {
    const id = s.clientId!;
    this._cancelWill(id);
    const old = this.#byId.get(id);
    if (old === undefined && this.#byId.size >= this.#maxConnections) {
      this._limit("sessions");
      return "full";
    }
    old?.close("takeover"); // §3.1.4: the server disconnects the existing client
    this.#pending.delete(s);
    this.#byId.set(id, s);
    return old === undefined ? "new" : "takeover";
  }

  private _park(s: Session): void {
    const id = s.clientId!;
    if (this.#maxParked === 0) {
      for (const f of s.subscriptions.keys()) this.#subs.remove(f, s);
      return;
    }
    if (this.#parked.size >= this.#maxParked && !this.#parked.has(id)) {
      const [oldId, old] = this.#parked.entries().next().value!;
      this._discard(old);
      this.#tally.add(`session-evicted|${oldId}`, { kind: "disconnect", decision: "info", device: oldId, reason: "session-evicted", detail: { queued: old.queue.length } });
    }
    const p = new ParkedSession(id, new Map(s.subscriptions), new Map(s.inflight), new Set(s.qos2In), s.host.limits.maxQueuedPerSession, s.host.clock);
    for (const m of s.backlog) p.keep(m);
    p.dropped += s.backlogDropped;
    for (const [f, q] of s.subscriptions) {
      this.#subs.remove(f, s);
      this.#subs.add(f, p, q);
    }
    this.#parked.set(id, p);
    // MQTT 5 §3.1.2.11.2: the session ends when its expiry interval passes (0xFFFFFFFF: never).
    // Intervals beyond a timer's 32-bit range (about 24.8 days) are kept until evicted, like 0xFFFFFFFF.
    if (s.version === 5 && s.sessionExpiry * 1000 <= 0x7fffffff) {
      p.expiry = this.#options.timers.after(s.sessionExpiry * 1000, () => {
        p.expiry = undefined;
        if (this.#parked.get(id) === p) this._discard(p);
      });
    }
  }

  private _discard(p: ParkedSession): void {
    if (p.expiry !== undefined) this.#options.timers.cancel(p.expiry as TimerId);
    p.expiry = undefined;
    for (const f of p.subscriptions.keys()) this.#subs.remove(f, p);
    this.#parked.delete(p.clientId);
  }

  private _resume(s: Session, resume: boolean): ParkedSession | undefined {
    const p = this.#parked.get(s.clientId!);
    if (p === undefined) return undefined;
    this._discard(p);
    if (!resume) return undefined;
    for (const [f, q] of p.subscriptions) {
      s.subscriptions.set(f, q);
      this.#subs.add(f, s, q);
    }
    return p;
  }

  /** Persistent sessions kept for offline clients: client id → QoS 1/2 messages queued for it. */
  parkedSessions(): { clientId: string; queued: number; dropped: number }[] {
    return [...this.#parked.values()].map((p) => ({ clientId: p.clientId, queued: p.queue.length, dropped: p.dropped }));
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
    if (same >= this.#maxPerAddress) this._evict(oldestSame!);
    else if (this.#pending.size >= this.#maxPending) {
      this._limit("pending");
      this._evict(this.#pending.values().next().value!);
    }
    const session = new Session(this.#host, this._wrap(socket));
    this.#sessions.add(session);
    this.#pending.add(session);
    return session;
  }

  /**
   * The socket the session sees: its pause/resume are combined with the broker's own hold, so that a
   * session resuming its reading does not undo {@link pauseAll}. Without `pause` the socket is used as is.
   */
  private _wrap(socket: DeviceSocket): DeviceSocket {
    if (typeof socket.pause !== "function" || typeof socket.resume !== "function") return socket;
    if (this.#hold.held) socket.pause();
    const wrapped = new HeldSocket(socket, this.#hold);
    this.#own.add(wrapped);
    return wrapped;
  }

  /**
   * Stops reading every device socket (back-pressure: TCP then holds the devices back) until
   * {@link resumeAll}. Packets already read are still handled. Sockets accepted meanwhile start paused.
   */
  pauseAll(): void {
    if (this.#hold.held) return;
    this.#hold.held = true;
    for (const e of this.#own) e.raw.pause!();
  }

  /** Reading continues on every socket whose own session does not hold it paused. */
  resumeAll(): void {
    if (!this.#hold.held) return;
    this.#hold.held = false;
    for (const e of this.#own) if (!e.paused) e.raw.resume!();
  }

  /** Whether {@link pauseAll} holds the sockets. */
  get paused(): boolean {
    return this.#hold.held;
  }

  /** Connected sessions and sockets awaiting CONNECT, against their limits (for `status`). */
  usage(): { sessions: number; maxSessions: number; pending: number; maxPending: number } {
    return { sessions: this.#byId.size, maxSessions: this.#maxConnections, pending: this.#pending.size, maxPending: this.#maxPending };
  }

  private _limit(name: "sessions" | "pending"): void {
    try {
      this.#options.onLimit?.(name);
    } catch {
      // Counting a hit must not change the refusal.
    }
  }

  /** Closes a socket still awaiting CONNECT; recorded in aggregate per source address. */
  private _evict(s: Session): void {
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
    return this._fanOut(topic, payload, qos, false);
  }

  /** Subscriptions held by connected sessions, in all. */
  get subscriptionCount(): number {
    return this.#subs.size;
  }

  /** The retained messages held, oldest first. */
  retained(): RetainedMessage[] {
    return this.#retained.all(this.#options.clock.monotonic());
  }

  /** A device publish the ACL allowed: retained handling, then local delivery (the sender included, §3.3.5). */
  private _routeFrom(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1 | 2, retain: boolean, props?: Properties): void {
    if (!this.#local) return;
    if (retain) this._retain(clientId, topic, payload, qos, props);
    if (this.#subs.empty) return; // nobody subscribes: nothing to do
    const n = this._fanOut(topic, payload, qos, true, clientId, retain, props);
    if (n > 0 && this.#options.onLocal !== undefined) {
      try {
        this.#options.onLocal(clientId, topic, payload.length, n);
      } catch {
        // Accounting must not break delivery.
      }
    }
  }

  private _retain(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1 | 2, props?: Properties): void {
    const outcome = this.#retained.set(topic, payload, qos, props, this.#options.clock.monotonic());
    if (outcome === "full") {
      this.#tally.add(`retained-full|${clientId}`, { kind: "flow", decision: "deny", device: clientId, topic, reason: "retained-full", detail: { op: "retain" } });
      return;
    }
    if (outcome === "absent" || this.#options.onRetained === undefined) return;
    // A message with a Message Expiry Interval stays in RAM only: the monotonic clock its expiry counts on
    // does not survive a reboot, so a flash copy could be delivered after it expired. Its topic's older
    // copy on flash is cleared instead (a reboot then forgets the topic rather than revive the old value).
    const expiring = outcome !== "cleared" && props?.messageExpiryInterval !== undefined;
    try {
      this.#options.onRetained(expiring ? "cleared" : outcome, props === undefined || expiring ? { topic, payload, qos } : { topic, payload, qos, properties: props });
    } catch {
      // Persisting is the host's to report.
    }
  }

  /** Delivers to each matching connected session once, at min(qos, its highest granted QoS). */
  private _fanOut(topic: string, payload: Uint8Array, qos: 0 | 1 | 2, local: boolean, from?: string, retain = false, props?: Properties): number {
    if (this.#subs.empty) return 0;
    let targets: Map<Session | ParkedSession, number> | undefined;
    this.#subs.match(topic, (s, g) => {
      // MQTT 5 no local: not back to the publisher through this subscription (§3.8.3.1).
      if (g & NO_LOCAL && s.clientId === from) return;
      targets ??= new Map();
      const prev = targets.get(s);
      if (prev === undefined) targets.set(s, g);
      else targets.set(s, ((g & 3) > (prev & 3) ? g & 3 : prev & 3) | ((g | prev) & RETAIN_AS_PUBLISHED));
    });
    if (targets === undefined) return 0;
    let count = 0;
    for (const [s, g] of targets) {
      // MQTT 5 retain as published keeps the publisher's RETAIN flag; else 0 (§3.3.1.3).
      if (s.deliver(topic, payload, qos, g, retain && (g & RETAIN_AS_PUBLISHED) !== 0, props)) count++;
      else if (local) this._dropped(s, topic);
    }
    return count;
  }

  /** A local message a session could not take (in-flight limit, blocked socket): counted per receiver. */
  private _dropped(s: Session | ParkedSession, topic: string): void {
    if (s.state !== "connected" || s.clientId === undefined) return;
    this.#tally.add(`local-drop|${s.clientId}`, { kind: "flow", decision: "deny", device: s.clientId, topic, reason: "inflight-full", detail: { op: "local" } });
  }

  /** Connected devices; `since` is the monotonic ms of their CONNECT (subtract from `clock.monotonic()`). */
  clients(): { clientId: string; remote: string; since: number }[] {
    const out: { clientId: string; remote: string; since: number }[] = [];
    for (const [clientId, s] of this.#byId) out.push({ clientId, remote: s.remote, since: s.since });
    return out;
  }

  /**
   * Closes a connected device's session (its will is sent): `removed` when the owner removed the device,
   * `disabled` when its credentials were disabled. @returns false when it is not connected.
   */
  disconnect(clientId: string, reason: "removed" | "disabled" = "disabled"): boolean {
    const s = this.#byId.get(clientId);
    if (!s) return false;
    s.close(reason);
    return true;
  }

  /** Closes every session (no wills: the gateway itself is going away) and refuses new sockets. Harmless twice. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#sessions]) s.close("shutdown");
    this.#tally.flushAll();
  }
}

/** An optional ACL check: none allows; a throw refuses (the gateway's checks must not escape into a session). */
function allowed(check: ((clientId: string, what: string) => boolean) | undefined, id: string, what: string): boolean {
  if (check === undefined) return true;
  try {
    return check(id, what) === true;
  } catch {
    return false;
  }
}
