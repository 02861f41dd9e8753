/**
 * Typings for the SDK's TLS session (`ssl/session`, modules/crypt/ssl/session_419.js) as our pinning
 * socket uses it. The session reads and writes through a socket-like object whose `readable` and
 * `writable` counts the caller keeps current. `peerCert` holds the leaf certificate (DER) from the
 * Certificate message until the server's Finished (ssl_handshake.js deletes it there).
 */
declare module "portcullis/sdk/tls" {
  export interface SessionSocket {
    readable: number;
    writable: number;
    read(buffer?: unknown): unknown;
    write(data: unknown): number;
  }
  export class Session {
    constructor(options: Record<string, unknown>);
    initiateHandshake(): void;
    /** Processes at most one record; true when the handshake is over (or failed with an alert). */
    handshake(socket: SessionSocket): boolean;
    /** Application data, undefined when none yet, null when the peer closed. */
    read(socket: SessionSocket): Uint8Array | undefined | null;
    /** Encrypts and sends; returns the writable bytes left. */
    write(socket: SessionSocket, data: ArrayBuffer | ArrayBufferView, options?: { more?: boolean; byteLength?: number }): number;
    close(socket: SessionSocket): void;
    peerCert?: ArrayBuffer;
    alert?: { level: number; description: number };
  }
}
