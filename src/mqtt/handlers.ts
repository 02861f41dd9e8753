/** The broker's packet handlers, one per packet type a device may send (after MQTT.js `lib/handlers/`). */
import { utf8Length } from "./utf8.js";
import {
  ConnackCode,
  SUBACK_FAILURE,
  type ConnectPacket,
  type Packet,
  type PublishPacket,
  type QoS,
  type SubscribePacket,
  type UnsubscribePacket,
} from "./packets.js";
import { RATE_EXCESS_FACTOR } from "./rate.js";
import { AWAIT_PUBACK, AWAIT_PUBCOMP, AWAIT_PUBREC, type Session } from "./session.js";

/** Session-level protocol violations (the decoder's `MqttError` codes cover malformed bytes). */
export const ProtocolReason = Object.freeze({
  ExpectedConnect: "expected-connect",
  SecondConnect: "second-connect",
  Qos2Unsupported: "qos2-unsupported",
  UnexpectedPacket: "unexpected-packet",
  ConnectTimeout: "connect-timeout",
} as const);
export type ProtocolReason = (typeof ProtocolReason)[keyof typeof ProtocolReason];

/** Characters a client id may not contain: controls, topic separator, wildcards. */
const UNSAFE_ID = /[\u0000-\u001f\u007f/+#]/;

/** §3.1.4: authenticate, then admit (taking over an older session with the same id), then CONNACK 0. */
function onConnect(s: Session, p: ConnectPacket): void {
  if (s.state === "connected") {
    // §3.1.0: a second CONNECT is a protocol violation.
    s.protocolError(ProtocolReason.SecondConnect, "second CONNECT on one connection");
    return;
  }
  s.clientId = p.clientId;
  const idBytes = utf8Length(p.clientId);
  if (idBytes <= 0 || idBytes > s.host.limits.maxClientIdBytes || UNSAFE_ID.test(p.clientId)) {
    // §3.1.3.1: the gateway identifies devices by client id, so it never assigns one; and it builds
    // topics from ids (cmd/<id>/#), so an id with a topic separator or wildcard is refused.
    s.refuse(ConnackCode.IdentifierRejected, "auth", "bad-client-id");
    return;
  }
  if (s.host.full(p.clientId)) {
    // At maxConnections a new client id is refused before the credential check: CONNACK 3 costs no
    // HMAC work, and a device the board has no room for learns that it is full, not that it is unknown.
    s.refuse(ConnackCode.ServerUnavailable, "connect", "limit");
    return;
  }
  if (!s.host.authenticate(p.clientId, p.username, p.password)) {
    s.refuse(ConnackCode.NotAuthorized, "auth", "not-authorized");
    return;
  }
  // Only an authenticated device may take over a session (else anyone could kick a device off).
  const admission = s.host.admit(s);
  if (admission === "full") {
    s.refuse(ConnackCode.ServerUnavailable, "connect", "limit");
    return;
  }
  s.accept(p, admission === "takeover", s.host.resume(s, !p.cleanSession));
}

/**
 * Device → gateway and local subscribers. QoS 1 is acknowledged (PUBACK), QoS 2 received (PUBREC)
 * only after the gateway accepted the message (§4.3.2, §4.3.3). QoS 2 is delivered once, on the first
 * PUBLISH of a packet id; a resend before PUBREL is only acknowledged again (§4.3.3 method B).
 */
function onPublish(s: Session, p: PublishPacket): void {
  if (p.qos === 2 && s.host.limits.maxQos < 2) {
    // We never granted QoS 2 (§3.8.4 lets a server close here).
    s.protocolError(ProtocolReason.Qos2Unsupported, "PUBLISH with QoS 2");
    return;
  }
  if (p.qos === 2 && s.qos2In.has(p.packetId!)) {
    s.inbound.acknowledge(p);
    return;
  }
  if (s.bucket !== undefined && !s.bucket.take(s.host.clock.monotonic())) {
    rateExceeded(s, p);
    return;
  }
  const id = s.clientId!;
  if (!s.host.authorizePublish(id, p.topic)) {
    // Mosquitto-style: dropped, and acknowledged so the device does not resend it forever (3.1.1 has
    // no way to say no); recorded in aggregate per device.
    s.host.tally(`acl-publish|${id}`, { kind: "auth", decision: "deny", device: id, topic: p.topic, reason: "not-authorized", detail: { op: "publish" } });
    s.inbound.acknowledge(p);
    return;
  }
  if (p.qos === 2) {
    if (s.qos2In.size >= s.host.limits.maxInflight) {
      s.close("backpressure", "QoS 2 messages awaiting PUBREL beyond the in-flight limit");
      return;
    }
    s.qos2In.add(p.packetId!);
  }
  s.host.route(id, p.topic, p.payload, p.qos, p.retain);
  if (s.state === "connected") s.inbound.publish(p);
}

/**
 * A PUBLISH beyond the device's rate is refused, never acknowledged and then lost: QoS 0 is dropped;
 * QoS 1 gets no PUBACK and the connection closes, so the device still holds it and resends it after
 * reconnecting (§4.4). Either way it is counted in an aggregated `flow` deny `rate-limit` record, and a
 * device refused more than RATE_EXCESS_FACTOR × its burst within one window is disconnected.
 */
function rateExceeded(s: Session, p: PublishPacket): void {
  const id = s.clientId!;
  s.host.tally(`rate-limit|${id}`, { kind: "flow", decision: "deny", device: id, reason: "rate-limit", detail: { remote: s.remote } });
  if (p.qos > 0) s.close("rate-limit", `QoS ${p.qos} PUBLISH beyond the rate limit`);
  else if (s.bucket!.excess > RATE_EXCESS_FACTOR * s.host.limits.publishBurst) s.close("rate-limit", "kept publishing beyond the rate limit");
}

/**
 * §3.8.4: grant min(requested, maxQos); 0x80 for filters the gateway refuses or beyond the per-client
 * limit. Retained messages matching a granted filter follow the SUBACK, with RETAIN set (§3.3.1.3).
 */
function onSubscribe(s: Session, p: SubscribePacket): void {
  const granted: (QoS | typeof SUBACK_FAILURE)[] = [];
  const fresh: boolean[] = [];
  const id = s.clientId!;
  const max = s.host.limits.maxQos;
  for (const { filter, qos } of p.subscriptions) {
    if (!s.host.authorizeSubscribe(id, filter)) {
      s.event("auth", "deny", "not-authorized", { op: "subscribe" }, filter);
      granted.push(SUBACK_FAILURE);
    } else if (!s.subscriptions.has(filter) && s.subscriptions.size >= s.host.limits.maxSubscriptionsPerClient) {
      s.event("auth", "deny", "limit", { op: "subscribe" }, filter);
      granted.push(SUBACK_FAILURE);
    } else {
      const g = (qos < max ? qos : max) as 0 | 1 | 2;
      fresh.push(!s.subscriptions.has(filter));
      s.subscriptions.set(filter, g);
      granted.push(g);
      continue;
    }
    fresh.push(false);
  }
  s.send({ cmd: "suback", packetId: p.packetId, granted });
  p.subscriptions.forEach(({ filter }, i) => {
    const g = granted[i]!;
    if (g !== SUBACK_FAILURE && s.state === "connected") s.host.subscribed(s, filter, g, fresh[i]!);
  });
}

function onUnsubscribe(s: Session, p: UnsubscribePacket): void {
  for (const f of p.filters) if (s.subscriptions.delete(f)) s.host.unsubscribed(s, f);
  s.send({ cmd: "unsuback", packetId: p.packetId });
}

/** Broker → device QoS 2, step 2: the device received it; release it (§4.3.3). */
function onPubrec(s: Session, packetId: number): void {
  const m = s.inflight.get(packetId);
  if (m !== undefined && (m.state === AWAIT_PUBREC || m.state === AWAIT_PUBCOMP)) {
    m.state = AWAIT_PUBCOMP;
    s.send({ cmd: "pubrel", packetId });
  }
  // An unknown id is harmless: the message was already settled.
}

/** Device → broker QoS 2, step 3: forget the id (a later PUBLISH with it is a new message), PUBCOMP. */
function onPubrel(s: Session, packetId: number): void {
  if (s.host.limits.maxQos < 2) {
    s.protocolError(ProtocolReason.Qos2Unsupported, "pubrel: QoS 2 is not supported");
    return;
  }
  s.qos2In.delete(packetId);
  s.send({ cmd: "pubcomp", packetId }); // also for an unknown id: the PUBCOMP may have been lost (§4.3.3)
}

/** Routes one decoded packet by state and type. */
export function handlePacket(s: Session, p: Packet): void {
  if (s.state === "awaiting-connect" && p.cmd !== "connect") {
    s.protocolError(ProtocolReason.ExpectedConnect, `${p.cmd} before CONNECT (§3.1)`);
    return;
  }
  switch (p.cmd) {
    case "connect":
      return onConnect(s, p);
    case "publish":
      return onPublish(s, p);
    case "puback":
      if (s.inflight.get(p.packetId)?.state === AWAIT_PUBACK) {
        s.inflight.delete(p.packetId);
        s.drainBacklog();
      } // an unknown id is harmless: the message was already settled
      return;
    case "pubrec":
      return onPubrec(s, p.packetId);
    case "pubrel":
      return onPubrel(s, p.packetId);
    case "pubcomp":
      if (s.inflight.get(p.packetId)?.state === AWAIT_PUBCOMP) {
        s.inflight.delete(p.packetId);
        s.drainBacklog();
      }
      return;
    case "subscribe":
      return onSubscribe(s, p);
    case "unsubscribe":
      return onUnsubscribe(s, p);
    case "pingreq":
      s.send({ cmd: "pingresp" });
      return;
    case "disconnect":
      s.close("clean"); // §3.14.4: discard the will
      return;
    default:
      s.protocolError(ProtocolReason.UnexpectedPacket, `${p.cmd} is sent by servers only`);
      return;
  }
}
