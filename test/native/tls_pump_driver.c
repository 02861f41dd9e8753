/*
 * Test driver for modules/tls-server/tls_pump.c on Linux (no XS): owns a TCP socket and pumps bytes
 * between it and the pump, the way xs_tls_server.c does on the firmware. Driven by
 * test/node/firmware-tls-pump.test.ts, with Node's TLS client on the other end.
 *
 *   driver gen <common-name> <key.der> <cert.der> [<not-before> <not-after>]
 *                                                    generate an identity (tls_identity.c); dates as
 *                                                    YYYYMMDDhhmmss UTC, default now to now + 825 days
 *   driver check <cert> <key>                        prints "OK" or "ERR <code>" for tls_pump_config_create
 *   driver serve <cert> <key> <connections>          listens on 127.0.0.1, prints "PORT <n>", then one
 *                                                    "RESULT <state> <error>" line per connection
 *   driver connect <ca|-> <port> <server-name> [system]
 *                                                    a client (tls_pump_client_config_create): trusts
 *                                                    the CA file (PEM or DER; "-" none) and with "system"
 *                                                    the system's bundle; connects to 127.0.0.1:<port>,
 *                                                    prints "PEER <certificate bytes>" once open, sends
 *                                                    "ping <n>\n" for n = 1..200 and reads until it has
 *                                                    200 echoed lines, then "RESULT <state> <error> <bytes>"
 *   driver version                                   prints the mbedTLS version compiled against (string,
 *                                                    number), the number of the library linked, and
 *                                                    "chachapoly" or "no-chachapoly" (whether it is offered)
 *
 * The served application is HTTP-ish: it answers one request per connection with "HTTP/1.0 200 OK" and
 * the body "echo:<request line>", or 20000 pattern bytes for "GET /big" (to exercise back-pressure).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls_compat.h"
#include "tls_pump.h"

static int os_random(void *ctx, unsigned char *out, size_t len)
{
	(void)ctx;
	while (len > 0) {
		ssize_t n = getrandom(out, len, 0);
		if (n < 0)
			return -1;
		out += n;
		len -= (size_t)n;
	}
	return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static uint8_t buf[8192];
	*len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return buf;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(data, 1, len, f);
	fclose(f);
	return n == len ? 0 : -1;
}

static tls_pump_config_t *load_config(const char *cert_path, const char *key_path, int *err)
{
	size_t cert_len, key_len;
	static uint8_t cert[8192];
	uint8_t *c = read_file(cert_path, &cert_len);
	if (!c)
		return NULL;
	memcpy(cert, c, cert_len);
	uint8_t *k = read_file(key_path, &key_len);
	if (!k)
		return NULL;
	return tls_pump_config_create(cert, cert_len, k, key_len, os_random, NULL, err);
}

static int send_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Builds the response once the request head ("\r\n\r\n") has arrived. */
static size_t respond(const char *request, uint8_t *out, size_t cap)
{
	const char *eol = strstr(request, "\r\n");
	size_t line = eol ? (size_t)(eol - request) : strlen(request);
	if (strncmp(request, "GET /big ", 9) == 0) {
		size_t head = (size_t)snprintf((char *)out, cap, "HTTP/1.0 200 OK\r\nContent-Length: 20000\r\n\r\n");
		for (size_t i = 0; i < 20000 && head + i < cap; i++)
			out[head + i] = (uint8_t)('a' + i % 26);
		return head + 20000;
	}
	return (size_t)snprintf((char *)out, cap, "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\necho:%.*s", line + 5,
		(int)line, request);
}

static void serve_one(int fd, tls_pump_config_t *config)
{
	static uint8_t rx[4096], tmp[4096], response[24000];
	static char request[2048];
	size_t rx_len = 0, req_len = 0, resp_len = 0, resp_pos = 0;
	int responded = 0;
	request[0] = 0;
	tls_pump_t *p = tls_pump_create(config);
	if (!p) {
		printf("RESULT nomem 0\n");
		return;
	}
	for (;;) {
		if (rx_len > 0) {
			size_t n = tls_pump_feed_ciphertext(p, rx, rx_len);
			memmove(rx, rx + n, rx_len - n);
			rx_len -= n;
		}
		size_t n;
		while ((n = tls_pump_read_plaintext(p, tmp, sizeof(tmp))) > 0) {
			if (req_len + n < sizeof(request)) {
				memcpy(request + req_len, tmp, n);
				req_len += n;
				request[req_len] = 0;
			}
		}
		if (!responded && strstr(request, "\r\n\r\n")) {
			resp_len = respond(request, response, sizeof(response));
			responded = 1;
		}
		while (resp_pos < resp_len) {
			size_t w = tls_pump_write_plaintext(p, response + resp_pos, resp_len - resp_pos);
			if (w == 0) {
				size_t t = tls_pump_take_ciphertext(p, tmp, sizeof(tmp));
				if (t == 0 || send_all(fd, tmp, t) != 0)
					break;
				continue;
			}
			resp_pos += w;
		}
		if (responded && resp_pos == resp_len)
			tls_pump_close(p);
		while ((n = tls_pump_take_ciphertext(p, tmp, sizeof(tmp))) > 0)
			if (send_all(fd, tmp, n) != 0)
				break;
		tls_pump_state_t st = tls_pump_state(p);
		if (st == TLS_PUMP_CLOSED || st == TLS_PUMP_FAILED)
			break;
		if (rx_len > 0)
			continue;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) <= 0) {
			printf("RESULT timeout 0\n");
			tls_pump_destroy(p);
			return;
		}
		ssize_t r = recv(fd, rx + rx_len, sizeof(rx) - rx_len, 0);
		if (r <= 0)
			break;
		rx_len += (size_t)r;
	}
	static const char *names[] = { "handshake", "open", "closed", "failed" };
	printf("RESULT %s %d\n", names[tls_pump_state(p)], tls_pump_last_error(p));
	tls_pump_destroy(p);
}

static int serve(const char *cert, const char *key, int connections)
{
	int err = 0;
	tls_pump_config_t *config = load_config(cert, key, &err);
	if (!config) {
		printf("ERR %d\n", err);
		return 1;
	}
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(addr);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 4) != 0 ||
		getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0)
		return 1;
	printf("PORT %d\n", ntohs(addr.sin_port));
	fflush(stdout);
	for (int i = 0; i < connections; i++) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			return 1;
		serve_one(fd, config);
		fflush(stdout);
		close(fd);
	}
	close(lfd);
	tls_pump_config_destroy(config);
	return 0;
}

/* The client side: a line protocol against an echo server (the test's Node TLS server). */
static int connect_client(const char *ca_path, int port, const char *server_name, int system_roots)
{
	static uint8_t ca[65536], rx[4096], tmp[4096], lines[8192];
	size_t ca_len = 0, sent_lines = 0, got_lines = 0, got_bytes = 0;
	int err = 0;
	if (strcmp(ca_path, "-") != 0) {
		uint8_t *c = read_file(ca_path, &ca_len);
		if (!c) {
			printf("ERR nofile\n");
			return 1;
		}
		memcpy(ca, c, ca_len);
	}
	tls_pump_config_t *config = tls_pump_client_config_create(ca, ca_len, system_roots, os_random, NULL, &err);
	if (!config) {
		printf("ERR %d\n", err);
		return 0;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		printf("ERR connect\n");
		return 1;
	}
	tls_pump_t *p = tls_pump_create_client(config, server_name);
	size_t rx_len = 0, out_len = 0, out_pos = 0;
	int peer_shown = 0;
	for (;;) {
		if (rx_len > 0) {
			size_t n = tls_pump_feed_ciphertext(p, rx, rx_len);
			memmove(rx, rx + n, rx_len - n);
			rx_len -= n;
		}
		size_t n;
		while ((n = tls_pump_read_plaintext(p, tmp, sizeof(tmp))) > 0) {
			got_bytes += n;
			for (size_t i = 0; i < n; i++)
				got_lines += tmp[i] == '\n';
		}
		if (tls_pump_state(p) == TLS_PUMP_OPEN && !peer_shown) {
			const uint8_t *der;
			printf("PEER %zu\n", tls_pump_peer_certificate(p, &der));
			peer_shown = 1;
		}
		while (tls_pump_state(p) == TLS_PUMP_OPEN) {
			if (out_pos == out_len && sent_lines < 200)
				out_len = (size_t)snprintf((char *)lines, sizeof(lines), "ping %zu\n", ++sent_lines), out_pos = 0;
			if (out_pos == out_len)
				break;
			size_t w = tls_pump_write_plaintext(p, lines + out_pos, out_len - out_pos);
			if (w == 0)
				break;
			out_pos += w;
		}
		if (got_lines >= 200)
			tls_pump_close(p);
		while ((n = tls_pump_take_ciphertext(p, tmp, sizeof(tmp))) > 0)
			if (send_all(fd, tmp, n) != 0)
				break;
		tls_pump_state_t st = tls_pump_state(p);
		if (st == TLS_PUMP_CLOSED || st == TLS_PUMP_FAILED)
			break;
		if (rx_len > 0)
			continue;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) <= 0) {
			printf("RESULT timeout 0 %zu\n", got_bytes);
			return 0;
		}
		ssize_t r = recv(fd, rx + rx_len, sizeof(rx) - rx_len, 0);
		if (r <= 0)
			break;
		rx_len += (size_t)r;
	}
	static const char *names[] = { "handshake", "open", "closed", "failed" };
	printf("RESULT %s %d %zu\n", names[tls_pump_state(p)], tls_pump_last_error(p), got_bytes);
	tls_pump_destroy(p);
	tls_pump_config_destroy(config);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "connect") == 0)
		return connect_client(argv[2], atoi(argv[3]), argv[4], argc == 6 && strcmp(argv[5], "system") == 0);
	if ((argc == 5 || argc == 7) && strcmp(argv[1], "gen") == 0) {
		uint8_t key[512], cert[2048];
		size_t key_len = sizeof(key), cert_len = sizeof(cert);
		char from[16], to[16];
		time_t now = time(NULL), until = now + (time_t)TLS_PUMP_CERT_MAX_DAYS * 86400;
		strftime(from, sizeof(from), "%Y%m%d%H%M%S", gmtime(&now));
		strftime(to, sizeof(to), "%Y%m%d%H%M%S", gmtime(&until));
		int r = tls_pump_generate_identity(os_random, NULL, argv[2], argc == 7 ? argv[5] : from, argc == 7 ? argv[6] : to, key,
			&key_len, cert, &cert_len);
		if (r != 0) {
			printf("ERR %d\n", r);
			return 1;
		}
		return write_file(argv[3], key, key_len) || write_file(argv[4], cert, cert_len);
	}
	if (argc == 4 && strcmp(argv[1], "check") == 0) {
		int err = 0;
		tls_pump_config_t *c = load_config(argv[2], argv[3], &err);
		if (c)
			printf("OK\n");
		else
			printf("ERR %d\n", err);
		tls_pump_config_destroy(c);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "version") == 0) {
#if defined(TLS_COMPAT_HAVE_CHACHAPOLY)
		const char *chachapoly = "chachapoly";
#else
		const char *chachapoly = "no-chachapoly";
#endif
		printf("%s %08x %08x %s\n", MBEDTLS_VERSION_STRING, (unsigned)MBEDTLS_VERSION_NUMBER, mbedtls_version_get_number(), chachapoly);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: see the comment on top of tls_pump_driver.c\n");
	return 2;
}
