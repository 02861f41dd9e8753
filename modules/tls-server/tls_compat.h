/*
 * tls_compat: the one place where tls_pump.c and tls_identity.c meet the differences between mbedTLS
 * versions. Three lines are handled, chosen by MBEDTLS_VERSION_NUMBER:
 *   - 2.28 LTS (Debian 12 libmbedtls-dev: CI and the lin build);
 *   - 3.x (ESP-IDF 5.x; the test has passed against 3.6.6 too);
 *   - 4.x with TF-PSA-Crypto 1.x (ESP-IDF 6.0, the IDF the Moddable SDK 8.2 documents for ESP32).
 * In 4.x the random source is PSA's own DRBG, seeded by the platform's entropy (ESP-IDF: the hardware
 * RNG); the `rng` arguments below are then used only where this code draws random bytes itself (the
 * certificate serial), never handed to mbedTLS. See DESIGN.md "mbedTLS versions".
 */
#ifndef TLS_COMPAT_H
#define TLS_COMPAT_H

#include "mbedtls/version.h"
#if MBEDTLS_VERSION_NUMBER < 0x03000000
#include "mbedtls/config.h"
#endif
#include "mbedtls/pk.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

#include "tls_pump.h"

#if MBEDTLS_VERSION_NUMBER >= 0x04000000
#define TLS_COMPAT_PSA 1
#endif

/* Whether this build can offer TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (RFC 7905). */
#if defined(MBEDTLS_CHACHAPOLY_C) || (defined(TLS_COMPAT_PSA) && defined(PSA_WANT_ALG_CHACHA20_POLY1305))
#define TLS_COMPAT_HAVE_CHACHAPOLY 1
#endif

/* Before any other mbedTLS call: psa_crypto_init() on 4.x (idempotent), nothing before. 0 or an error code. */
int tls_compat_init(void);

/* mbedtls_pk_parse_key without a password (3.x wants an RNG for blinding; 2.28 and 4.x do not). */
int tls_compat_parse_key(mbedtls_pk_context *pk, const unsigned char *key, size_t len, tls_pump_rng_t rng, void *rng_ctx);

/* mbedtls_pk_check_pair (3.x wants an RNG). 0 when `prv` is the private half of `pub`. */
int tls_compat_check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv, tls_pump_rng_t rng, void *rng_ctx);

/* 1 when `pk` holds a private key on the NIST P-256 curve usable for ECDSA, else 0. */
int tls_compat_is_p256_private(const mbedtls_pk_context *pk);

/* The TLS configuration's random source: mbedtls_ssl_conf_rng before 4.x; nothing on 4.x (PSA's DRBG). */
void tls_compat_conf_rng(mbedtls_ssl_config *conf, tls_pump_rng_t rng, void *rng_ctx);

/* Restricts the configuration to TLS 1.2 (RFC 5246), whichever API the version has for it. */
void tls_compat_conf_tls12_only(mbedtls_ssl_config *conf);

/* Linux: the system's CA bundle, one PEM file (Debian's ca-certificates). */
#ifndef TLS_PUMP_SYSTEM_ROOTS
#define TLS_PUMP_SYSTEM_ROOTS "/etc/ssl/certs/ca-certificates.crt"
#endif

/*
 * Adds the platform's trust anchors to a client configuration: ESP-IDF's certificate bundle (attached
 * to `conf`), or on Linux the certificates of TLS_PUMP_SYSTEM_ROOTS parsed into `chain`. Sets *count
 * to the anchors added (1 for the ESP-IDF bundle). 0, or an error code when none could be added.
 */
int tls_compat_system_roots(mbedtls_ssl_config *conf, mbedtls_x509_crt *chain, int *count);

/* Fills an initialized, empty `pk` with a fresh P-256 key pair. 0 or an error code. */
int tls_compat_generate_p256(mbedtls_pk_context *pk, tls_pump_rng_t rng, void *rng_ctx);

/* Sets the certificate serial from big-endian bytes (positive, at most 20 octets). */
int tls_compat_set_serial(mbedtls_x509write_cert *crt, const unsigned char *serial, size_t len);

/* mbedtls_x509write_crt_der (before 4.x it takes the RNG for the signature). */
int tls_compat_write_crt_der(mbedtls_x509write_cert *crt, unsigned char *buf, size_t size, tls_pump_rng_t rng, void *rng_ctx);

#endif
