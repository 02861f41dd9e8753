/**
 * A minimal HTTP/1.0 responder over any {@link Network}: answers every request with one text body and
 * closes. main serves the status line with it over HTTPS until the core's audit-pull server
 * (src/gateway.ts) takes the port; it proves the TLS pump end to end in XS.
 */
import type { DeviceSocket, Listener, Network, SocketHandler } from "../../src/ports.js";

/** Request heads longer than this are refused (the connection is closed unanswered). */
const MAX_REQUEST_HEAD = 2048;

export function serveText(network: Network, port: number, body: () => string): Listener {
  return network.listen({
    port,
    onConnection(socket: DeviceSocket): SocketHandler {
      let head = "";
      let answered = false;
      return {
        onData(data: Uint8Array): void {
          if (answered) return;
          head += String.fromArrayBuffer(data.slice().buffer as ArrayBuffer);
          if (head.length > MAX_REQUEST_HEAD) {
            answered = true;
            return socket.close();
          }
          if (!head.includes("\r\n\r\n")) return;
          answered = true;
          const text = `${body()}\n`;
          const response = `HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`;
          socket.write(new Uint8Array(ArrayBuffer.fromString(response)));
          socket.close();
        },
        onClose(): void {},
      };
    },
  });
}
