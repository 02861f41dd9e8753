/*
 * entropy_source: secure random bytes on each platform we build for, and nowhere else.
 *
 * ESP32: esp_fill_random() draws from the hardware RNG, which ESP-IDF documents as a true random source
 * while the RF subsystem (Wi-Fi) is on or bootloader_random_enable() is in effect; the firmware starts
 * Wi-Fi before it generates keys. Linux: getrandom(2) blocks only until the kernel pool is initialised.
 */
#include "entropy_source.h"

#if defined(ESP_PLATFORM)
#include "esp_random.h"

int portcullis_entropy_fill(void *ctx, unsigned char *out, size_t len)
{
	(void)ctx;
	esp_fill_random(out, len);
	return 0;
}

#elif defined(__linux__)
#include <errno.h>
#include <sys/random.h>

int portcullis_entropy_fill(void *ctx, unsigned char *out, size_t len)
{
	(void)ctx;
	while (len > 0) {
		ssize_t n = getrandom(out, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		out += n;
		len -= (size_t)n;
	}
	return 0;
}

#else
#error "portcullis entropy: no secure random source for this platform (see modules/entropy/entropy_source.c)"
#endif
