/*
 * portcullis/sdk/tls: the SDK's TLS client session (modules/crypt/ssl/session_419.js), re-exported under
 * a name whose typings (tls.d.ts) we own.
 */
export { default as Session } from "ssl/session";
