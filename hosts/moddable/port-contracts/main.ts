/**
 * The port contract app: runs the same contract suites as Node (test/contract/*.contract.ts, mapped
 * under their repository paths by manifest.json, with `node:assert/strict` mapped to test/xs/assert.ts)
 * against the Moddable ports on `lin`: the file-backed NorFlash, the file key store, and the Crypto port
 * on the SDK's crypt modules with the board's entropy. Ends with the harness's `xs: N passed, N failed`,
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

runAll().then(
  () => trace("contracts: done\n"),
  (e: unknown) => trace(`xs: 0 passed, 1 failed (${String(e)})\n`),
);
