/** MQTT 3.1.1 / 5 / 3.1 packet types (a discriminated union on `cmd`), decoder error codes and codec limits. */

/** Quality of service levels as they appear on the wire (§4.3). The broker grants at most 1. */
export type QoS = 0 | 1 | 2;

/** MQTT 3.1.1's protocol level (§3.1.2.2), the default of the codec. */
export const PROTOCOL_LEVEL = 4;

/** Protocol levels spoken: 3 (MQTT 3.1, "MQIsdp"), 4 (MQTT 3.1.1), 5 (MQTT 5.0). */
export type ProtocolVersion = 3 | 4 | 5;

/**
 * MQTT 5 properties (MQTT 5.0 §2.2.2.2), by mqtt-packet's names. Byte-valued flags are 0/1 numbers;
 * user properties keep their order and repeats. `subscriptionIdentifier` is a list in PUBLISH, one
 * number in SUBSCRIBE.
 */
export interface Properties {
  readonly payloadFormatIndicator?: number;
  readonly messageExpiryInterval?: number;
  readonly contentType?: string;
  readonly responseTopic?: string;
  readonly correlationData?: Uint8Array;
  readonly subscriptionIdentifier?: number | readonly number[];
  readonly sessionExpiryInterval?: number;
  readonly assignedClientIdentifier?: string;
  readonly serverKeepAlive?: number;
  readonly authenticationMethod?: string;
  readonly authenticationData?: Uint8Array;
  readonly requestProblemInformation?: number;
  readonly willDelayInterval?: number;
  readonly requestResponseInformation?: number;
  readonly responseInformation?: string;
  readonly serverReference?: string;
  readonly reasonString?: string;
  readonly receiveMaximum?: number;
  readonly topicAliasMaximum?: number;
  readonly topicAlias?: number;
  readonly maximumQoS?: number;
  readonly retainAvailable?: number;
  readonly userProperties?: readonly (readonly [string, string])[];
  readonly maximumPacketSize?: number;
  readonly wildcardSubscriptionAvailable?: number;
  readonly subscriptionIdentifiersAvailable?: number;
  readonly sharedSubscriptionAvailable?: number;
}

/** MQTT 5 reason codes the broker sends or reads (MQTT 5.0 §2.4). */
export const Reason = Object.freeze({
  Success: 0x00,
  NoSubscriptionExisted: 0x11,
  DisconnectWithWill: 0x04,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  ServerShuttingDown: 0x8b,
  TopicFilterInvalid: 0x8f,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  SharedSubscriptionsNotSupported: 0x9e,
  SubscriptionIdentifiersNotSupported: 0xa1,
} as const);

/**
 * Largest whole packet (fixed header included) the decoder accepts unless overridden. Devices on a
 * home network send small telemetry; 16 KiB bounds the per-connection reassembly buffer on the ESP32.
 */
export const MAX_PACKET_BYTES = 16384;

/** The largest Remaining Length the 4-byte variable-length encoding can carry (§2.2.3). */
export const MAX_REMAINING_LENGTH = 268435455;

/** Will message carried in CONNECT (§3.1.2.5). */
export interface Will {
  readonly properties?: Properties;
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
}

export interface ConnectPacket {
  readonly cmd: "connect";
  /** Absent: 4 (MQTT 3.1.1). */
  readonly version?: ProtocolVersion;
  readonly properties?: Properties;
  readonly clientId: string;
  readonly cleanSession: boolean;
  /** Seconds; 0 turns keepalive off (§3.1.2.10). */
  readonly keepalive: number;
  readonly username?: string;
  readonly password?: Uint8Array;
  readonly will?: Will;
}

/** CONNACK return codes (§3.2.2.3). */
export const ConnackCode = Object.freeze({
  Accepted: 0,
  UnacceptableProtocol: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUsernameOrPassword: 4,
  NotAuthorized: 5,
} as const);
export type ConnackCode = (typeof ConnackCode)[keyof typeof ConnackCode];

export interface ConnackPacket {
  readonly cmd: "connack";
  readonly sessionPresent: boolean;
  /** 3.1.1 return code (0–5), or an MQTT 5 reason code when encoded as version 5. */
  readonly returnCode: ConnackCode | number;
  readonly properties?: Properties;
}

export interface PublishPacket {
  readonly cmd: "publish";
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly dup: boolean;
  /** Present exactly when qos > 0 (§2.3.1). */
  readonly packetId?: number;
  readonly properties?: Properties;
}

/** The acknowledgements that carry only a packet id. PUBREC/PUBREL/PUBCOMP belong to QoS 2, which we refuse. */
export interface AckPacket {
  readonly cmd: "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback";
  readonly packetId: number;
  /** MQTT 5 (not UNSUBACK): absent means 0x00 Success. */
  readonly reasonCode?: number;
  /** MQTT 5 UNSUBACK: one reason code per filter. */
  readonly reasonCodes?: readonly number[];
  readonly properties?: Properties;
}

export interface Subscription {
  readonly filter: string;
  readonly qos: QoS;
  /** MQTT 5 subscription options (§3.8.3.1): no local, retain as published, retain handling 0–2. */
  readonly nl?: boolean;
  readonly rap?: boolean;
  readonly rh?: 0 | 1 | 2;
}

export interface SubscribePacket {
  readonly cmd: "subscribe";
  readonly packetId: number;
  /** At least one (§3.8.3). */
  readonly subscriptions: readonly Subscription[];
  readonly properties?: Properties;
}

/** SUBACK return code for a refused filter (§3.9.3). */
export const SUBACK_FAILURE = 0x80;

export interface SubackPacket {
  readonly cmd: "suback";
  readonly packetId: number;
  /** One per requested filter: the granted QoS or {@link SUBACK_FAILURE} (in MQTT 5 any reason code ≥ 0x80). */
  readonly granted: readonly (QoS | number)[];
  readonly properties?: Properties;
}

export interface UnsubscribePacket {
  readonly cmd: "unsubscribe";
  readonly packetId: number;
  /** At least one (§3.10.3). */
  readonly filters: readonly string[];
  readonly properties?: Properties;
}

export interface EmptyPacket {
  readonly cmd: "pingreq" | "pingresp";
}

/** DISCONNECT; reason code and properties in MQTT 5 only (§3.14.2). */
export interface DisconnectPacket {
  readonly cmd: "disconnect";
  readonly reasonCode?: number;
  readonly properties?: Properties;
}

/** MQTT 5 AUTH (§3.15): read so that it can be refused. */
export interface AuthPacket {
  readonly cmd: "auth";
  readonly reasonCode?: number;
  readonly properties?: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | EmptyPacket
  | DisconnectPacket
  | AuthPacket;

export type PacketCmd = Packet["cmd"];

/** Control packet type numbers (§2.2.1), indexed by number. 0 is reserved; 15 (AUTH) is MQTT 5 only. */
export const PACKET_TYPES: readonly (PacketCmd | undefined)[] = Object.freeze([
  undefined,
  "connect",
  "connack",
  "publish",
  "puback",
  "pubrec",
  "pubrel",
  "pubcomp",
  "subscribe",
  "suback",
  "unsubscribe",
  "unsuback",
  "pingreq",
  "pingresp",
  "disconnect",
  "auth",
]);

/**
 * Why the decoder refused the input (a closed set; the broker writes the code as the `reason` of a
 * `protocol` audit record). After any of these the decoder stays failed.
 */
export const MqttError = Object.freeze({
  /** Packet type 0 or 15 (§2.2.1). */
  BadPacketType: "bad-packet-type",
  /** Reserved fixed-header flag bits not as §2.2.2 requires, or DUP set on QoS 0 (§3.3.1.1). */
  BadFlags: "bad-flags",
  /** A Remaining Length longer than 4 bytes (§2.2.3). */
  BadRemainingLength: "bad-remaining-length",
  /** The packet is larger than the configured maximum. */
  TooLarge: "packet-too-large",
  /** A field runs past the end of the packet, or bytes are left over after the last field. */
  BadLength: "bad-length",
  /** CONNECT protocol name is not "MQTT" (§3.1.2.1). */
  BadProtocolName: "bad-protocol-name",
  /** CONNECT protocol level other than 3 ("MQIsdp"), 4 or 5 (§3.1.2.2); the broker answers CONNACK 1. */
  UnsupportedProtocolLevel: "unsupported-protocol-level",
  /** CONNECT flags: reserved bit set, will fields without the will flag, password without username (§3.1.2.3–9). */
  BadConnectFlags: "bad-connect-flags",
  /** Ill-formed UTF-8, a surrogate, or U+0000 in a string (§1.5.3). */
  BadUtf8: "bad-utf8",
  /** QoS 3 (§3.3.1.2, §3.8.3.1). */
  BadQos: "bad-qos",
  /** Packet identifier 0 (§2.3.1). */
  BadPacketId: "bad-packet-id",
  /** SUBSCRIBE, UNSUBSCRIBE or SUBACK without a single entry (§3.8.3, §3.10.3). */
  NoTopics: "no-topics",
  /** An empty topic, a wildcard in a topic name, or a malformed filter (§4.7). */
  BadTopic: "bad-topic",
  /** MQTT 5: an unknown or duplicated property, one not allowed in the packet, or a value out of range (§2.2.2.2). */
  BadProperty: "bad-property",
  /** A CONNACK or SUBACK return code outside the defined set (§3.2.2.3, §3.9.3). */
  BadReturnCode: "bad-return-code",
} as const);
export type MqttError = (typeof MqttError)[keyof typeof MqttError];

/** A typed decoder failure: an expected outcome for bad input, never thrown. */
export interface DecodeError {
  readonly code: MqttError;
  readonly message: string;
}
