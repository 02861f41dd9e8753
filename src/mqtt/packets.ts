/** MQTT 3.1.1 packet types (a discriminated union on `cmd`), decoder error codes and codec limits. */

/** Quality of service levels as they appear on the wire (§4.3). The broker grants at most 1. */
export type QoS = 0 | 1 | 2;

/** The only protocol level we speak: MQTT 3.1.1 (§3.1.2.2). */
export const PROTOCOL_LEVEL = 4;

/**
 * Largest whole packet (fixed header included) the decoder accepts unless overridden. Devices on a
 * home network send small telemetry; 16 KiB bounds the per-connection reassembly buffer on the ESP32.
 */
export const MAX_PACKET_BYTES = 16384;

/** The largest Remaining Length the 4-byte variable-length encoding can carry (§2.2.3). */
export const MAX_REMAINING_LENGTH = 268435455;

/** Will message carried in CONNECT (§3.1.2.5). */
export interface Will {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
}

export interface ConnectPacket {
  readonly cmd: "connect";
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
  readonly returnCode: ConnackCode;
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
}

/** The acknowledgements that carry only a packet id. PUBREC/PUBREL/PUBCOMP belong to QoS 2, which we refuse. */
export interface AckPacket {
  readonly cmd: "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback";
  readonly packetId: number;
}

export interface Subscription {
  readonly filter: string;
  readonly qos: QoS;
}

export interface SubscribePacket {
  readonly cmd: "subscribe";
  readonly packetId: number;
  /** At least one (§3.8.3). */
  readonly subscriptions: readonly Subscription[];
}

/** SUBACK return code for a refused filter (§3.9.3). */
export const SUBACK_FAILURE = 0x80;

export interface SubackPacket {
  readonly cmd: "suback";
  readonly packetId: number;
  /** One per requested filter: the granted QoS or {@link SUBACK_FAILURE}. */
  readonly granted: readonly (QoS | typeof SUBACK_FAILURE)[];
}

export interface UnsubscribePacket {
  readonly cmd: "unsubscribe";
  readonly packetId: number;
  /** At least one (§3.10.3). */
  readonly filters: readonly string[];
}

export interface EmptyPacket {
  readonly cmd: "pingreq" | "pingresp" | "disconnect";
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | EmptyPacket;

export type PacketCmd = Packet["cmd"];

/** Control packet type numbers (§2.2.1), indexed by number. 0 and 15 are reserved. */
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
  undefined,
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
  /** CONNECT protocol level other than 4 (§3.1.2.2); the broker answers CONNACK 1. */
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
  /** A CONNACK or SUBACK return code outside the defined set (§3.2.2.3, §3.9.3). */
  BadReturnCode: "bad-return-code",
} as const);
export type MqttError = (typeof MqttError)[keyof typeof MqttError];

/** A typed decoder failure: an expected outcome for bad input, never thrown. */
export interface DecodeError {
  readonly code: MqttError;
  readonly message: string;
}
