/*
 * tls_identity: on-device generation of the HTTPS server identity, an ECDSA P-256 key and a
 * self-signed X.509 v3 certificate (RFC 5280), with mbedTLS's pk and x509write APIs.
 *
 * The owner pins the certificate's SHA-256 fingerprint (shown on the console) instead of trusting a CA:
 * a home gateway has no public name a CA could vouch for.
 */
#include "tls_pump.h"

#include <string.h>

#include "tls_compat.h"

#include "mbedtls/md.h"

/* mbedTLS writes DER at the end of the buffer (pk.h mbedtls_pk_write_key_der): move it to the front. */
static int to_front(int written, uint8_t *buf, size_t cap, size_t *len)
{
	if (written < 0)
		return written;
	memmove(buf, buf + cap - (size_t)written, (size_t)written);
	*len = (size_t)written;
	return 0;
}

/* Seconds since the epoch of "YYYYMMDDhhmmss" (UTC), or -1 when malformed (days_from_civil, H. Hinnant). */
static long long parse_time(const char *t)
{
	int v[6], widths[6] = { 4, 2, 2, 2, 2, 2 };
	if (strlen(t) != 14)
		return -1;
	for (int i = 0, at = 0; i < 6; at += widths[i++]) {
		v[i] = 0;
		for (int j = 0; j < widths[i]; j++) {
			char c = t[at + j];
			if (c < '0' || c > '9')
				return -1;
			v[i] = v[i] * 10 + (c - '0');
		}
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59)
		return -1;
	long long y = v[0] - (v[1] <= 2);
	long long era = y / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (v[1] + (v[1] > 2 ? -3 : 9)) + 2) / 5 + v[2] - 1;
	long long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	return days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
}

int tls_pump_generate_identity(tls_pump_rng_t rng, void *rng_ctx, const char *common_name, const char *not_before,
	const char *not_after, uint8_t *key_out, size_t *key_len, uint8_t *cert_out, size_t *cert_len)
{
	mbedtls_pk_context pk;
	mbedtls_x509write_cert crt;
	char subject[96];
	unsigned char serial_bytes[16];
	int r;

	long long from = parse_time(not_before), to = parse_time(not_after);
	if (from < 0 || to <= from || to - from > (long long)TLS_PUMP_CERT_MAX_DAYS * 86400)
		return -1; /* fail closed: no certificate valid for longer than the cap */
	if (strlen(common_name) > sizeof(subject) - 4 || strpbrk(common_name, ",=+\\\"<>;"))
		return -1; /* refuse names that would inject extra RDNs into the subject string */
	strcpy(subject, "CN=");
	strcat(subject, common_name);

	mbedtls_pk_init(&pk);
	mbedtls_x509write_crt_init(&crt);

	if ((r = tls_compat_init()) != 0)
		goto done;
	if ((r = tls_compat_generate_p256(&pk, rng, rng_ctx)) != 0)
		goto done;
	/* A positive 128-bit random serial (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
	if ((r = rng(rng_ctx, serial_bytes, sizeof(serial_bytes))) != 0)
		goto done;
	serial_bytes[0] &= 0x7f;
	serial_bytes[0] |= 0x40;

	mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&crt, &pk);
	mbedtls_x509write_crt_set_issuer_key(&crt, &pk);
	if ((r = mbedtls_x509write_crt_set_subject_name(&crt, subject)) != 0)
		goto done;
	if ((r = mbedtls_x509write_crt_set_issuer_name(&crt, subject)) != 0)
		goto done;
	if ((r = tls_compat_set_serial(&crt, serial_bytes, sizeof(serial_bytes))) != 0)
		goto done;
	if ((r = mbedtls_x509write_crt_set_validity(&crt, not_before, not_after)) != 0)
		goto done;
	if ((r = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1)) != 0)
		goto done;

	if ((r = to_front(mbedtls_pk_write_key_der(&pk, key_out, *key_len), key_out, *key_len, key_len)) != 0)
		goto done;
	r = to_front(tls_compat_write_crt_der(&crt, cert_out, *cert_len, rng, rng_ctx), cert_out, *cert_len, cert_len);

done:
	mbedtls_platform_zeroize(serial_bytes, sizeof(serial_bytes));
	mbedtls_x509write_crt_free(&crt);
	mbedtls_pk_free(&pk);
	return r;
}
