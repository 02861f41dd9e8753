/** portcullis/tls-server: TLS 1.2 (ECDHE AEAD suites only) over mbedTLS shaped as a byte pump (modules/tls-server/tls_pump.h): the admin HTTPS server and the uplinks' client. */
declare module "portcullis/tls-server" {
  /** A server certificate and its ECDSA P-256 key (DER), parsed once and shared by every connection. */
  export class TLSIdentity {
    /** @throws Error when the pair is malformed, mismatched, or the key is not P-256. */
    constructor(certificate: ArrayBuffer | ArrayBufferView, key: ArrayBuffer | ArrayBufferView);
    /**
     * Generates a fresh P-256 key and a self-signed certificate valid from `notBefore` to `notAfter`
     * ("YYYYMMDDhhmmss", UTC), at most 825 days apart (TLS_PUMP_CERT_MAX_DAYS).
     * @throws Error when generation fails (no secure random source, malformed dates, a longer validity).
     */
    static generate(commonName: string, notBefore: string, notAfter: string): { key: ArrayBuffer; certificate: ArrayBuffer };
  }
  /**
   * A client configuration for the vendor uplinks, shared by their connections: the chain, validity and
   * server name are always verified, against `anchor` (DER or PEM; undefined: none) and, with
   * `systemRoots`, the platform's bundle (ESP-IDF's; /etc/ssl/certs on Linux).
   * @throws Error when the anchor is malformed or nothing at all is trusted.
   */
  export class TLSTrust {
    constructor(anchor: ArrayBuffer | ArrayBufferView | undefined, systemRoots: boolean);
  }
  /** One connection, server side (an identity) or client side (a trust and the server's name). The caller moves ciphertext between it and the TCP socket. */
  export class TLSPump {
    /** @throws Error when out of memory. */
    constructor(identity: TLSIdentity);
    /** The client's ClientHello is ready to take at once. @throws Error when out of memory. */
    constructor(trust: TLSTrust, serverName: string);
    /** Hands in received ciphertext; returns bytes accepted (feed the rest after reading). */
    feed(ciphertext: ArrayBuffer | ArrayBufferView): number;
    /** Ciphertext to send (at most 1024 bytes per call), or undefined when none is pending. */
    take(): ArrayBuffer | undefined;
    /** Decrypted application data (at most 1024 bytes per call), or undefined when none. */
    read(): ArrayBuffer | undefined;
    /** Encrypts plaintext; returns bytes accepted (0: take ciphertext first, or not open). */
    write(plaintext: ArrayBuffer | ArrayBufferView): number;
    /** Queues close_notify. */
    close(): void;
    /** Frees the connection now and wipes its keys. Harmless twice. */
    destroy(): void;
    /** 0 handshake, 1 open, 2 closed, 3 failed (see State). */
    readonly state: number;
    /** The server's certificate (DER) once the handshake received it (client side: check pins before writing). */
    readonly peerCertificate: ArrayBuffer | undefined;
    /** The last mbedTLS error code (negative) or 0. */
    readonly error: number;
  }
  export const State: { readonly handshake: 0; readonly open: 1; readonly closed: 2; readonly failed: 3 };
}
