/*
 * portcullis/sdk/crypt: the Moddable SDK crypto modules we use, re-exported under one name whose typings
 * (crypt.d.ts) we own, so the firmware type-checks the same against any SDK or @moddable/typings version.
 */
export { Digest, BlockCipher } from "crypt";
export { default as HMAC } from "hmac";
export { default as GCM } from "gcm";
export { default as Curve } from "curve";
