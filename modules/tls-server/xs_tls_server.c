/*
 * XS binding of the TLS byte pump (tls_pump.c): host objects for a server identity (certificate + key,
 * shared) and for one connection's pump. JavaScript owns the TCP socket (ECMA-419 embedded:io/socket/tcp)
 * and moves ciphertext through feed()/take(); see hosts/moddable/https.ts.
 */
#include "xsmc.h"
#include "xsHost.h"
#include "mc.xs.h"

#include "tls_pump.h"
#include "entropy_source.h"

#define kTakeChunk 1024
#define kReadChunk 1024

typedef struct {
	tls_pump_config_t *config;
} IdentityRecord;

void xs_tls_identity_destructor(void *data)
{
	if (data)
		tls_pump_config_destroy(((IdentityRecord *)data)->config);
}

/* new TLSIdentity(certificateDER, keyDER) */
void xs_tls_identity(xsMachine *the)
{
	void *cert, *key;
	xsUnsignedValue cert_len, key_len;
	int err = 0;
	IdentityRecord record;
	xsmcGetBufferReadable(xsArg(0), &cert, &cert_len);
	xsmcGetBufferReadable(xsArg(1), &key, &key_len);
	record.config = tls_pump_config_create(cert, cert_len, key, key_len, portcullis_entropy_fill, NULL, &err);
	if (!record.config)
		xsUnknownError("TLS identity rejected (mbedTLS %d)", err);
	xsmcSetHostChunk(xsThis, &record, sizeof(record));
}

/*
 * new TLSTrust(anchor, systemRoots): a client configuration (vendor uplinks) trusting `anchor` (DER or
 * PEM; undefined: none) and, when systemRoots, the platform's bundle. Shares IdentityRecord: a TLSPump
 * built on it is a client.
 */
void xs_tls_trust(xsMachine *the)
{
	void *ca = NULL;
	xsUnsignedValue ca_len = 0;
	int err = 0;
	IdentityRecord record;
	if (xsmcTest(xsArg(0)))
		xsmcGetBufferReadable(xsArg(0), &ca, &ca_len);
	record.config = tls_pump_client_config_create(ca, ca_len, xsmcTest(xsArg(1)), portcullis_entropy_fill, NULL, &err);
	if (!record.config)
		xsUnknownError("TLS trust rejected (mbedTLS %d)", err);
	xsmcSetHostChunk(xsThis, &record, sizeof(record));
}

/*
 * TLSIdentity.generate(commonName, notBefore, notAfter) -> {key, certificate} as DER ArrayBuffers;
 * the dates are "YYYYMMDDhhmmss" UTC, at most TLS_PUMP_CERT_MAX_DAYS apart (else it throws).
 */
void xs_tls_identity_generate(xsMachine *the)
{
	uint8_t key[160], cert[640];
	size_t key_len = sizeof(key), cert_len = sizeof(cert);
	char name[96], from[16], to[16];
	xsmcToStringBuffer(xsArg(0), name, sizeof(name));
	xsmcToStringBuffer(xsArg(1), from, sizeof(from));
	xsmcToStringBuffer(xsArg(2), to, sizeof(to));
	int r = tls_pump_generate_identity(portcullis_entropy_fill, NULL, name, from, to, key, &key_len, cert, &cert_len);
	if (r != 0)
		xsUnknownError("TLS identity generation failed (mbedTLS %d)", r);
	xsmcVars(1);
	xsmcSetNewObject(xsResult);
	xsmcSetArrayBuffer(xsVar(0), key, key_len);
	xsmcSet(xsResult, xsID_key, xsVar(0));
	xsmcSetArrayBuffer(xsVar(0), cert, cert_len);
	xsmcSet(xsResult, xsID_certificate, xsVar(0));
	c_memset(key, 0, sizeof(key));
}

void xs_tls_pump_destructor(void *data)
{
	tls_pump_destroy(data);
}

/* new TLSPump(identity) (a server connection) or new TLSPump(trust, serverName) (a client one) */
void xs_tls_pump(xsMachine *the)
{
	IdentityRecord *identity = xsmcGetHostChunk(xsArg(0));
	if (!identity || !identity->config)
		xsUnknownError("identity or trust required");
	tls_pump_t *pump;
	if (xsmcArgc > 1 && xsmcTest(xsArg(1))) {
		char name[256];
		xsmcToStringBuffer(xsArg(1), name, sizeof(name));
		pump = tls_pump_create_client(identity->config, name);
	} else
		pump = tls_pump_create(identity->config);
	if (!pump)
		xsUnknownError("no memory for TLS connection (or a trust without a server name, an identity with one)");
	xsmcSetHostData(xsThis, pump);
	/* Keep the shared configuration alive as long as this connection. */
	xsmcDefine(xsThis, xsID_identity, xsArg(0), xsDontEnum | xsDontSet | xsDontDelete);
}

static tls_pump_t *get_pump(xsMachine *the)
{
	tls_pump_t *pump = xsmcGetHostData(xsThis);
	if (!pump)
		xsUnknownError("closed");
	return pump;
}

/* feed(ciphertext) -> bytes accepted */
void xs_tls_pump_feed(xsMachine *the)
{
	tls_pump_t *pump = get_pump(the);
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferReadable(xsArg(0), &data, &length);
	xsmcSetInteger(xsResult, (xsIntegerValue)tls_pump_feed_ciphertext(pump, data, length));
}

/* take() -> ArrayBuffer of ciphertext to send, or undefined */
void xs_tls_pump_take(xsMachine *the)
{
	tls_pump_t *pump = get_pump(the);
	size_t pending = tls_pump_pending_ciphertext(pump);
	if (!pending)
		return;
	if (pending > kTakeChunk)
		pending = kTakeChunk;
	/* take() copies min(pending, cap) bytes, so the buffer is filled exactly: no resize needed. */
	void *out = xsmcSetArrayBuffer(xsResult, NULL, pending);
	tls_pump_take_ciphertext(pump, out, pending);
}

/* read() -> ArrayBuffer of plaintext, or undefined */
void xs_tls_pump_read(xsMachine *the)
{
	tls_pump_t *pump = get_pump(the);
	uint8_t buffer[kReadChunk];
	size_t n = tls_pump_read_plaintext(pump, buffer, sizeof(buffer));
	if (n)
		xsmcSetArrayBuffer(xsResult, buffer, n);
}

/* write(plaintext) -> bytes accepted */
void xs_tls_pump_write(xsMachine *the)
{
	tls_pump_t *pump = get_pump(the);
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferReadable(xsArg(0), &data, &length);
	xsmcSetInteger(xsResult, (xsIntegerValue)tls_pump_write_plaintext(pump, data, length));
}

void xs_tls_pump_close(xsMachine *the)
{
	tls_pump_t *pump = xsmcGetHostData(xsThis);
	if (pump)
		tls_pump_close(pump);
}

/* Frees the connection at once (not waiting for GC): session keys are wiped. Harmless twice. */
void xs_tls_pump_destroy(xsMachine *the)
{
	tls_pump_t *pump = xsmcGetHostData(xsThis);
	if (pump) {
		tls_pump_destroy(pump);
		xsmcSetHostData(xsThis, NULL);
	}
}

void xs_tls_pump_get_state(xsMachine *the)
{
	tls_pump_t *pump = xsmcGetHostData(xsThis);
	xsmcSetInteger(xsResult, pump ? tls_pump_state(pump) : TLS_PUMP_CLOSED);
}

/* The server's certificate (DER) as a new ArrayBuffer once received, else undefined (client side: pins). */
void xs_tls_pump_get_peer_certificate(xsMachine *the)
{
	tls_pump_t *pump = xsmcGetHostData(xsThis);
	const uint8_t *der;
	size_t n = pump ? tls_pump_peer_certificate(pump, &der) : 0;
	if (n)
		xsmcSetArrayBuffer(xsResult, (void *)der, n);
}

void xs_tls_pump_get_error(xsMachine *the)
{
	tls_pump_t *pump = xsmcGetHostData(xsThis);
	xsmcSetInteger(xsResult, pump ? tls_pump_last_error(pump) : 0);
}
