/**
 * Small X.509 helpers for the Node board and its demo: self-signed identities, a local CA and the
 * leaves it issues. ECDSA P-256 throughout (@peculiar/x509 over node's WebCrypto). Everything is
 * generated at run time; nothing here is a committed secret.
 */
import "reflect-metadata";
import { createHash, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { CERT_MAX_DAYS } from "../../src/config.js";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 24 * 3600_000;

export interface KeyAndCert {
  readonly keyPem: string;
  readonly certPem: string;
  /** SHA-256 of the certificate DER, uppercase hex with colons (as openssl prints it). */
  readonly fingerprint: string;
  /** For issuing: the parsed certificate and key pair. */
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

async function pemKey(keys: CryptoKeyPair): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as webcrypto.CryptoKey);
  return `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  return "01" + Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString("hex");
}

/** Fingerprint of a PEM certificate: SHA-256 of its DER, "AB:CD:…". */
export function certFingerprint(certPem: string): string {
  const der = Buffer.from(certPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  return createHash("sha256").update(der).digest("hex").toUpperCase().match(/../g)!.join(":");
}

async function finish(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<KeyAndCert> {
  const certPem = cert.toString("pem") + "\n";
  return {
    keyPem: await pemKey(keys),
    certPem,
    fingerprint: certFingerprint(certPem),
    cert,
    keys,
  };
}

function sans(names: readonly string[]): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension(
    names.map((n) => (/^\d+\.\d+\.\d+\.\d+$/.test(n) || n.includes(":") ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n })),
  );
}

function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as unknown as Promise<CryptoKeyPair>;
}

/** A TLS server leaf's extensions, with the key identifiers of RFC 5280 §4.2.1.1–2. */
async function serverExtensions(keys: CryptoKeyPair, names: readonly string[], issuerKey: CryptoKey): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    sans(names),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey),
  ];
}

/**
 * A self-signed server identity (the gateway's HTTPS certificate), valid from `now` for `days`.
 * @throws Error when `days` exceeds CERT_MAX_DAYS (825).
 */
export async function selfSigned(commonName: string, names: readonly string[], days: number = CERT_MAX_DAYS, now = Date.now()): Promise<KeyAndCert> {
  if (!(days > 0 && days <= CERT_MAX_DAYS)) throw new Error(`a self-signed certificate is valid 1-${CERT_MAX_DAYS} days, not ${days}`);
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: await serverExtensions(keys, names, keys.publicKey),
  });
  return finish(cert, keys);
}

/** A certificate authority for local test and demo brokers. */
export async function makeCa(commonName = "Portcullis demo CA"): Promise<KeyAndCert> {
  const keys = await newKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 365 * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return finish(cert, keys);
}

/** A server leaf issued by `ca`; `validDays` may be negative for an already expired certificate. */
export async function issueServer(ca: KeyAndCert, commonName: string, names: readonly string[], validDays = 30): Promise<KeyAndCert> {
  const keys = await newKeys();
  const now = Date.now();
  const notAfter = new Date(now + validDays * DAY);
  const notBefore = validDays < 0 ? new Date(notAfter.getTime() - 30 * DAY) : new Date(now - 60_000);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}`,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: await serverExtensions(keys, names, ca.keys.publicKey),
  });
  return finish(cert, keys);
}
