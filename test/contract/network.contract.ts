/**
 * The Network port contract (src/ports.ts `Network`, `DeviceSocket`, `SocketHandler`), run against
 * every implementation: the Node board's sockets (hosts/node/network.ts) and, inside the lin firmware's
 * XS, hosts/moddable/network.ts over our event-driven lin TCP module (modules/lin-socket). A peer on
 * the same machine (node:net on Node, an ECMA-419 TCP client in XS) talks to the gateway side.
 *
 * What it pins down is what the broker relies on: bytes arrive whole and in order both ways, also when
 * they are many more than any socket buffer; `write` returning false is followed by `onWritable`;
 * `pause` holds `onData` back and `resume` delivers what waited; `close` sends what was written first;
 * a peer's close is one `onClose`, after the bytes that preceded it.
 */
import assert from "node:assert/strict";
import type { DeviceSocket, Network, SocketHandler } from "../../src/ports.js";
import { concatAll } from "../../src/util/bytes.js";

/** The other end of one connection, as the host's test harness provides it. */
export interface NetworkPeer {
  /** Sends bytes to the gateway side (buffered by the peer as needed). */
  write(data: Uint8Array): void;
  /** Bytes received from the gateway side so far, in order. */
  received(): Uint8Array;
  /** Whether the gateway side closed (end of stream seen). */
  readonly ended: boolean;
  /** Stops reading (the peer's kernel buffer then fills and TCP holds the sender back) / reads again. */
  pause(): void;
  resume(): void;
  /** Closes the peer's end. */
  close(): void;
}

export interface NetworkHarness {
  readonly network: Network;
  /** Connects a peer to 127.0.0.1:`port`. */
  connect(port: number): Promise<NetworkPeer>;
  /** Lets the event loop run for `ms`. */
  sleep(ms: number): Promise<void>;
}

/** A deterministic byte pattern, different for each `seed`, so order and loss both show. */
function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: ${a.length} bytes, expected ${b.length}`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: first difference at byte ${i} of ${a.length}`);
}

/** The gateway side of one connection: records what the port calls. */
class Side implements SocketHandler {
  socket: DeviceSocket | undefined;
  chunks: Uint8Array[] = [];
  length = 0;
  closes = 0;
  writables = 0;

  onData(data: Uint8Array): void {
    this.chunks.push(data.slice()); // only valid during the call
    this.length += data.length;
  }

  onClose(): void {
    this.closes++;
  }

  onWritable(): void {
    this.writables++;
  }

  bytes(): Uint8Array {
    return concatAll(this.chunks);
  }
}


async function until(h: NetworkHarness, what: string, ready: () => boolean, ms = 10000): Promise<void> {
  for (let waited = 0; !ready(); waited += 5) {
    if (waited > ms) assert.fail(`timed out waiting for ${what}`);
    await h.sleep(5);
  }
}

/** Writes `data` to the socket in `piece`-byte writes, waiting for onWritable whenever write says full. */
async function writeAll(h: NetworkHarness, side: Side, data: Uint8Array, piece: number): Promise<number> {
  let waits = 0;
  for (let at = 0; at < data.length; at += piece) {
    if (!side.socket!.write(data.subarray(at, Math.min(at + piece, data.length)))) {
      const seen = side.writables;
      waits++;
      await until(h, "onWritable after a full write", () => side.writables > seen);
    }
  }
  return waits;
}

export function networkContract(name: string, make: () => NetworkHarness): void {
  describe(`Network contract: ${name}`, () => {
    async function open(h: NetworkHarness): Promise<{ side: Side; peer: NetworkPeer; close(): void }> {
      const side = new Side();
      const listener = h.network.listen({
        port: 0,
        onConnection(socket) {
          side.socket = socket;
          return side;
        },
      });
      const peer = await h.connect(listener.port);
      await until(h, "the connection to be accepted", () => side.socket !== undefined);
      return { side, peer, close: () => (peer.close(), listener.close()) };
    }

    it("delivers 256 KiB from the peer whole and in order", async () => {
      const h = make();
      const { side, peer, close } = await open(h);
      const data = pattern(256 * 1024, 1);
      for (let at = 0; at < data.length; at += 3000) peer.write(data.subarray(at, Math.min(at + 3000, data.length)));
      await until(h, "256 KiB at the gateway side", () => side.length >= data.length);
      sameBytes(side.bytes(), data, "peer → gateway");
      assert.equal(side.closes, 0);
      close();
    });

    it("sends 512 KiB to a peer whole and in order, with onWritable after every full write", async () => {
      const h = make();
      const { side, peer, close } = await open(h);
      const data = pattern(512 * 1024, 2);
      await writeAll(h, side, data, 1000);
      await until(h, "512 KiB at the peer", () => peer.received().length >= data.length);
      sameBytes(peer.received(), data, "gateway → peer");
      close();
    });

    it("pushes back (write false) when the peer stops reading, and loses nothing once it reads again", async () => {
      const h = make();
      const { side, peer, close } = await open(h);
      peer.pause();
      const data = pattern(8 * 1024 * 1024, 7);
      let at = 0;
      // Until the kernel buffers on both ends are full: then the port's own high-water mark says stop.
      for (let full = false; !full; ) {
        assert.ok(at < data.length, "8 MiB written to a peer that reads nothing, and write never returned false");
        full = !side.socket!.write(data.subarray(at, at + 1000));
        at += 1000;
        if (!full && at % 16000 === 0) await h.sleep(1); // let the host move bytes to the kernel
      }
      // The host may still move what it queued into a lower buffer (onWritable), but it cannot take
      // much more: a peer that reads nothing holds the sender within a bound.
      // As the core does: after a false write, write again only once onWritable has come.
      let seen = side.writables;
      for (let rounds = 0; rounds < 20; rounds++) {
        await h.sleep(10);
        if (side.writables === seen) continue;
        seen = side.writables;
        for (let more = true; more; at += 1000) {
          assert.ok(at < data.length, "8 MiB taken from the sender although the peer reads nothing");
          more = side.socket!.write(data.subarray(at, at + 1000)); // queued either way
        }
      }
      assert.equal(side.closes, 0, "the connection was dropped although the sender waited for onWritable");
      peer.resume();
      await writeAll(h, side, data.subarray(at), 1000);
      await until(h, "every byte at the peer", () => peer.received().length >= data.length);
      sameBytes(peer.received(), data, "bytes across the push-back");
      close();
    });

    it("holds onData while paused and delivers what waited on resume, in order", async () => {
      const h = make();
      const { side, peer, close } = await open(h);
      const socket = side.socket!;
      if (socket.pause === undefined || socket.resume === undefined) return close(); // optional in the port
      peer.write(pattern(100, 3));
      await until(h, "the first 100 bytes", () => side.length >= 100);
      socket.pause();
      const held = pattern(64 * 1024, 4);
      peer.write(held);
      await h.sleep(200);
      const whilePaused = side.length;
      // Bytes the host had already taken when pause() came may still arrive; nothing read after it does.
      await h.sleep(200);
      assert.equal(side.length, whilePaused, "onData kept coming while paused");
      assert.ok(whilePaused < 100 + held.length, "the whole 64 KiB arrived although reading was paused");
      socket.resume();
      await until(h, "the held bytes after resume", () => side.length >= 100 + held.length);
      const all = side.bytes();
      sameBytes(all.subarray(100), held, "bytes held across pause/resume");
      close();
    });

    it("sends what was written before close, then ends the stream; no callback follows close", async () => {
      const h = make();
      const { side, peer, close } = await open(h);
      const data = pattern(48 * 1024, 5);
      await writeAll(h, side, data, 4096);
      side.socket!.close();
      await until(h, "the peer to see the end of the stream", () => peer.ended);
      sameBytes(peer.received(), data, "bytes written before close");
      assert.equal(side.socket!.write(new Uint8Array([1])), false, "write after close must be a no-op returning false");
      await h.sleep(50);
      assert.equal(side.closes, 0, "onClose after the core's own close");
      close();
    });

    it("reports the peer's close once, after the bytes that preceded it", async () => {
      const h = make();
      const { side, peer, close } = await open(h);
      const data = pattern(20000, 6);
      peer.write(data);
      peer.close();
      await until(h, "onClose", () => side.closes > 0);
      sameBytes(side.bytes(), data, "bytes before the peer's close");
      await h.sleep(50);
      assert.equal(side.closes, 1, "onClose more than once");
      close();
    });

    it("keeps four connections apart", async () => {
      const h = make();
      const opened = [];
      for (let i = 0; i < 4; i++) opened.push(await open(h));
      opened.forEach((o, i) => o.peer.write(pattern(10000 + i, 10 + i)));
      for (let i = 0; i < 4; i++) {
        const o = opened[i]!;
        await until(h, `connection ${i}`, () => o.side.length >= 10000 + i);
        sameBytes(o.side.bytes(), pattern(10000 + i, 10 + i), `connection ${i}`);
      }
      for (const o of opened) o.close();
    });
  });
}
