/**
 * The port contract app: runs the same contract suites as Node (test/contract/*.contract.ts, mapped
 * under their repository paths by manifest.json, with `node:assert/strict` mapped to test/xs/assert.ts)
 * against the Moddable ports on `lin`: the file-backed NorFlash, the file key store, the Crypto port
 * on the SDK's crypt modules with the board's entropy, and the Network port over our lin TCP module. Ends with the harness's `xs: N passed, N failed`,
 * the only line tools/firmware-lin.ts --contracts trusts.
 */
import "portcullis/moddable/globals";
import { Directory, File } from "file";
import config from "mc/config";
import { runAll } from "test/xs/harness";
import { cryptoContract } from "test/contract/crypto";
import { flashContract } from "test/contract/flash";
import { keyStoreContract } from "test/contract/keystore";
import { utf8Contract } from "test/contract/utf8";
import { networkContract, type NetworkPeer } from "test/contract/network";
import { concatAll } from "portcullis/util/bytes";
import TCP from "embedded:io/socket/tcp";
import Timer from "timer";
import { ModdableNetwork } from "portcullis/moddable/network";
import { utf8Decode, utf8Encode } from "portcullis/moddable/utf8";
import { ModdableCrypto } from "portcullis/moddable/crypto";
import { auditImagePath, openAuditFlash } from "portcullis/moddable/flash";
import { FileKeyStore } from "portcullis/moddable/keystore";
import { EntropyRandom } from "portcullis/moddable/random";

// The harness prints with xsnap's `print`; on lin, `trace` goes to stdout.
(globalThis as { print?: (...args: unknown[]) => void }).print = (...args) => trace(`${args.join(" ")}\n`);

const { dataDir } = (config as unknown as { portcullis: { dataDir: string } }).portcullis;
try {
  Directory.create(dataDir);
} catch {
  // already there
}

/** The lin audit flash as the firmware opens it, on a fresh all-erased image each time (as on Node). */
function freshAuditFlash(): ReturnType<typeof openAuditFlash>["flash"] {
  const path = auditImagePath();
  if (File.exists(path)) File.delete(path);
  return openAuditFlash().flash;
}

let stores = 0;
flashContract("lin NorFlash over the file image (hosts/moddable/lin/flash)", freshAuditFlash);
keyStoreContract("lin FileKeyStore (hosts/moddable/lin/keystore)", () => new FileKeyStore(`${dataDir}keys-${stores++}/`));
// XS's String.fromArrayBuffer/ArrayBuffer.fromString are there: the ASCII fast path is what runs.
if (typeof (String as unknown as { fromArrayBuffer?: unknown }).fromArrayBuffer !== "function") trace("contracts: String.fromArrayBuffer missing: the UTF-8 fast path is not tested\n");
utf8Contract("hosts/moddable/utf8 in the firmware's XS (native fast path)", { utf8Encode, utf8Decode });
cryptoContract("ModdableCrypto on the SDK crypt modules (hosts/moddable/crypto)", () => new ModdableCrypto(new EntropyRandom()));

/**
 * A peer for the Network contract: an ECMA-419 TCP client (on lin, modules/lin-socket, the same module
 * under the gateway side) that queues what it is asked to send and writes it as the window allows.
 */
function connectPeer(port: number): Promise<NetworkPeer> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    const queue: Uint8Array[] = [];
    let writable = 0;
    let ended = false;
    let opened = false;
    let paused = false;
    let closing = false;
    const flush = (socket: TCP): void => {
      while (writable > 0 && queue.length > 0) {
        const head = queue[0]!;
        const n = Math.min(head.length, writable);
        socket.write(n === head.length ? head : head.subarray(0, n));
        writable -= n;
        if (n === head.length) queue.shift();
        else queue[0] = head.subarray(n);
      }
    };
    const socket: TCP = new TCP({
      address: "127.0.0.1",
      port,
      onReadable(this: TCP, count: number) {
        if (paused) return; // left in the socket: its buffer fills and TCP holds the sender back
        const bytes = this.read(count) as ArrayBuffer | undefined;
        if (bytes !== undefined) chunks.push(new Uint8Array(bytes));
      },
      onWritable(this: TCP, count: number) {
        writable = count;
        flush(this);
        if (closing && queue.length === 0) this.close(); // the module still sends what it holds
        if (!opened) {
          opened = true;
          resolve(peer);
        }
      },
      onError() {
        ended = true;
      },
    });
    const peer: NetworkPeer = {
      write(data) {
        queue.push(data.slice());
        flush(socket);
      },
      received() {
        return concatAll(chunks);
      },
      get ended() {
        return ended;
      },
      pause() {
        paused = true;
      },
      resume() {
        paused = false;
        const bytes = socket.read() as ArrayBuffer | undefined; // what waited; later bytes call onReadable
        if (bytes !== undefined) chunks.push(new Uint8Array(bytes));
      },
      close() {
        // What the contract asked to send goes first (as node:net's end() would).
        if (queue.length === 0) socket.close();
        else closing = true;
      },
    };
  });
}

networkContract("ModdableNetwork over the lin TCP module (hosts/moddable/network, modules/lin-socket)", () => ({
  network: new ModdableNetwork(),
  connect: connectPeer,
  sleep: (ms) => new Promise<void>((r) => Timer.set(() => r(), ms)),
}));

runAll().then(
  () => trace("contracts: done\n"),
  (e: unknown) => trace(`xs: 0 passed, 1 failed (${String(e)})\n`),
);
