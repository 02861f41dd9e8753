/**
 * Typings for the SDK's ECMA-419 MQTT client (`embedded:network/mqtt/client`, examples/io/tcp/mqttclient)
 * as it behaves in SDK 8.x: `onControl(message)` receives one object with `operation` and `id` (the
 * typings shipped with @moddable/typings 5.6 give it two arguments). Re-exported by mqtt.js.
 */
declare module "portcullis/sdk/mqtt" {
  export interface ControlMessage {
    readonly operation: number;
    readonly id?: number;
    readonly returnCode?: number;
  }
  export interface IoClass {
    readonly io: unknown;
    readonly [key: string]: unknown;
  }
  export interface MQTTClientOptions {
    host: string;
    port: number;
    id: string;
    user?: string;
    password?: ArrayBuffer | string;
    /** Milliseconds. */
    keepalive?: number;
    clean?: boolean;
    /** The DNS resolver: { io: Resolver, servers: string[], socket: { io: UDP } }. */
    dns: IoClass;
    /** The socket: { io: PinnedTLSSocket, TCP: { io: TCP }, secure: { ... } }. */
    socket: IoClass;
    /** Stored on the client as `target`: callbacks run with `this` = the client, so they can be shared functions. */
    target?: unknown;
    onControl?(this: MQTTClient, message: ControlMessage): void;
    onReadable?(this: MQTTClient, count: number, options: { more: boolean; topic?: string; QoS?: number; byteLength?: number }): void;
    onWritable?(this: MQTTClient, count: number): void;
    onError?(this: MQTTClient): void;
  }
  export interface WriteOptions {
    operation?: number;
    topic?: string;
    QoS?: 0 | 1 | 2;
    id?: number;
    retain?: boolean;
    byteLength?: number;
    /** SUBSCRIBE: the filters and their QoS. */
    items?: readonly { readonly topic: string; readonly QoS?: 0 | 1 | 2 }[];
  }
  export class MQTTClient {
    constructor(options: MQTTClientOptions);
    /** The `target` option, when given. */
    readonly target?: unknown;
    /** Writes a message (or a control packet when `operation` is set); returns bytes still writable. */
    write(data: ArrayBuffer | ArrayBufferView | null, options?: WriteOptions): number;
    read(count: number): ArrayBuffer;
    close(): void;
    static readonly CONNACK: 2;
    static readonly PUBLISH: 3;
    static readonly PUBACK: 4;
    static readonly SUBSCRIBE: 8;
    static readonly SUBACK: 9;
    static readonly PINGRESP: 13;
    static readonly DISCONNECT: 14;
  }
  export const TCP: unknown;
  export const UDP: unknown;
  export const Resolver: unknown;
}
