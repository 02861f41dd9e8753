/*
 * tls_pump: TLS 1.2 over mbedTLS shaped as a byte pump, with no sockets and no XS: the admin HTTPS
 * server, and the client of the vendor uplinks.
 *
 * The caller owns the TCP connection. It feeds received ciphertext in, takes ciphertext out to send,
 * and reads/writes plaintext. Because the pump never touches a socket or a clock, the same file
 * builds on ESP-IDF 6.0 (mbedTLS 4.0, through tls_compat.c) and on Linux against Debian's libmbedtls-dev (2.28): the XS
 * binding (xs_tls_server.c) and the native test driver (test/native/tls_pump_driver.c) are its only
 * callers.
 *
 * Memory: one tls_pump_config_t (parsed certificate + key) is shared by all connections; each
 * connection holds an mbedTLS context plus TLS_PUMP_IN_CAP + TLS_PUMP_OUT_CAP bytes of buffering.
 */
#ifndef TLS_PUMP_H
#define TLS_PUMP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Ciphertext buffered per connection, each way. A feed beyond this is refused (back-pressure), never grown. */
#ifndef TLS_PUMP_IN_CAP
#define TLS_PUMP_IN_CAP 2048
#endif
#ifndef TLS_PUMP_OUT_CAP
#define TLS_PUMP_OUT_CAP 2048
#endif

/* A secure random source with mbedTLS's f_rng shape: fill `len` bytes, return 0 on success. */
typedef int (*tls_pump_rng_t)(void *ctx, unsigned char *out, size_t len);

typedef enum {
	TLS_PUMP_HANDSHAKE = 0, /* negotiating; plaintext not yet available */
	TLS_PUMP_OPEN = 1,      /* application data flows both ways */
	TLS_PUMP_CLOSED = 2,    /* close_notify sent or received: take what is left, then close TCP */
	TLS_PUMP_FAILED = 3     /* handshake or record failure: an alert may be left to take; close TCP */
} tls_pump_state_t;

typedef struct tls_pump_config tls_pump_config_t;
typedef struct tls_pump tls_pump_t;

/*
 * Parses the server certificate and its ECDSA P-256 private key (DER, or PEM with or without a
 * trailing NUL) and builds a server configuration restricted to TLS 1.2 ECDHE-ECDSA with AES-GCM or ChaCha20-Poly1305.
 * `rng` must be a cryptographically secure source (esp_fill_random, getrandom); it must outlive the config.
 * On mbedTLS 4.x TLS draws from PSA's DRBG instead and `rng` is not used here (tls_compat.h).
 * Returns NULL and sets *err (an mbedTLS error code, or -1 for out of memory / not a P-256 key).
 */
tls_pump_config_t *tls_pump_config_create(const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len,
	tls_pump_rng_t rng, void *rng_ctx, int *err);
void tls_pump_config_destroy(tls_pump_config_t *config);

/*
 * A client configuration (for the vendor uplinks): TLS 1.2, ECDHE with AEAD, ECDSA or RSA server
 * certificates, the chain, validity and server name always verified. Trust anchors: `ca` (DER, or PEM
 * with one or more certificates; may be empty) and, when `system_roots`, the platform's bundle
 * (ESP-IDF's certificate bundle; on Linux TLS_PUMP_SYSTEM_ROOTS). With no anchor at all it fails.
 * Returns NULL and sets *err (an mbedTLS error code, or -1).
 */
tls_pump_config_t *tls_pump_client_config_create(const uint8_t *ca, size_t ca_len, int system_roots,
	tls_pump_rng_t rng, void *rng_ctx, int *err);

/* One server-side connection. Returns NULL on out of memory or a client config. The config must outlive it. */
tls_pump_t *tls_pump_create(tls_pump_config_t *config);
/*
 * One client connection to `server_name` (sent as SNI and matched against the certificate's names).
 * Its ClientHello is ready to take at once. NULL on out of memory or a server config.
 */
tls_pump_t *tls_pump_create_client(tls_pump_config_t *config, const char *server_name);
/*
 * The server's certificate (DER) once the handshake has received it, for pinning: points into the
 * pump (valid until it is destroyed) and returns the length, or 0 when none has been seen.
 */
size_t tls_pump_peer_certificate(const tls_pump_t *pump, const uint8_t **der);
void tls_pump_destroy(tls_pump_t *pump);

/* Hands in ciphertext received from TCP. Returns bytes accepted (0..len; fewer when the buffer is full: feed the rest later). */
size_t tls_pump_feed_ciphertext(tls_pump_t *pump, const uint8_t *data, size_t len);
/* Copies out up to `cap` bytes of ciphertext to send on TCP. Returns the count (0: nothing pending). */
size_t tls_pump_take_ciphertext(tls_pump_t *pump, uint8_t *out, size_t cap);
/* Bytes of ciphertext waiting to be taken. */
size_t tls_pump_pending_ciphertext(const tls_pump_t *pump);
/* Reads up to `cap` bytes of plaintext. Returns the count; 0 when none is available yet. */
size_t tls_pump_read_plaintext(tls_pump_t *pump, uint8_t *out, size_t cap);
/*
 * Encrypts up to `len` bytes of plaintext into the outgoing buffer. Returns bytes accepted: 0 when not
 * OPEN or when the outgoing buffer lacks room for a record (take ciphertext, then retry).
 */
size_t tls_pump_write_plaintext(tls_pump_t *pump, const uint8_t *data, size_t len);
/* Queues a close_notify alert (then take it and close TCP). Harmless twice. */
void tls_pump_close(tls_pump_t *pump);
tls_pump_state_t tls_pump_state(const tls_pump_t *pump);
/* The last mbedTLS error code (negative), 0 if none: for logs. */
int tls_pump_last_error(const tls_pump_t *pump);

/* The longest validity tls_pump_generate_identity will write (the CA/Browser Forum's former cap). */
#ifndef TLS_PUMP_CERT_MAX_DAYS
#define TLS_PUMP_CERT_MAX_DAYS 825
#endif

/*
 * Generates a fresh ECDSA P-256 key and a self-signed certificate for `common_name`, valid between
 * `not_before` and `not_after` ("YYYYMMDDhhmmss", UTC; at most TLS_PUMP_CERT_MAX_DAYS apart). Writes
 * DER into key_out/cert_out and their lengths into *key_len and *cert_len (in: capacity). Returns 0,
 * -1 for malformed dates or a longer validity, or an mbedTLS (on 4.x also PSA) error code, negative.
 */
int tls_pump_generate_identity(tls_pump_rng_t rng, void *rng_ctx, const char *common_name, const char *not_before,
	const char *not_after, uint8_t *key_out, size_t *key_len, uint8_t *cert_out, size_t *cert_len);

#ifdef __cplusplus
}
#endif

#endif
