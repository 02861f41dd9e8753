/** The Node board's Network port (hosts/node/network.ts) under the port's contract, with node:net peers. */
import net from "node:net";
import { networkContract, type NetworkPeer } from "../contract/network.contract.js";
import { nodeNetwork } from "../../hosts/node/network.js";

function connect(port: number): Promise<NetworkPeer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    const sock = net.connect({ host: "127.0.0.1", port }, () => {
      resolve({
        write: (data) => void sock.write(Buffer.from(data)),
        received: () => new Uint8Array(Buffer.concat(chunks)),
        get ended() {
          return ended;
        },
        pause: () => void sock.pause(),
        resume: () => void sock.resume(),
        close: () => void sock.destroy(),
      });
    });
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("end", () => (ended = true));
    sock.on("close", () => (ended = true));
    sock.once("error", reject);
  });
}

networkContract("Node sockets (hosts/node/network.ts)", () => ({
  network: nodeNetwork(),
  connect,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
}));
