/**
 * Makes a vendor's P-256 key pair for Portcullis envelopes: the private key as PKCS#8 PEM (file mode
 * 0600, never overwritten), and prints what goes into the contract: the public key (base64 of the
 * 65-byte uncompressed point) and its key id (hex of SHA-256(public key)[0..8]).
 *
 *   tsx tools/vendor-keygen.ts vendor.key
 */
import { createHash, generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";

/** Generates and writes the key; returns the contract fields. @throws when `path` already exists. */
export function vendorKeygen(path: string): { publicKey: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = privateKey.export({ format: "pem", type: "pkcs8" });
  writeFileSync(path, pem, { mode: 0o600, flag: "wx" });
  const jwk = publicKey.export({ format: "jwk" });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? "", "base64url"), Buffer.from(jwk.y ?? "", "base64url")]);
  if (point.length !== 65) throw new Error("unexpected public key size");
  return {
    publicKey: point.toString("base64"),
    keyId: createHash("sha256").update(point).digest().subarray(0, 8).toString("hex"),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write("usage: tsx tools/vendor-keygen.ts <private-key-file>\n");
    process.exit(2);
  }
  const out = vendorKeygen(path);
  process.stdout.write(`${JSON.stringify({ encryption: "hpke", vendorPublicKey: out.publicKey, keyId: out.keyId }, null, 2)}\n`);
}
