/*
 * portcullis/tls-server: TLS 1.2 as a byte pump (see tls_pump.h), server and client. The caller owns the socket.
 */
export class TLSIdentity @ "xs_tls_identity_destructor" {
	constructor(certificate, key) @ "xs_tls_identity";
	static generate(commonName, notBefore, notAfter) @ "xs_tls_identity_generate";
}

export class TLSTrust @ "xs_tls_identity_destructor" {
	constructor(anchor, systemRoots) @ "xs_tls_trust";
}

export class TLSPump @ "xs_tls_pump_destructor" {
	constructor(identity) @ "xs_tls_pump";
	feed(ciphertext) @ "xs_tls_pump_feed";
	take() @ "xs_tls_pump_take";
	read() @ "xs_tls_pump_read";
	write(plaintext) @ "xs_tls_pump_write";
	close() @ "xs_tls_pump_close";
	destroy() @ "xs_tls_pump_destroy";
	get state() @ "xs_tls_pump_get_state";
	get error() @ "xs_tls_pump_get_error";
	get peerCertificate() @ "xs_tls_pump_get_peer_certificate";
}

export const State = Object.freeze({ handshake: 0, open: 1, closed: 2, failed: 3 });
