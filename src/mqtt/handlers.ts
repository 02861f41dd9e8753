/** The broker's packet handlers, one per packet type a device may send (after MQTT.js `lib/handlers/`). */
import { utf8Length } from "./utf8.js";
import {
  ConnackCode,
  Reason,
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
import { NO_LOCAL, RETAIN_AS_PUBLISHED } from "./persist.js";
import { forwardable } from "./parse.js";

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
  s.version = p.version ?? 4;
  const idBytes = utf8Length(p.clientId);
  // MQTT 3.1 §3.1: client ids of 1 to 23 characters.
  const maxId = s.version === 3 ? Math.min(23, s.host.limits.maxClientIdBytes) : s.host.limits.maxClientIdBytes;
  if (idBytes <= 0 || idBytes > maxId || UNSAFE_ID.test(p.clientId)) {
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
  const props = p.properties;
  if (props?.authenticationMethod !== undefined) {
    // MQTT 5 enhanced authentication (§4.12) is not offered: devices use username and password.
    s.refuse(ConnackCode.NotAuthorized, "auth", "bad-authentication-method", Reason.BadAuthenticationMethod);
    return;
  }
  if (!s.host.authenticate(p.clientId, p.username, p.password)) {
    s.refuse(ConnackCode.NotAuthorized, "auth", "not-authorized");
    return;
  }
  if (props !== undefined) {
    if (props.receiveMaximum !== undefined) s.receiveMax = Math.min(props.receiveMaximum, s.host.limits.maxInflight);
    if (props.maximumPacketSize !== undefined) s.maxOut = props.maximumPacketSize;
    // §3.3.2.3.4: the server may alias topics toward the client up to the client's Topic Alias Maximum;
    // the gateway uses at most as many as it accepts itself (the profile's bound on RAM per session).
    if (props.topicAliasMaximum !== undefined) s.aliasOutMax = Math.min(props.topicAliasMaximum, s.host.limits.maxTopicAliases);
    s.sessionExpiry = props.sessionExpiryInterval ?? 0;
    s.quiet = props.requestProblemInformation === 0;
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
/** MQTT 5 §3.3.2.3.4: sets or resolves a client topic alias; undefined after a DISCONNECT 0x94/0x82. */
function resolveAlias(s: Session, p: PublishPacket): string | undefined {
  const alias = p.properties?.topicAlias;
  if (alias === undefined) return p.topic;
  if (alias === 0 || alias > s.host.limits.maxTopicAliases) {
    s.protocolError("topic-alias-invalid", `topic alias ${alias} (maximum ${s.host.limits.maxTopicAliases})`, Reason.TopicAliasInvalid);
    return undefined;
  }
  if (p.topic !== "") {
    (s.aliases ??= [])[alias] = p.topic;
    return p.topic;
  }
  const topic = s.aliases?.[alias];
  if (topic === undefined) s.protocolError("topic-alias-invalid", `topic alias ${alias} was never set`, Reason.ProtocolError);
  return topic;
}

function onPublish(s: Session, p: PublishPacket): void {
  if (s.version === 5 && p.properties !== undefined) {
    if (p.properties.subscriptionIdentifier !== undefined) return s.protocolError("bad-property", "subscription identifier from a client", Reason.ProtocolError);
    const topic = resolveAlias(s, p);
    if (topic === undefined) return;
    if (topic !== p.topic || p.properties.topicAlias !== undefined) p = { ...p, topic };
  }
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
    s.inbound.acknowledge(p, s.version === 5 ? Reason.NotAuthorized : 0); // MQTT 5 can say no
    return;
  }
  if (p.qos === 2) {
    if (s.qos2In.size >= s.host.limits.maxInflight) {
      s.close("backpressure", "QoS 2 messages awaiting PUBREL beyond the in-flight limit", Reason.ReceiveMaximumExceeded);
      return;
    }
    s.qos2In.add(p.packetId!);
  }
  s.host.route(id, p.topic, p.payload, p.qos, p.retain, s.version === 5 ? forwardable(p.properties) : undefined);
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
  const v5 = s.version === 5;
  if (v5 && p.properties?.subscriptionIdentifier !== undefined) {
    s.protocolError("bad-property", "subscription identifiers are not available (CONNACK)", Reason.SubscriptionIdentifiersNotSupported);
    return;
  }
  const granted: (QoS | number)[] = [];
  const fresh: boolean[] = [];
  const grants: number[] = [];
  const id = s.clientId!;
  const max = s.host.limits.maxQos;
  for (const { filter, qos, nl, rap } of p.subscriptions) {
    if (v5 && filter.startsWith("$share/")) {
      granted.push(Reason.SharedSubscriptionsNotSupported);
    } else if (!s.host.authorizeSubscribe(id, filter)) {
      s.event("auth", "deny", "not-authorized", { op: "subscribe" }, filter);
      granted.push(v5 ? Reason.NotAuthorized : SUBACK_FAILURE);
    } else if (!s.subscriptions.has(filter) && s.subscriptions.size >= s.host.limits.maxSubscriptionsPerClient) {
      s.event("auth", "deny", "limit", { op: "subscribe" }, filter);
      granted.push(v5 ? Reason.QuotaExceeded : SUBACK_FAILURE);
    } else {
      const g = (qos < max ? qos : max) as 0 | 1 | 2;
      fresh.push(!s.subscriptions.has(filter));
      const grant = g | (nl ? NO_LOCAL : 0) | (rap ? RETAIN_AS_PUBLISHED : 0);
      s.subscriptions.set(filter, grant);
      grants.push(grant);
      granted.push(g);
      continue;
    }
    grants.push(0);
    fresh.push(false);
  }
  const refused = v5 && !s.quiet && granted.some((g) => g >= 0x80);
  s.send({ cmd: "suback", packetId: p.packetId, granted, ...(refused ? { properties: { reasonString: "filter refused by the gateway's ACL or limits" } } : {}) });
  p.subscriptions.forEach(({ filter, rh }, i) => {
    const g = granted[i]!;
    if (g < 0x80 && s.state === "connected") s.host.subscribed(s, filter, grants[i]!, fresh[i]!, rh);
  });
}

function onUnsubscribe(s: Session, p: UnsubscribePacket): void {
  const codes: number[] = [];
  for (const f of p.filters) {
    const had = s.subscriptions.delete(f);
    if (had) s.host.unsubscribed(s, f);
    codes.push(had ? Reason.Success : Reason.NoSubscriptionExisted);
  }
  s.send(s.version === 5 ? { cmd: "unsuback", packetId: p.packetId, reasonCodes: codes } : { cmd: "unsuback", packetId: p.packetId });
}

/** Broker → device QoS 2, step 2: the device received it; release it (§4.3.3). */
function onPubrec(s: Session, packetId: number, reasonCode = 0): void {
  const m = s.inflight.get(packetId);
  if (m !== undefined && reasonCode >= 0x80) {
    // MQTT 5 §4.3.3: a refusal ends the exchange; no PUBREL.
    s.inflight.delete(packetId);
    s.drainBacklog();
    return;
  }
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
  const known = s.qos2In.delete(packetId);
  // Also for an unknown id: the PUBCOMP may have been lost (§4.3.3); MQTT 5 says so (0x92).
  s.send(known || s.version !== 5 ? { cmd: "pubcomp", packetId } : { cmd: "pubcomp", packetId, reasonCode: Reason.PacketIdentifierNotFound });
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
      return onPubrec(s, p.packetId, p.reasonCode);
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
    case "disconnect": {
      const expiry = p.properties?.sessionExpiryInterval;
      if (expiry !== undefined) {
        // MQTT 5 §3.14.2.2.2: a session that ends at disconnect cannot be made to outlive it here.
        if (s.sessionExpiry === 0 && expiry > 0) return s.protocolError("bad-property", "session expiry set at DISCONNECT after 0 in CONNECT");
        s.sessionExpiry = expiry;
        s.persistent = expiry > 0;
      }
      // §3.14.4: discard the will; MQTT 5 reason 0x04 asks for it to be sent.
      if (p.reasonCode === Reason.DisconnectWithWill) s.close("peer-closed");
      else s.close("clean");
      return;
    }
    case "auth":
      // No enhanced authentication: CONNECT carried no method, so AUTH is a protocol error (§4.12).
      s.protocolError("unexpected-packet", "AUTH without an authentication method", Reason.ProtocolError);
      return;
    default:
      s.protocolError(ProtocolReason.UnexpectedPacket, `${p.cmd} is sent by servers only`);
      return;
  }
}
