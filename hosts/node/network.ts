/** The Network port on Node (`node:net`): a TCP listener whose sockets follow the DeviceSocket contract. */
import net from "node:net";
import type { DeviceSocket, Listener, Network, SocketHandler } from "../../src/ports.js";

/** How long a socket closed by the core may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

export interface NodeNetworkOptions {
  /** Interface address to bind (an IP literal, so binding is synchronous). Default: all interfaces. */
  readonly host?: string;
}

function remoteOf(sock: net.Socket): string {
  // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; the audit log names them as IPv4.
  const addr = (sock.remoteAddress ?? "unknown").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");
  return `${addr.includes(":") ? `[${addr}]` : addr}:${sock.remotePort ?? 0}`;
}

/** Wraps one accepted socket and hands it to the core. */
function attach(sock: net.Socket, onConnection: (socket: DeviceSocket) => SocketHandler): void {
  sock.setNoDelay(true);
  let closedByCore = false;
  let reported = false;
  const device: DeviceSocket = {
    remote: remoteOf(sock),
    write(data: Uint8Array): boolean {
      if (closedByCore || sock.destroyed || !sock.writable) return false;
      return sock.write(data);
    },
    close(): void {
      if (closedByCore) return;
      closedByCore = true;
      sock.end();
      // A peer that never reads must not pin the socket open.
      setTimeout(() => sock.destroy(), CLOSE_GRACE_MS).unref();
    },
    pause(): void {
      if (!closedByCore) sock.pause(); // node stops reading at its buffer's high-water mark: TCP holds the peer back
    },
    resume(): void {
      if (!closedByCore) sock.resume();
    },
  };
  let handler: SocketHandler;
  try {
    handler = onConnection(device);
  } catch {
    sock.destroy();
    return;
  }
  const finish = (): void => {
    if (closedByCore || reported) return;
    reported = true;
    handler.onClose();
  };
  sock.on("data", (chunk: Buffer) => {
    if (!closedByCore) handler.onData(chunk);
  });
  sock.on("drain", () => {
    if (!closedByCore) handler.onWritable?.();
  });
  sock.on("error", () => {
    finish();
    sock.destroy();
  });
  sock.on("close", finish);
}

/** A {@link Listener} that also tells when the bind finished (node binds asynchronously when given a host). */
export interface NodeListener extends Listener {
  /** Resolves with the bound port once listening; rejects when the bind failed. */
  readonly ready: Promise<number>;
}

/** {@link Network} whose listeners are {@link NodeListener}s. */
export interface NodeNetwork extends Network {
  listen(options: Parameters<Network["listen"]>[0]): NodeListener;
}

/**
 * The Node implementation of {@link Network}.
 *
 * Without `host`, node binds inside `listen()`, so a port that cannot be bound throws at once and
 * `port` is the real port (also for port 0) when `listen()` returns. With `host`, node resolves the
 * address first and binds on a later tick: `port` reads the bound port once `ready` has resolved, and a
 * bind failure rejects `ready` instead of throwing.
 * @throws TypeError when `host` is not an IP literal.
 */
export function nodeNetwork(options: NodeNetworkOptions = {}): NodeNetwork {
  const host = options.host;
  if (host !== undefined && net.isIP(host) === 0) throw new TypeError(`host must be an IP address, got "${host}"`);
  return {
    listen({ port, onConnection }): NodeListener {
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port ${port}`);
      if (typeof onConnection !== "function") throw new TypeError("onConnection required");
      const server = net.createServer((sock) => attach(sock, onConnection));
      const ready = new Promise<number>((resolve, reject) => {
        server.once("listening", () => resolve(boundPort(server) ?? port));
        server.once("error", (e) => reject(new Error(`cannot listen on ${host ?? "*"}:${port}: ${e.message}`)));
      });
      ready.catch(() => {}); // callers that do not await `ready` must not see an unhandled rejection
      server.listen({ port, ...(host !== undefined ? { host } : {}) });
      if (host === undefined && boundPort(server) === undefined) {
        server.close();
        throw new Error(`cannot listen on *:${port}`);
      }
      let closed = false;
      return {
        get port(): number {
          return boundPort(server) ?? port;
        },
        ready,
        close(): void {
          if (closed) return;
          closed = true;
          if (server.listening) server.close();
          else server.once("listening", () => server.close());
        },
      };
    },
  };
}

function boundPort(server: net.Server): number | undefined {
  const address = server.address();
  return address !== null && typeof address === "object" ? address.port : undefined;
}
