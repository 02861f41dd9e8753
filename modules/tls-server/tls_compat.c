/*
 * tls_compat: mbedTLS 2.28 / 3.x / 4.x differences for tls_pump.c and tls_identity.c (see tls_compat.h).
 */
#include "tls_compat.h"

#if defined(TLS_COMPAT_PSA)
#include "psa/crypto.h"
#else
#include "mbedtls/bignum.h"
#include "mbedtls/ecp.h"
#endif

#if defined(ESP_PLATFORM)
#include "esp_crt_bundle.h"
#endif

int tls_compat_system_roots(mbedtls_ssl_config *conf, mbedtls_x509_crt *chain, int *count)
{
#if defined(ESP_PLATFORM)
	(void)chain;
	int r = esp_crt_bundle_attach(conf); /* CONFIG_MBEDTLS_CERTIFICATE_BUNDLE (sdkconfig.defaults) */
	*count = r == 0 ? 1 : 0;
	return r;
#else
	(void)conf;
	int before = 0, after = 0;
	for (const mbedtls_x509_crt *c = chain; c && c->raw.p; c = c->next)
		before++;
	/* A positive result counts certificates of the bundle that did not parse: the rest are kept. */
	int r = mbedtls_x509_crt_parse_file(chain, TLS_PUMP_SYSTEM_ROOTS);
	for (const mbedtls_x509_crt *c = chain; c && c->raw.p; c = c->next)
		after++;
	*count = after - before;
	return r < 0 && *count == 0 ? r : 0;
#endif
}

int tls_compat_init(void)
{
#if defined(TLS_COMPAT_PSA)
	return psa_crypto_init() == PSA_SUCCESS ? 0 : -1;
#else
	return 0;
#endif
}

int tls_compat_parse_key(mbedtls_pk_context *pk, const unsigned char *key, size_t len, tls_pump_rng_t rng, void *rng_ctx)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && !defined(TLS_COMPAT_PSA)
	return mbedtls_pk_parse_key(pk, key, len, NULL, 0, rng, rng_ctx);
#else
	(void)rng;
	(void)rng_ctx;
	return mbedtls_pk_parse_key(pk, key, len, NULL, 0);
#endif
}

int tls_compat_check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv, tls_pump_rng_t rng, void *rng_ctx)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && !defined(TLS_COMPAT_PSA)
	return mbedtls_pk_check_pair(pub, prv, rng, rng_ctx);
#else
	(void)rng;
	(void)rng_ctx;
	return mbedtls_pk_check_pair(pub, prv);
#endif
}

int tls_compat_is_p256_private(const mbedtls_pk_context *pk)
{
#if defined(TLS_COMPAT_PSA)
	/* 4.x has no pk types or ecp group access: ask PSA (ECDSA as pk signs: deterministic where built in). */
	psa_key_attributes_t attributes = PSA_KEY_ATTRIBUTES_INIT;
	int ok = mbedtls_pk_can_do_psa(pk, MBEDTLS_PK_ALG_ECDSA(PSA_ALG_SHA_256), PSA_KEY_USAGE_SIGN_HASH)
		&& mbedtls_pk_get_psa_attributes(pk, PSA_KEY_USAGE_SIGN_HASH, &attributes) == 0
		&& psa_get_key_type(&attributes) == PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1)
		&& psa_get_key_bits(&attributes) == 256;
	psa_reset_key_attributes(&attributes);
	return ok;
#elif MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA) && mbedtls_pk_ec(*pk)->MBEDTLS_PRIVATE(grp).id == MBEDTLS_ECP_DP_SECP256R1;
#else
	return mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA) && mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
#endif
}

void tls_compat_conf_rng(mbedtls_ssl_config *conf, tls_pump_rng_t rng, void *rng_ctx)
{
#if defined(TLS_COMPAT_PSA)
	(void)conf;
	(void)rng;
	(void)rng_ctx;
#else
	mbedtls_ssl_conf_rng(conf, rng, rng_ctx);
#endif
}

void tls_compat_conf_tls12_only(mbedtls_ssl_config *conf)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
	mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

int tls_compat_generate_p256(mbedtls_pk_context *pk, tls_pump_rng_t rng, void *rng_ctx)
{
#if defined(TLS_COMPAT_PSA)
	/* Generate in PSA's volatile store, copy out into pk (needs EXPORT), destroy the PSA copy. */
	(void)rng;
	(void)rng_ctx;
	psa_key_attributes_t attributes = PSA_KEY_ATTRIBUTES_INIT;
	mbedtls_svc_key_id_t id = MBEDTLS_SVC_KEY_ID_INIT;
	psa_set_key_type(&attributes, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1));
	psa_set_key_bits(&attributes, 256);
	psa_set_key_usage_flags(&attributes, PSA_KEY_USAGE_SIGN_HASH | PSA_KEY_USAGE_EXPORT);
	psa_set_key_algorithm(&attributes, MBEDTLS_PK_ALG_ECDSA(PSA_ALG_SHA_256));
	psa_status_t status = psa_generate_key(&attributes, &id);
	psa_reset_key_attributes(&attributes);
	if (status != PSA_SUCCESS)
		return (int)status;
	int r = mbedtls_pk_copy_from_psa(id, pk);
	psa_destroy_key(id);
	return r;
#else
	int r = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (r == 0)
		r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), rng, rng_ctx);
	return r;
#endif
}

int tls_compat_set_serial(mbedtls_x509write_cert *crt, const unsigned char *serial, size_t len)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03040000
	return mbedtls_x509write_crt_set_serial_raw(crt, (unsigned char *)serial, len);
#else
	mbedtls_mpi mpi;
	mbedtls_mpi_init(&mpi);
	int r = mbedtls_mpi_read_binary(&mpi, serial, len);
	if (r == 0)
		r = mbedtls_x509write_crt_set_serial(crt, &mpi);
	mbedtls_mpi_free(&mpi);
	return r;
#endif
}

int tls_compat_write_crt_der(mbedtls_x509write_cert *crt, unsigned char *buf, size_t size, tls_pump_rng_t rng, void *rng_ctx)
{
#if defined(TLS_COMPAT_PSA)
	(void)rng;
	(void)rng_ctx;
	return mbedtls_x509write_crt_der(crt, buf, size);
#else
	return mbedtls_x509write_crt_der(crt, buf, size, rng, rng_ctx);
#endif
}
