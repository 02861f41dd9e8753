/** The Node Network port (node:net) against the DeviceSocket/Listener contract in src/ports.ts. */
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import type { DeviceSocket, SocketHandler } from "../../src/ports.js";
import { nodeNetwork, type NodeListener } from "../../hosts/node/network.js";

interface Accepted {
  socket: DeviceSocket;
  data: Uint8Array[];
  closes: number;
  writable: number;
}

const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

describe("node network port", () => {
  let listener: NodeListener | undefined;
  let accepted: Accepted[];
  const peers: net.Socket[] = [];

  function listen(host?: string): NodeListener {
    accepted = [];
    listener = nodeNetwork(host !== undefined ? { host } : {}).listen({
      port: 0,
      onConnection(socket): SocketHandler {
        const a: Accepted = { socket, data: [], closes: 0, writable: 0 };
        accepted.push(a);
        return {
          onData: (d) => void a.data.push(new Uint8Array(d)),
          onClose: () => void a.closes++,
          onWritable: () => void a.writable++,
        };
      },
    });
    return listener;
  }

  async function peer(): Promise<net.Socket> {
    const s = net.connect(listener!.port, "127.0.0.1");
    s.on("error", () => {});
    peers.push(s);
    await once(s, "connect");
    await tick();
    return s;
  }

  afterEach(() => {
    peers.splice(0).forEach((p) => p.destroy());
    listener?.close();
    listener = undefined;
  });

  it("binds port 0 synchronously without a host and reports the real port", () => {
    const l = listen();
    assert.ok(l.port > 0);
  });

  it("with a host, reports the bound port once ready", async () => {
    const l = listen("127.0.0.1");
    assert.equal(await l.ready, l.port);
    assert.ok(l.port > 0);
  });

  it("throws at once when the port is taken", () => {
    const l = listen();
    assert.throws(() => nodeNetwork().listen({ port: l.port, onConnection: () => ({ onData() {}, onClose() {} }) }), /cannot listen/);
  });

  it("rejects a host that is not an IP address", () => {
    assert.throws(() => nodeNetwork({ host: "localhost" }), TypeError);
  });

  it("passes bytes both ways and names the remote", async () => {
    listen();
    const p = await peer();
    p.write(Buffer.from([1, 2, 3]));
    await tick();
    const a = accepted[0]!;
    assert.deepEqual(Buffer.concat(a.data), Buffer.from([1, 2, 3]));
    assert.equal(a.socket.remote, `127.0.0.1:${p.localPort}`);
    const got = once(p, "data");
    assert.equal(a.socket.write(Uint8Array.of(9)), true);
    assert.deepEqual((await got)[0], Buffer.from([9]));
  });

  it("close() flushes, is harmless twice, and nothing calls back after it", async () => {
    listen();
    const p = await peer();
    const a = accepted[0]!;
    const got = once(p, "data");
    a.socket.write(Uint8Array.of(7));
    a.socket.close();
    a.socket.close();
    assert.deepEqual((await got)[0], Buffer.from([7]));
    assert.equal(a.socket.write(Uint8Array.of(8)), false);
    p.write(Buffer.from([1]));
    await tick();
    assert.deepEqual([a.data.length, a.closes], [0, 0]);
  });

  it("reports a peer close once, also after a reset", async () => {
    listen();
    const p1 = await peer();
    const p2 = await peer();
    p1.end();
    p2.resetAndDestroy();
    await tick(50);
    assert.deepEqual(accepted.map((a) => a.closes), [1, 1]);
  });

  it("returns false from write under backpressure and calls onWritable after drain", async () => {
    listen();
    const p = await peer();
    p.pause();
    const a = accepted[0]!;
    const chunk = new Uint8Array(64 * 1024);
    let writes = 0;
    while (a.socket.write(chunk)) if (++writes > 10000) assert.fail("never reported backpressure");
    p.resume();
    for (let i = 0; i < 100 && a.writable === 0; i++) await tick();
    assert.equal(a.writable, 1);
  });

  it("pause() stops onData until resume(), which delivers what arrived meanwhile, in order", async () => {
    listen();
    const p = await peer();
    const a = accepted[0]!;
    a.socket.pause!();
    a.socket.pause!(); // harmless twice
    p.write(Buffer.from([1, 2]));
    await tick(50);
    p.write(Buffer.from([3]));
    await tick(50);
    assert.deepEqual(a.data, [], "nothing read while paused");
    a.socket.resume!();
    for (let i = 0; i < 50 && Buffer.concat(a.data).length < 3; i++) await tick();
    assert.deepEqual(Buffer.concat(a.data), Buffer.from([1, 2, 3]));
    a.socket.close();
    a.socket.resume!(); // harmless after close
    a.socket.pause!();
  });

  it("a paused socket holds a fast peer back through TCP flow control, and still reports its close", async () => {
    listen();
    const p = await peer();
    const a = accepted[0]!;
    a.socket.pause!();
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    while (p.write(chunk) && written < 64 * 1024 * 1024) written += chunk.length;
    assert.ok(written < 64 * 1024 * 1024, "the peer saw backpressure");
    assert.deepEqual(a.data, []);
    p.destroy();
    a.socket.resume!();
    for (let i = 0; i < 100 && a.closes === 0; i++) await tick();
    assert.equal(a.closes, 1);
  });

  it("listener close() is harmless twice and keeps open connections", async () => {
    listen();
    const p = await peer();
    listener!.close();
    listener!.close();
    p.write(Buffer.from([5]));
    await tick();
    assert.deepEqual(accepted[0]!.data.map((d) => [...d]), [[5]]);
  });
});
