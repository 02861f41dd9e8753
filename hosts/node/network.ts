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
  const addr = sock.remoteAddress ?? "unknown";
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

/**
 * The Node implementation of {@link Network}.
 * @throws TypeError (from `listen`) when `host` is not an IP literal; Error when the port cannot be bound.
 */
export function nodeNetwork(options: NodeNetworkOptions = {}): Network {
  const host = options.host;
  if (host !== undefined && net.isIP(host) === 0) throw new TypeError(`host must be an IP address, got "${host}"`);
  return {
    listen({ port, onConnection }): Listener {
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port ${port}`);
      if (typeof onConnection !== "function") throw new TypeError("onConnection required");
      const server = net.createServer((sock) => attach(sock, onConnection));
      // With an IP literal (or none), node binds inside listen() and reports failure on the next tick;
      // the address is therefore known, or missing, right here.
      server.on("error", () => {});
      server.listen({ port, ...(host !== undefined ? { host } : {}) });
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        throw new Error(`cannot listen on ${host ?? "*"}:${port}`);
      }
      let closed = false;
      return {
        port: address.port,
        close(): void {
          if (closed) return;
          closed = true;
          server.close();
        },
      };
    },
  };
}
