/*
 * tls_pump: TLS 1.2 server handshake and records over mbedTLS, fed and drained as bytes (see tls_pump.h).
 *
 * Builds against mbedTLS 2.28 (Debian 12 libmbedtls-dev) and 4.x (ESP-IDF 6.0): every API difference
 * is in tls_compat.c. The BIO callbacks below are the only I/O: mbedTLS reads from
 * `in` and writes to `out`, and answers WANT_READ / WANT_WRITE when they are empty / full
 * (mbedTLS "non-blocking I/O", ssl.h mbedtls_ssl_set_bio).
 */
#include "tls_pump.h"

#include <stdlib.h>
#include <string.h>

#include "tls_compat.h"

#include "mbedtls/ssl_ciphersuites.h"

struct tls_pump_config {
	mbedtls_ssl_config conf;
	mbedtls_x509_crt cert; /* server: our certificate; client: the trust anchors */
	mbedtls_pk_context key;
	int client;
	tls_pump_rng_t rng;
	void *rng_ctx;
};

struct tls_pump {
	mbedtls_ssl_context ssl;
	tls_pump_state_t state;
	int last_error;
	int close_pending;
	size_t in_pos, in_len, out_len;
	uint8_t in[TLS_PUMP_IN_CAP];
	uint8_t out[TLS_PUMP_OUT_CAP];
};

/*
 * TLS 1.2 ECDHE with AEAD only, ECDSA certificates only (RFC 5289 §3.2, RFC 7905): no CBC, no SHA-1
 * MAC, no CCM8, no static RSA, and no RSA private operation on the device. ChaCha20-Poly1305 where the
 * mbedTLS build has it (Debian's 2.28 does; an ESP-IDF config may leave it out).
 */
static const int kCiphersuites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
#if defined(TLS_COMPAT_HAVE_CHACHAPOLY)
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
#endif
	0
};

/*
 * As a client the server's certificate may also be RSA (most public clouds): ECDHE-RSA with AEAD, a public
 * operation only. Still no CBC, no static RSA key exchange, TLS 1.2 only.
 */
static const int kClientCiphersuites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
#if defined(TLS_COMPAT_HAVE_CHACHAPOLY)
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
#endif
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
#if defined(TLS_COMPAT_HAVE_CHACHAPOLY)
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
#endif
	0
};

/* PEM parsers need a NUL-terminated buffer whose length counts the NUL (pk.h mbedtls_pk_parse_key). */
static uint8_t *nul_terminated(const uint8_t *data, size_t len, size_t *out_len)
{
	if (len > 0 && data[len - 1] == 0) {
		*out_len = len;
		return NULL;
	}
	uint8_t *copy = malloc(len + 1);
	if (copy) {
		memcpy(copy, data, len);
		copy[len] = 0;
		*out_len = len + 1;
	}
	return copy;
}

static int is_pem(const uint8_t *data, size_t len)
{
	return len > 10 && memcmp(data, "-----BEGIN", 10) == 0;
}

static int parse_cert(mbedtls_x509_crt *cert, const uint8_t *data, size_t len)
{
	if (!is_pem(data, len))
		return mbedtls_x509_crt_parse_der(cert, data, len);
	size_t n;
	uint8_t *copy = nul_terminated(data, len, &n);
	if (!copy && data[len - 1] != 0)
		return -1;
	int r = mbedtls_x509_crt_parse(cert, copy ? copy : data, n);
	free(copy);
	return r;
}

static int parse_key(tls_pump_config_t *c, const uint8_t *data, size_t len)
{
	uint8_t *copy = NULL;
	size_t n = len;
	if (is_pem(data, len)) {
		copy = nul_terminated(data, len, &n);
		if (!copy && data[len - 1] != 0)
			return -1;
	}
	int r = tls_compat_parse_key(&c->key, copy ? copy : data, n, c->rng, c->rng_ctx);
	if (copy) {
		mbedtls_platform_zeroize(copy, n);
		free(copy);
	}
	if (r == 0 && !tls_compat_is_p256_private(&c->key))
		r = -1; /* not a P-256 key (secp256r1 itself, not merely 256 bits): refuse rather than fall back */
	return r;
}

tls_pump_config_t *tls_pump_config_create(const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len,
	tls_pump_rng_t rng, void *rng_ctx, int *err)
{
	int r = -1;
	tls_pump_config_t *c = calloc(1, sizeof(*c));
	if (!c || !rng || !cert || !key || !cert_len || !key_len)
		goto fail;
	c->rng = rng;
	c->rng_ctx = rng_ctx;
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_x509_crt_init(&c->cert);
	mbedtls_pk_init(&c->key);
	if ((r = tls_compat_init()) != 0)
		goto fail;
	if ((r = parse_cert(&c->cert, cert, cert_len)) != 0)
		goto fail;
	if ((r = parse_key(c, key, key_len)) != 0)
		goto fail;
	if ((r = tls_compat_check_pair(&c->cert.pk, &c->key, rng, rng_ctx)) != 0)
		goto fail;
	r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
		MBEDTLS_SSL_PRESET_DEFAULT);
	if (r != 0)
		goto fail;
	/* One protocol on both platforms: TLS 1.2 (RFC 5246). ESP-IDF may enable 1.3; we keep behaviour identical. */
	tls_compat_conf_tls12_only(&c->conf);
	mbedtls_ssl_conf_ciphersuites(&c->conf, kCiphersuites);
	tls_compat_conf_rng(&c->conf, rng, rng_ctx); /* 4.x: PSA's DRBG instead */
	mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE); /* clients authenticate with the owner token over HTTP */
	if ((r = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key)) != 0)
		goto fail;
	return c;
fail:
	if (err)
		*err = r ? r : -1;
	tls_pump_config_destroy(c);
	return NULL;
}

tls_pump_config_t *tls_pump_client_config_create(const uint8_t *ca, size_t ca_len, int system_roots,
	tls_pump_rng_t rng, void *rng_ctx, int *err)
{
	int r = -1;
	tls_pump_config_t *c = calloc(1, sizeof(*c));
	if (!c || !rng || (ca_len > 0 && !ca))
		goto fail;
	c->rng = rng;
	c->rng_ctx = rng_ctx;
	c->client = 1;
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_x509_crt_init(&c->cert);
	mbedtls_pk_init(&c->key);
	if ((r = tls_compat_init()) != 0)
		goto fail;
	if (ca_len > 0 && (r = parse_cert(&c->cert, ca, ca_len)) != 0)
		goto fail; /* a PEM bundle with one bad certificate is refused whole: a trust anchor is not guessed at */
	r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
		MBEDTLS_SSL_PRESET_DEFAULT);
	if (r != 0)
		goto fail;
	tls_compat_conf_tls12_only(&c->conf);
	mbedtls_ssl_conf_ciphersuites(&c->conf, kClientCiphersuites);
	tls_compat_conf_rng(&c->conf, rng, rng_ctx);
	/* Chain, validity and server name are always verified: a failure ends the handshake. */
	mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	int roots = 0;
	if (system_roots && (r = tls_compat_system_roots(&c->conf, &c->cert, &roots)) != 0 && ca_len == 0)
		goto fail; /* without the platform's roots a given anchor still serves */
	if (ca_len == 0 && !roots) {
		r = -1; /* nothing to trust: refuse rather than connect unverified */
		goto fail;
	}
	if (c->cert.raw.p != NULL)
		mbedtls_ssl_conf_ca_chain(&c->conf, &c->cert, NULL);
	return c;
fail:
	if (err)
		*err = r ? r : -1;
	tls_pump_config_destroy(c);
	return NULL;
}

void tls_pump_config_destroy(tls_pump_config_t *c)
{
	if (!c)
		return;
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->cert);
	mbedtls_pk_free(&c->key); /* zeroizes the private key */
	free(c);
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	tls_pump_t *p = ctx;
	size_t room = TLS_PUMP_OUT_CAP - p->out_len;
	if (room == 0)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	if (len > room)
		len = room;
	memcpy(p->out + p->out_len, buf, len);
	p->out_len += len;
	return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	tls_pump_t *p = ctx;
	size_t avail = p->in_len - p->in_pos;
	if (avail == 0)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (len > avail)
		len = avail;
	memcpy(buf, p->in + p->in_pos, len);
	p->in_pos += len;
	if (p->in_pos == p->in_len)
		p->in_pos = p->in_len = 0;
	return (int)len;
}

static int would_block(int r)
{
	return r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE;
}

static void fail(tls_pump_t *p, int r)
{
	p->state = TLS_PUMP_FAILED;
	p->last_error = r;
}

/* Advances whatever is in progress: the handshake, or a close_notify that did not fit. */
static void step(tls_pump_t *p)
{
	if (p->state == TLS_PUMP_HANDSHAKE) {
		int r = mbedtls_ssl_handshake(&p->ssl);
		if (r == 0)
			p->state = TLS_PUMP_OPEN;
		else if (!would_block(r))
			fail(p, r);
	}
	if (p->close_pending && p->state != TLS_PUMP_FAILED) {
		int r = mbedtls_ssl_close_notify(&p->ssl);
		if (r != MBEDTLS_ERR_SSL_WANT_WRITE) {
			p->close_pending = 0;
			p->state = TLS_PUMP_CLOSED;
		}
	}
}

tls_pump_t *tls_pump_create(tls_pump_config_t *config)
{
	return config->client ? NULL : tls_pump_create_client(config, NULL);
}

tls_pump_t *tls_pump_create_client(tls_pump_config_t *config, const char *server_name)
{
	if (config->client != (server_name != NULL))
		return NULL; /* a client needs the name to check; a server has none */
	tls_pump_t *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	mbedtls_ssl_init(&p->ssl);
	int r = mbedtls_ssl_setup(&p->ssl, &config->conf);
	if (r == 0 && server_name)
		r = mbedtls_ssl_set_hostname(&p->ssl, server_name); /* SNI, and the name the certificate must carry */
	if (r != 0) {
		mbedtls_ssl_free(&p->ssl);
		free(p);
		return NULL;
	}
	mbedtls_ssl_set_bio(&p->ssl, p, bio_send, bio_recv, NULL);
	p->state = TLS_PUMP_HANDSHAKE;
	if (server_name)
		step(p); /* the client speaks first: its ClientHello is ready to take */
	return p;
}

void tls_pump_destroy(tls_pump_t *p)
{
	if (!p)
		return;
	mbedtls_ssl_free(&p->ssl); /* zeroizes session keys */
	mbedtls_platform_zeroize(p, sizeof(*p));
	free(p);
}

size_t tls_pump_feed_ciphertext(tls_pump_t *p, const uint8_t *data, size_t len)
{
	if (p->state == TLS_PUMP_FAILED || p->state == TLS_PUMP_CLOSED)
		return len; /* discarded: nothing more will be read on this connection */
	if (p->in_pos > 0) {
		memmove(p->in, p->in + p->in_pos, p->in_len - p->in_pos);
		p->in_len -= p->in_pos;
		p->in_pos = 0;
	}
	size_t room = TLS_PUMP_IN_CAP - p->in_len;
	if (len > room)
		len = room;
	memcpy(p->in + p->in_len, data, len);
	p->in_len += len;
	step(p);
	return len;
}

size_t tls_pump_take_ciphertext(tls_pump_t *p, uint8_t *out, size_t cap)
{
	size_t n = p->out_len < cap ? p->out_len : cap;
	memcpy(out, p->out, n);
	memmove(p->out, p->out + n, p->out_len - n);
	p->out_len -= n;
	if (n > 0)
		step(p); /* a handshake flight or alert that did not fit may continue now */
	return n;
}

size_t tls_pump_pending_ciphertext(const tls_pump_t *p)
{
	return p->out_len;
}

size_t tls_pump_read_plaintext(tls_pump_t *p, uint8_t *out, size_t cap)
{
	step(p);
	if (p->state != TLS_PUMP_OPEN || cap == 0)
		return 0;
	int r = mbedtls_ssl_read(&p->ssl, out, cap);
	if (r > 0)
		return (size_t)r;
	if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		tls_pump_close(p); /* answer the peer's close_notify (RFC 5246 §7.2.1) */
	else if (!would_block(r))
		fail(p, r);
	return 0;
}

size_t tls_pump_write_plaintext(tls_pump_t *p, const uint8_t *data, size_t len)
{
	if (p->state != TLS_PUMP_OPEN || p->close_pending || len == 0)
		return 0;
	/* Accept only what fits as a whole record, so mbedtls_ssl_write never has to be retried with the same data. */
	int expansion = mbedtls_ssl_get_record_expansion(&p->ssl);
	int max_payload = mbedtls_ssl_get_max_out_record_payload(&p->ssl);
	if (expansion < 0 || max_payload <= 0)
		return 0;
	size_t room = TLS_PUMP_OUT_CAP - p->out_len;
	if (room <= (size_t)expansion)
		return 0;
	room -= (size_t)expansion;
	if (len > room)
		len = room;
	if (len > (size_t)max_payload)
		len = (size_t)max_payload;
	int r = mbedtls_ssl_write(&p->ssl, data, len);
	if (r > 0)
		return (size_t)r;
	if (!would_block(r))
		fail(p, r);
	return 0;
}

void tls_pump_close(tls_pump_t *p)
{
	if (p->state == TLS_PUMP_OPEN && !p->close_pending) {
		p->close_pending = 1;
		step(p);
	}
	else if (p->state == TLS_PUMP_HANDSHAKE)
		p->state = TLS_PUMP_CLOSED;
}

size_t tls_pump_peer_certificate(const tls_pump_t *p, const uint8_t **der)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&p->ssl);
	if (!crt || !crt->raw.p)
		return 0;
	*der = crt->raw.p;
	return crt->raw.len;
}

tls_pump_state_t tls_pump_state(const tls_pump_t *p)
{
	return p->state;
}

int tls_pump_last_error(const tls_pump_t *p)
{
	return p->last_error;
}
