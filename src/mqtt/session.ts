/**
 * One device connection to the broker, as an explicit state machine (MQTT 3.1.1 §3.1, §3.1.2.10, §4.1):
 *
 *        accept()
 *           │
 *           ▼
 *   ┌──────────────────┐  connect timeout, first packet not CONNECT,
 *   │ awaiting-connect │  malformed bytes, CONNECT refused (CONNACK 1/2/3/5)
 *   └──────────────────┘ ─────────────────────────────────────────────┐
 *           │ CONNECT accepted: CONNACK 0                             │
 *           ▼                                                         ▼
 *   ┌──────────────────┐  DISCONNECT, keepalive expiry, peer closed, ┌────────┐
 *   │    connected     │  protocol error, takeover, broker.close() ──▶│ closed │
 *   └──────────────────┘                                             └────────┘
 *
 * Only `closed` is final: nothing is written, published or scheduled after it. Packet handlers live in
 * `handlers.ts`, one per packet type (as in MQTT.js); this file owns state, IO, timers and closing.
 */
import type { AuditEvent, AuditKind, AuditDecision, DetailValue } from "../audit/types.js";
import type { Clock, DeviceSocket, SocketHandler, TimerId, Timers } from "../ports.js";
import { Decoder } from "./decode.js";
import { encode } from "./encode.js";
import { ConnackCode, MqttError, Reason, type ConnectPacket, type Packet, type Properties, type ProtocolVersion, type Will } from "./packets.js";
import { handlePacket, ProtocolReason } from "./handlers.js";
import { Inbound, type PublishAck } from "./inbound.js";
import { forwardable } from "./parse.js";
import { TokenBucket } from "./rate.js";
import { fresh, owed, RETAIN_AS_PUBLISHED, type InflightMessage, type OwedMessage, type ParkedSession } from "./persist.js";
import { meter } from "../util/meter.js";

/** MQTT 5 DISCONNECT reason for each way a connected session ends (MQTT 5.0 §3.14.2.1); absent: none sent. */
const DISCONNECT_REASON: Readonly<Partial<Record<DisconnectReason, number>>> = Object.freeze({
  keepalive: Reason.KeepAliveTimeout,
  takeover: Reason.SessionTakenOver,
  shutdown: Reason.ServerShuttingDown,
  backpressure: Reason.QuotaExceeded,
  "rate-limit": Reason.MessageRateTooHigh,
  "internal-error": Reason.ImplementationSpecificError,
  removed: Reason.AdministrativeAction,
  disabled: Reason.AdministrativeAction,
  protocol: Reason.ProtocolError,
});

/** MQTT 5 CONNACK reason for each 3.1.1 refusal (MQTT 5.0 §3.2.2.2). */
const CONNACK5: readonly number[] = Object.freeze([0, Reason.UnsupportedProtocolVersion, Reason.ClientIdentifierNotValid, Reason.ServerBusy, Reason.BadUserNameOrPassword, Reason.BadUserNameOrPassword]);

/** States of a message in {@link Session.inflight}. */
export const AWAIT_PUBACK = 1;
export const AWAIT_PUBREC = 2;
export const AWAIT_PUBCOMP = 3;

export type SessionState = "awaiting-connect" | "connected" | "closed";

/** Why a connected session ended: the `reason` of its `disconnect` audit record. */
export type DisconnectReason =
  | "clean"
  | "keepalive"
  | "peer-closed"
  | "protocol"
  | "takeover"
  | "shutdown"
  | "backpressure"
  | "rate-limit"
  | "internal-error"
  /** The device was removed by the owner (its credentials are gone). */
  | "removed"
  /** The device's credentials were disabled (incident containment, src/gateway/devices.ts). */
  | "disabled"
  /** A socket still awaiting CONNECT, closed to make room for a newer one (no `disconnect` record). */
  | "evicted";

export { ProtocolReason } from "./handlers.js";

export interface SessionLimits {
  readonly maxPacketBytes: number;
  readonly maxSubscriptionsPerClient: number;
  readonly maxInflight: number;
  readonly connectTimeoutMs: number;
  readonly maxClientIdBytes: number;
  readonly maxPendingAccepts: number;
  readonly publishRatePerSec: number;
  readonly publishBurst: number;
  readonly aggregateWindowMs: number;
  /** QoS 1/2 messages kept per persistent session while offline (or waiting for in-flight room). */
  readonly maxQueuedPerSession: number;
  /** Highest QoS granted to a subscription (1 or 2). */
  readonly maxQos: 1 | 2;
  /** MQTT 5 Topic Alias Maximum announced in CONNACK (0: aliases refused). */
  readonly maxTopicAliases: number;
}

/** What a session needs from its broker. Every callback into the gateway is guarded there. */
export interface SessionHost {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly limits: SessionLimits;
  authenticate(clientId: string, username: string | undefined, password: Uint8Array | undefined): boolean;
  authorizeSubscribe(clientId: string, filter: string): boolean;
  /** Whether a device may publish to `topic` (checked for every PUBLISH and the will). */
  authorizePublish(clientId: string, topic: string): boolean;
  /**
   * Local side of a device PUBLISH the ACL allowed: stores/clears it as retained when `retain`, and
   * delivers it to every matching subscription of connected clients (§3.3.5).
   */
  route(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1 | 2, retain: boolean, properties?: Properties): void;
  /**
   * Records `session`'s subscription in the broker's topic tree and delivers retained messages per
   * retain handling `rh` (MQTT 5: 1 only when `fresh`, 2 never). `grant` is QoS and options (persist.ts).
   */
  subscribed(session: Session, filter: string, grant: number, fresh: boolean, rh?: 0 | 1 | 2): void;
  /** MQTT 5 will delay: publish the will after `ms` unless the client id connects again first. */
  delayWill(clientId: string, ms: number, publish: () => void): void;
  unsubscribed(session: Session, filter: string): void;
  /**
   * After admission: the parked state of `session`'s client id, handed over (its subscriptions moved
   * to `session` in the topic tree) when `resume`, else discarded (clean session, §3.1.2.4).
   */
  resume(session: Session, resume: boolean): ParkedSession | undefined;
  /** A persistent session closed: keep its subscriptions and owed messages for its return. */
  park(session: Session): void;
  /**
   * Device → gateway. Returning means accepted; a promise means accepted when it resolves. A throw or a
   * rejection means not accepted (then no PUBACK is sent).
   */
  publish(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1): void | Promise<void>;
  /** True when the device's PUBLISHes go to {@link publishAck} instead (BrokerOptions.onPublishAck). */
  readonly settlesAcks: boolean;
  /** Device → gateway, settled through `ack` exactly once (accept: PUBACK in turn; refuse: close). */
  publishAck(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1, ack: PublishAck): void;
  /**
   * Registers an authenticated `session` under its client id: "takeover" when an older session with
   * that id was closed for it (§3.1.4), "full" (nothing registered) at maxConnections.
   */
  admit(session: Session): "new" | "takeover" | "full";
  /** Whether a CONNECT with this client id finds no room (maxConnections reached and no session of that id to take over). */
  full(clientId: string): boolean;
  event(event: AuditEvent): void;
  /** An aggregated event (see `tally.ts`): at most two records per `key` and window. */
  tally(key: string, event: AuditEvent): void;
  /** The session reached `closed`. */
  closed(session: Session): void;
}

/** One device connection; it is the {@link SocketHandler} the host calls. */
export class Session implements SocketHandler {
  readonly host: SessionHost;
  readonly socket: DeviceSocket;
  readonly remote: string;
  /** The peer's address without the port: what the per-address limits count. */
  readonly address: string;
  readonly decoder: Decoder;
  readonly inbound: Inbound;
  /** The device's PUBLISH rate (from CONNECT accepted on). */
  bucket: TokenBucket | undefined;
  state: SessionState = "awaiting-connect";
  /** The client id from CONNECT (claimed until accepted). */
  clientId: string | undefined;
  /** CONNECT was accepted: records name `device` only from then on. */
  authenticated = false;
  /** Monotonic ms (Clock.monotonic) when CONNECT was accepted: durations, not a time of day. */
  since = 0;
  will: Will | undefined;
  // The four collections below are created on first use (a device that only publishes at QoS 0/1 and
  // never subscribes needs none of them): each Map/Set/array costs heap slots per session.
  #subscriptions: Map<string, number> | undefined;
  #inflight: Map<number, InflightMessage> | undefined;
  #backlog: OwedMessage[] | undefined;
  #qos2In: Set<number> | undefined;
  /** Clean session 0: state is parked on close and resumed on the next CONNECT (§3.1.2.4). */
  persistent = false;
  /** Backlog messages dropped when it was full. */
  backlogDropped = 0;
  /** Queued messages whose MQTT 5 Message Expiry passed before they could be sent (not sent). */
  expiredDropped = 0;
  #nextId = 1;
  /** The socket refused a write and has not signalled onWritable since. */
  #blocked = false;
  #sentWhileBlocked = 0;
  /** Bytes handed to a blocked socket: a device that stops reading may not grow the host's buffer without bound. */
  #blockedBytes = 0;
  #lastSeen: number;
  #keepaliveMs = 0;
  #timer: TimerId | undefined;
  /** Protocol level of this connection (3, 4 or 5), from its CONNECT. */
  version: ProtocolVersion = 4;
  /** MQTT 5: the client's Receive Maximum (in-flight QoS 1/2 deliveries to it), at most maxInflight. */
  receiveMax: number;
  /** MQTT 5: the client's Maximum Packet Size; larger deliveries are dropped and counted. */
  maxOut = 0xffffffff;
  /** MQTT 5: Session Expiry Interval in seconds (0: ends at disconnect; 0xFFFFFFFF: never). */
  sessionExpiry = 0;
  /** MQTT 5: the client asked for no reason strings / user properties on acks (Request Problem Information 0). */
  quiet = false;
  /** MQTT 5: topic aliases the client set (index = alias). */
  aliases: string[] | undefined;
  /** MQTT 5: topic aliases the gateway may set toward the client (the client's Topic Alias Maximum, bounded by ours). */
  aliasOutMax = 0;
  /** Topic → alias set toward the client on this connection; created at the first aliased delivery, at most aliasOutMax. */
  #aliasOut: Map<string, number> | undefined;
  /** Deliveries not sent because they exceeded the client's Maximum Packet Size. */
  oversizeDropped = 0;

  /** Filter → grant (QoS and MQTT 5 options, persist.ts). Bounded by maxSubscriptionsPerClient. */
  get subscriptions(): Map<string, number> {
    return (this.#subscriptions ??= new Map());
  }

  /**
   * QoS 1/2 messages sent to the device and not yet settled, by packet id: AWAIT_PUBACK, AWAIT_PUBREC
   * or AWAIT_PUBCOMP (§4.3). Bounded by maxInflight.
   */
  get inflight(): Map<number, InflightMessage> {
    return (this.#inflight ??= new Map());
  }

  /** QoS 1/2 messages waiting for in-flight room (persistent sessions only), oldest first; bounded. */
  get backlog(): OwedMessage[] {
    return (this.#backlog ??= []);
  }

  /** QoS 2 packet ids from the device whose PUBREL has not come (§4.3.3 method B). Bounded by maxInflight. */
  get qos2In(): Set<number> {
    return (this.#qos2In ??= new Set());
  }

  constructor(host: SessionHost, socket: DeviceSocket) {
    this.host = host;
    this.socket = socket;
    this.remote = socket.remote;
    this.address = addressOf(socket.remote);
    const { maxPendingAccepts, maxInflight, maxPacketBytes } = host.limits;
    this.receiveMax = maxInflight;
    this.inbound = new Inbound(this, maxPendingAccepts, maxInflight * maxPacketBytes);
    // The session is the decoder's options and sink (onPacket, maxPacketBytes; version is 4 until a CONNECT): no closure per connection.
    this.decoder = new Decoder(this);
    this.#lastSeen = host.clock.monotonic();
    this.#timer = host.timers.after(host.limits.connectTimeoutMs, () => {
      this.#timer = undefined;
      this.protocolError(ProtocolReason.ConnectTimeout, "no CONNECT in time");
    });
  }

  onData(data: Uint8Array): void {
    if (this.state === "closed") return;
    const t0 = meter.start();
    try {
      const error = this.decoder.push(data);
      if (error === undefined || (this.state as SessionState) === "closed") return;
      if (error.code === MqttError.UnsupportedProtocolLevel && this.state === "awaiting-connect") {
        this.send({ cmd: "connack", sessionPresent: false, returnCode: ConnackCode.UnacceptableProtocol });
      }
      // MQTT 5 §4.13: tell a connected v5 client why before closing.
      const code = error.code === MqttError.TooLarge ? Reason.PacketTooLarge : error.code === MqttError.BadProperty ? Reason.ProtocolError : Reason.MalformedPacket;
      this.protocolError(error.code, error.message, code);
    } catch (e) {
      // Nothing may escape into the host's socket loop; an unexpected fault closes this connection only.
      this.close("internal-error", String(e));
    } finally {
      meter.stop("receive", t0);
    }
  }

  onClose(): void {
    this.close("peer-closed");
  }

  onWritable(): void {
    this.#blocked = false;
    this.#sentWhileBlocked = 0;
    this.#blockedBytes = 0;
  }

  /** The largest packet this session accepts (the decoder reads it once). */
  get maxPacketBytes(): number {
    return this.host.limits.maxPacketBytes;
  }

  /** @internal The decoder's sink: one complete packet from the device. */
  onPacket(packet: Packet): void {
    if (this.state === "closed") return;
    this.#lastSeen = this.host.clock.monotonic();
    if (!this.inbound.hold(packet)) handlePacket(this, packet);
  }

  /** Handles one packet now (held packets come back through here, in order). */
  dispatch(packet: Packet): void {
    if (this.state !== "closed") handlePacket(this, packet);
  }

  /** Encodes and writes one packet; false when the socket is above its high-water mark. */
  send(packet: Packet): boolean {
    if (this.state === "closed") return false;
    if (this.aliasOutMax > 0 && packet.cmd === "publish" && packet.topic.length > 2) packet = this._aliased(packet);
    let bytes = encode(packet, this.version);
    if (bytes.length > this.maxOut) {
      // MQTT 5 §3.1.2.11.4: never send more than the client accepts. Acks lose their reason string
      // and user properties; a PUBLISH is dropped (as if delivered) and counted.
      if (packet.cmd === "publish" || !("properties" in packet) || packet.properties === undefined) {
        // An alias this PUBLISH was to set never reaches the client: forget it.
        if (packet.cmd === "publish" && packet.topic !== "" && packet.properties?.topicAlias !== undefined) this.#aliasOut?.delete(packet.topic);
        this.oversizeDropped++;
        this.host.tally(`oversize|${this.clientId}`, { kind: "flow", decision: "deny", ...(this.authenticated ? { device: this.clientId! } : {}), reason: "packet-too-large", detail: { op: "deliver", max: this.maxOut } });
        return true;
      }
      const { properties: _dropped, ...bare } = packet as Packet & { properties?: Properties };
      bytes = encode(bare as Packet, this.version);
      if (bytes.length > this.maxOut) return true;
    }
    const ok = this.socket.write(bytes);
    if (!ok || this.#blocked) {
      this.#blocked = true;
      this.#blockedBytes += bytes.length;
      const { maxInflight, maxPacketBytes } = this.host.limits;
      if (this.#blockedBytes > maxInflight * maxPacketBytes) this.close("backpressure");
    }
    return ok;
  }

  /**
   * MQTT 5 §3.3.2.3.4: a topic seen before on this connection goes as its alias with an empty topic; a
   * new one takes the next free alias (sent with its topic once, to set it) until aliasOutMax are used,
   * then goes unaliased. Aliases live as long as the connection (a reconnect starts again).
   */
  private _aliased(p: Packet & { cmd: "publish" }): Packet {
    const map = (this.#aliasOut ??= new Map());
    const known = map.get(p.topic);
    if (known !== undefined) return { ...p, topic: "", properties: { ...p.properties, topicAlias: known } };
    if (map.size >= this.aliasOutMax) return p;
    const alias = map.size + 1;
    map.set(p.topic, alias);
    return { ...p, properties: { ...p.properties, topicAlias: alias } };
  }

  /** Writes an audit event about this connection. */
  event(kind: AuditKind, decision: AuditDecision, reason: string | undefined, extra?: Record<string, DetailValue>, topic?: string): void {
    // Until CONNECT is accepted the client id is only a claim: it goes in `detail.claimed`, never `device`.
    const claimed = !this.authenticated && this.clientId !== undefined ? { claimed: clip(this.clientId, this.host.limits.maxClientIdBytes) } : {};
    this.host.event({
      kind,
      decision,
      ...(this.authenticated ? { device: this.clientId! } : {}),
      ...(topic !== undefined ? { topic } : {}),
      ...(reason !== undefined ? { reason } : {}),
      detail: { remote: this.remote, ...claimed, ...extra },
    });
  }

  /** Refuses CONNECT with `code`, records why, and closes. */
  refuse(code: ConnackCode | number, kind: AuditKind, reason: string, reason5?: number): void {
    if (this.version === 5) {
      this.send({ cmd: "connack", sessionPresent: false, returnCode: reason5 ?? CONNACK5[code] ?? Reason.UnspecifiedError, properties: { reasonString: reason } });
    } else {
      this.send({ cmd: "connack", sessionPresent: false, returnCode: code });
    }
    this.event(kind, "deny", reason);
    this.close("protocol");
  }

  /** Accepts CONNECT (after authentication and admission). */
  accept(connect: ConnectPacket, takeover: boolean, parked?: ParkedSession): void {
    this._cancelTimer();
    this.state = "connected";
    this.authenticated = true;
    this.since = this.host.clock.monotonic();
    const l = this.host.limits;
    this.bucket = new TokenBucket(l.publishRatePerSec, l.publishBurst, l.aggregateWindowMs, this.host.clock.monotonic());
    this.will = connect.will;
    // MQTT 5 §3.1.2.11.2: the session outlives the connection when its expiry interval is above 0.
    this.persistent = this.version === 5 ? this.sessionExpiry > 0 : !connect.cleanSession;
    if (this.version === 5) {
      const props: Properties = {
        receiveMaximum: Math.min(l.maxInflight, 0xffff),
        maximumPacketSize: l.maxPacketBytes,
        topicAliasMaximum: l.maxTopicAliases,
        ...(l.maxQos < 2 ? { maximumQoS: 1 } : {}),
        subscriptionIdentifiersAvailable: 0,
        sharedSubscriptionAvailable: 0,
      };
      this.send({ cmd: "connack", sessionPresent: parked !== undefined, returnCode: 0, properties: props });
    } else {
      this.send({ cmd: "connack", sessionPresent: parked !== undefined, returnCode: ConnackCode.Accepted });
    }
    this.event("connect", "allow", undefined, {
      keepalive: connect.keepalive,
      takeover,
      ...(this.version !== 4 ? { version: this.version } : {}),
      ...(this.persistent ? { persistent: true, resumed: parked !== undefined } : {}),
      ...(parked !== undefined && parked.dropped > 0 ? { dropped: parked.dropped } : {}),
    });
    if (parked !== undefined) this._resume(parked);
    if (connect.keepalive > 0) {
      // §3.1.2.10: close when nothing arrives for one and a half times the keepalive.
      this.#keepaliveMs = connect.keepalive * 1500;
      this._armKeepalive(this.#keepaliveMs);
    }
  }

  /** §4.4: resend unacknowledged PUBLISHes with DUP and the same ids, PUBREL for received ones, then the queue. */
  private _resume(p: ParkedSession): void {
    for (const id of p.qos2In) this.qos2In.add(id);
    for (const [id, m] of p.inflight) {
      this.inflight.set(id, m);
      if (m.state === AWAIT_PUBCOMP) this.send({ cmd: "pubrel", packetId: id });
      else this.send({ cmd: "publish", topic: m.topic, payload: m.payload, qos: m.qos, retain: false, dup: true, packetId: id, ...this._props(m.properties) });
    }
    for (const m of p.queue) this.backlog.push(m);
    this.drainBacklog();
  }

  /** Sends backlog messages while there is in-flight room. */
  drainBacklog(): void {
    const backlog = this.#backlog;
    while (backlog !== undefined && backlog.length > 0 && this.state === "connected" && this.inflight.size < this.receiveMax && !this.#blocked) {
      const m = backlog.shift()!;
      // MQTT 5 Message Expiry: an expired message is not sent (counted); the rest carry the time left.
      const f = fresh(m, this.host.clock.monotonic());
      if (f === undefined) {
        this.expiredDropped++;
        continue;
      }
      this._sendQos(m.topic, m.payload, m.qos, false, f.properties);
    }
  }

  /** `{ properties }` for a v5 client, nothing for 3.1/3.1.1 (properties never reach them). */
  private _props(p: Properties | undefined): { properties?: Properties } {
    return p === undefined || this.version !== 5 ? {} : { properties: p };
  }

  private _sendQos(topic: string, payload: Uint8Array, q: 1 | 2, retain: boolean, properties?: Properties): void {
    while (this.inflight.has(this.#nextId)) this.#nextId = (this.#nextId % 0xffff) + 1;
    const packetId = this.#nextId;
    this.#nextId = (this.#nextId % 0xffff) + 1;
    const m: InflightMessage = properties === undefined ? { topic, payload, qos: q, state: q === 1 ? AWAIT_PUBACK : AWAIT_PUBREC } : { topic, payload, qos: q, state: q === 1 ? AWAIT_PUBACK : AWAIT_PUBREC, properties };
    this.inflight.set(packetId, m);
    const dropped = this.oversizeDropped;
    this.send({ cmd: "publish", topic, payload, qos: q, retain, dup: false, packetId, ...this._props(properties) });
    if (this.oversizeDropped !== dropped) this.inflight.delete(packetId); // never sent: nothing to settle
  }

  private _armKeepalive(ms: number): void {
    this.#timer = this.host.timers.after(ms, () => {
      this.#timer = undefined;
      const idle = this.host.clock.monotonic() - this.#lastSeen;
      if (idle >= this.#keepaliveMs) this.close("keepalive");
      else this._armKeepalive(this.#keepaliveMs - idle);
    });
  }

  /** Records a protocol violation and closes (publishing the will if connected, §3.1.2.5). */
  protocolError(reason: string, message: string, code5: number = Reason.ProtocolError): void {
    if (this.state === "closed") return;
    this.event("protocol", "deny", reason, { message });
    this.close("protocol", undefined, code5);
  }

  /**
   * Delivers one gateway message if a subscription matches, at min(qos, granted). Refuses (returns
   * false) at the in-flight limit for QoS 1, and while the socket is blocked beyond the same limit.
   */
  deliver(topic: string, payload: Uint8Array, qos: 0 | 1 | 2, grant: number, retain = false, properties?: Properties): boolean {
    if (this.state !== "connected") return false;
    const limit = this.host.limits.maxInflight;
    if (this.#blocked && this.#sentWhileBlocked >= limit) return false;
    const granted = grant & 3;
    const q = (qos < granted ? qos : granted) as 0 | 1 | 2;
    if (q === 0) {
      if (properties === undefined || this.version !== 5) this.send({ cmd: "publish", topic, payload, qos: 0, retain, dup: false });
      else this.send({ cmd: "publish", topic, payload, qos: 0, retain, dup: false, properties });
    } else {
      if (this.inflight.size >= this.receiveMax || (this.#backlog !== undefined && this.#backlog.length > 0)) {
        // A persistent session, and an MQTT 5 client (it set the Receive Maximum we honour, §4.9), keep
        // QoS 1/2 messages until there is room (bounded, oldest dropped); a 3.1.1 clean session drops.
        if (!this.persistent && this.version !== 5) return false;
        if (this.backlog.length >= this.host.limits.maxQueuedPerSession) {
          this.backlog.shift();
          this.backlogDropped++;
        }
        if (this.host.limits.maxQueuedPerSession > 0) this.backlog.push(owed(topic, payload, q, properties, this.host.clock.monotonic()));
        else this.backlogDropped++;
        return true;
      }
      this._sendQos(topic, payload, q, retain, properties);
    }
    if (this.#blocked) this.#sentWhileBlocked++;
    return true;
  }

  /** Ends the session. Harmless twice; publishes the will unless the close was clean or a shutdown. */
  close(reason: DisconnectReason, message?: string, code5?: number): void {
    if (this.state === "closed") return;
    const wasConnected = this.state === "connected";
    const why = code5 ?? DISCONNECT_REASON[reason];
    if (wasConnected && this.version === 5 && why !== undefined) {
      // MQTT 5 §3.14: the server says why it closes (a reason string only for protocol faults).
      this.send({ cmd: "disconnect", reasonCode: why, ...(message !== undefined && !this.quiet ? { properties: { reasonString: clip(message, 128) } } : {}) });
    }
    this.state = "closed";
    this._cancelTimer();
    this.decoder.stop();
    this.inbound.clear();
    if (this.persistent && wasConnected && reason !== "shutdown") this.host.park(this);
    else if (this.#subscriptions !== undefined) for (const f of this.#subscriptions.keys()) this.host.unsubscribed(this, f);
    this.#inflight?.clear();
    this.#qos2In?.clear();
    if (this.#backlog !== undefined) this.#backlog.length = 0;
    this.#subscriptions?.clear();
    const will = wasConnected && reason !== "clean" && reason !== "shutdown" ? this.will : undefined;
    this.will = undefined;
    this.socket.close();
    this.host.closed(this);
    if (wasConnected) {
      this.event("disconnect", "info", reason, { will: will !== undefined, ...(message !== undefined ? { message } : {}) });
    }
    if (will !== undefined && this.clientId !== undefined) {
      if (!this.host.authorizePublish(this.clientId, will.topic)) {
        this.host.tally(`acl-publish|${this.clientId}`, { kind: "auth", decision: "deny", device: this.clientId, topic: will.topic, reason: "not-authorized", detail: { op: "will" } });
        return;
      }
      const id = this.clientId;
      const host = this.host;
      const send = (): void => {
        try {
          host.route(id, will.topic, will.payload, will.qos, will.retain, forwardable(willPublishProperties(will.properties)));
          const r = host.publish(id, will.topic, will.payload, will.qos === 0 ? 0 : 1);
          if (r !== undefined) r.then(undefined, () => {});
        } catch {
          // The gateway refused the will; the connection is already gone, there is no one to tell.
        }
      };
      // MQTT 5 §3.1.3.2.2: the will waits min(will delay, session expiry); a reconnect cancels it.
      const delay = Math.min(will.properties?.willDelayInterval ?? 0, this.persistent ? this.sessionExpiry : 0);
      if (delay > 0) host.delayWill(id, delay * 1000, send);
      else send();
    }
  }

  private _cancelTimer(): void {
    if (this.#timer !== undefined) this.host.timers.cancel(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * A will's properties as its PUBLISH carries them: without the Will Delay Interval, which only a will
 * may have (§3.1.3.2.2; a PUBLISH with it would not encode and the will would be lost).
 */
function willPublishProperties(p: Properties | undefined): Properties | undefined {
  if (p === undefined || p.willDelayInterval === undefined) return p;
  const { willDelayInterval: _d, ...rest } = p;
  for (const _ in rest) return rest;
  return undefined;
}

/** "192.0.2.1:50000" → "192.0.2.1"; "[2001:db8::1]:50000" → "2001:db8::1". */
export function addressOf(remote: string): string {
  if (remote.startsWith("[")) {
    const end = remote.indexOf("]");
    return end > 0 ? remote.slice(1, end) : remote;
  }
  const colon = remote.lastIndexOf(":");
  return colon > 0 ? remote.slice(0, colon) : remote;
}

/** At most `max` UTF-16 units of a claimed id, never ending in half a surrogate pair. */
function clip(id: string, max: number): string {
  if (id.length <= max) return id;
  const cut = id.charCodeAt(max - 1) >= 0xd800 && id.charCodeAt(max - 1) <= 0xdbff ? max - 1 : max;
  return id.slice(0, cut);
}
