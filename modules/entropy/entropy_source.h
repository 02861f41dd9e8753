/*
 * entropy_source: the board's cryptographically secure random bytes, with mbedTLS's f_rng shape so
 * the TLS server uses the same source as the JavaScript side (ESP32: esp_fill_random; Linux: getrandom(2)).
 */
#ifndef ENTROPY_SOURCE_H
#define ENTROPY_SOURCE_H

#include <stddef.h>

/* Fills `len` bytes; returns 0, or -1 when no secure source answered (callers fail closed). `ctx` is unused. */
int portcullis_entropy_fill(void *ctx, unsigned char *out, size_t len);

#endif
