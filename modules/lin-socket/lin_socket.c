/*
 * portcullis lin sockets: ECMA-419 `embedded:io/socket/tcp` and `embedded:io/socket/listener` for the
 * Moddable `lin` build, driven by GLib file-descriptor watches instead of a timer.
 *
 * Why: the SDK's lin sockets (modules/io/socket/lin/tcp.c) poll each socket with select() on a 20 ms
 * timer, so a home of 8 idle devices, 2 uplinks and a listener wakes the process ~550 times a second
 * (6-10 ms of CPU per second, measured by `npm run firmware:lin -- --load`), a cost the ESP32's lwIP
 * sockets do not have: they are called back. The lin build is our proxy for the chip's CPU per message,
 * so it must not charge the firmware for a simulator's polling. The SDK's own lin serial port
 * (modules/io/serial/lin/serial.c) already works this way (g_io_add_watch).
 *
 * Behaviour kept from the ECMA-419 TCP class as the firmware uses it: onReadable(count) reports the
 * bytes readable in total; read() / read(count) / read(buffer); onWritable(count) reports the bytes
 * that may be written; write() throws "would block" beyond that; onError once the received bytes are
 * read; `from` takes over an accepted socket; `target`, `format` ("buffer" or "number"), `nodelay`.
 * Differences from the SDK's lin file: a write the kernel takes only in part is kept and sent when the
 * socket is writable (the SDK's drops the remainder), and a full read buffer stops reading the socket
 * (TCP back-pressure) until read() makes room. No callback runs inside a call from JavaScript: what a
 * call triggers is reported from an idle source of the main loop.
 */
#include "xsmc.h"
#include "mc.xs.h" /* xsID_* */
#include "modInstrumentation.h"
#include "builtinCommon.h"

#include <glib.h>
#include <glib-unix.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

/* Receive buffer: one Ethernet MSS, as a pbuf on the chip. */
#define kReadSize (1536)
/* Send window: the ESP32 build's lwIP TCP_SND_BUF (hosts/moddable/esp32/sdkconfig, DESIGN "TCP limits"). */
#define kWriteSize (5744)

enum {
	kWritable = 1 << 0,
	kReadable = 1 << 1,
	kError = 1 << 2
};

typedef struct TCPRecord {
	int skt;
	xsSlot obj;
	xsMachine *the;
	xsSlot *onReadable;
	xsSlot *onWritable;
	xsSlot *onError;
	uint8_t triggerable;
	uint8_t triggered;
	uint8_t done;
	uint8_t format;
	uint8_t error;
	uint8_t connected;
	uint8_t reported; /* onError was called: never again */
	int useCount;
	guint inWatch;
	guint outWatch;
	guint idle;
	guint lingerWatch; /* after close(): sending what was written, then closing the descriptor */
	guint lingerTimeout;
	uint32_t readPosition;
	uint32_t bytesReadable;
	uint32_t outLength;
	uint8_t readBuf[kReadSize];
	uint8_t outBuf[kWriteSize];
} TCPRecord, *TCP;

static void tcpHold(TCP tcp) { tcp->useCount += 1; }
static void tcpRelease(TCP tcp);
static void tcpArm(TCP tcp);
static void tcpTrigger(TCP tcp, uint8_t trigger);
static void tcpReport(TCP tcp);
static void xs_portcullis_tcp_mark(xsMachine *the, void *it, xsMarkRoot markRoot);
void xs_portcullis_tcp_destructor(void *data);

static const xsHostHooks xsTCPHooks = {
	xs_portcullis_tcp_destructor,
	xs_portcullis_tcp_mark,
	NULL
};

static void tcpUnwatch(TCP tcp)
{
	if (tcp->inWatch) g_source_remove(tcp->inWatch);
	if (tcp->outWatch) g_source_remove(tcp->outWatch);
	if (tcp->idle) g_source_remove(tcp->idle);
	if (tcp->lingerWatch) g_source_remove(tcp->lingerWatch);
	if (tcp->lingerTimeout) g_source_remove(tcp->lingerTimeout);
	tcp->inWatch = tcp->outWatch = tcp->idle = tcp->lingerWatch = tcp->lingerTimeout = 0;
}

/* No more events, and the descriptor closed. */
static void tcpShut(TCP tcp)
{
	tcpUnwatch(tcp);
	if (tcp->skt >= 0) close(tcp->skt);
	tcp->skt = -1;
}

static void tcpFree(TCP tcp)
{
	tcpShut(tcp);
	c_free(tcp);
	modInstrumentationAdjust(NetworkSockets, -1);
}

void tcpRelease(TCP tcp)
{
	tcp->useCount -= 1;
	if (tcp->useCount <= 0) tcpFree(tcp);
}

void xs_portcullis_tcp_destructor(void *data)
{
	if (data) tcpRelease((TCP)data);
}

static void xs_portcullis_tcp_mark(xsMachine *the, void *it, xsMarkRoot markRoot)
{
	TCP tcp = it;
	if (tcp->onReadable) (*markRoot)(the, tcp->onReadable);
	if (tcp->onWritable) (*markRoot)(the, tcp->onWritable);
	if (tcp->onError) (*markRoot)(the, tcp->onError);
}

/* Sends what the kernel takes now. Returns -1 on a socket error (then the connection has failed). */
static int tcpFlush(TCP tcp)
{
	while (tcp->outLength) {
		ssize_t n = send(tcp->skt, tcp->outBuf, tcp->outLength, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
			if (errno == EINTR) continue;
			return -1;
		}
		if ((uint32_t)n < tcp->outLength) memmove(tcp->outBuf, tcp->outBuf + n, tcp->outLength - n);
		tcp->outLength -= (uint32_t)n;
		modInstrumentationAdjust(NetworkBytesWritten, n);
	}
	return 0;
}

static gboolean tcpIdle(gpointer data)
{
	TCP tcp = data;
	tcp->idle = 0;
	tcpReport(tcp);
	return G_SOURCE_REMOVE;
}

/* Marks `trigger` for the next report, from an idle source (never inside the JavaScript call that caused it). */
void tcpTrigger(TCP tcp, uint8_t trigger)
{
	if (trigger & kError) tcp->error = 1;
	trigger &= tcp->triggerable;
	if (!trigger || tcp->done) return;
	tcp->triggered |= trigger;
	if (!tcp->idle) tcp->idle = g_idle_add(tcpIdle, tcp);
}

static gboolean tcpReadable(gint fd, GIOCondition condition, gpointer data)
{
	TCP tcp = data;
	(void)fd;
	(void)condition;
	if (tcp->readPosition) {
		if (tcp->bytesReadable) memmove(tcp->readBuf, tcp->readBuf + tcp->readPosition, tcp->bytesReadable);
		tcp->readPosition = 0;
	}
	ssize_t n = recv(tcp->skt, tcp->readBuf + tcp->bytesReadable, kReadSize - tcp->bytesReadable, 0);
	if (n > 0) {
		tcp->bytesReadable += (uint32_t)n;
		modInstrumentationAdjust(NetworkBytesRead, n);
		tcp->triggered |= kReadable & tcp->triggerable;
	}
	else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		tcp->error = 1; /* peer closed or failed: reported once what was received has been read */
	}
	tcpArm(tcp);
	tcpReport(tcp);
	return G_SOURCE_CONTINUE;
}

static gboolean tcpWritable(gint fd, GIOCondition condition, gpointer data)
{
	TCP tcp = data;
	(void)fd;
	(void)condition;
	if (!tcp->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(tcp->skt, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) tcp->error = 1;
		else tcp->connected = 1;
	}
	if (!tcp->error && tcpFlush(tcp) < 0) tcp->error = 1;
	if (!tcp->error) tcp->triggered |= kWritable & tcp->triggerable;
	tcpArm(tcp);
	tcpReport(tcp);
	return G_SOURCE_CONTINUE;
}

/*
 * Watches the socket for what it waits for: readable while the read buffer has room, writable while
 * connecting or while written bytes wait for the kernel (a write the kernel took whole reports the
 * window again from an idle source, tcpTrigger).
 */
void tcpArm(TCP tcp)
{
	int wantIn = !tcp->done && !tcp->error && tcp->skt >= 0 && tcp->bytesReadable < kReadSize;
	int wantOut = !tcp->done && !tcp->error && tcp->skt >= 0 && (!tcp->connected || tcp->outLength);
	if (wantIn && !tcp->inWatch) tcp->inWatch = g_unix_fd_add(tcp->skt, G_IO_IN | G_IO_HUP | G_IO_ERR, tcpReadable, tcp);
	else if (!wantIn && tcp->inWatch) {
		g_source_remove(tcp->inWatch);
		tcp->inWatch = 0;
	}
	if (wantOut && !tcp->outWatch) tcp->outWatch = g_unix_fd_add(tcp->skt, G_IO_OUT | G_IO_ERR, tcpWritable, tcp);
	else if (!wantOut && tcp->outWatch) {
		g_source_remove(tcp->outWatch);
		tcp->outWatch = 0;
	}
	if (tcp->error && !tcp->bytesReadable && !tcp->reported) tcpTrigger(tcp, kError);
}

/* Calls back for what was triggered: writable, then readable, then (once) the error. */
void tcpReport(TCP tcp)
{
	xsMachine *the = tcp->the;
	uint8_t triggered = tcp->triggered;
	tcp->triggered = 0;
	if (tcp->done || !triggered) return;
	tcpHold(tcp);
	if ((triggered & kWritable) && !tcp->error && tcp->connected && tcp->onWritable && !tcp->done) {
		xsBeginHost(the);
		xsmcSetInteger(xsResult, kWriteSize - tcp->outLength);
		xsCallFunction1(xsReference(tcp->onWritable), tcp->obj, xsResult);
		xsEndHost(the);
	}
	if ((triggered & kReadable) && tcp->bytesReadable && tcp->onReadable && !tcp->done) {
		xsBeginHost(the);
		xsmcSetInteger(xsResult, tcp->bytesReadable);
		xsCallFunction1(xsReference(tcp->onReadable), tcp->obj, xsResult);
		xsEndHost(the);
	}
	if ((triggered & kError) && tcp->error && !tcp->reported && !tcp->bytesReadable && tcp->onError && !tcp->done) {
		tcp->reported = 1;
		xsBeginHost(the);
		xsCallFunction0(xsReference(tcp->onError), tcp->obj);
		xsEndHost(the);
	}
	tcpRelease(tcp);
}

void xs_portcullis_tcp_constructor(xsMachine *the)
{
	TCP tcp;
	uint8_t create = xsmcArgc > 0 && xsmcTypeOf(xsArg(0)) == xsReferenceType, triggerable = 0, triggered = 0, nodelay = 0, format = kIOFormatBuffer;
	xsSlot *onReadable = NULL, *onWritable = NULL, *onError = NULL;

	xsmcVars(1);
	tcp = c_calloc(1, sizeof(TCPRecord));
	if (!tcp) xsRangeError("no memory");
	tcp->skt = -1;
	tcp->useCount = 1;
	tcp->the = the;
	modInstrumentationAdjust(NetworkSockets, +1);
	xsmcSetHostData(xsThis, tcp);
	xsSetHostHooks(xsThis, (xsHostHooks *)&xsTCPHooks);
	tcp->obj = xsThis;
	if (!create) return; /* Listener.prototype.read fills it in */

	format = builtinInitializeFormat(the, format);
	if ((kIOFormatNumber != format) && (kIOFormatBuffer != format)) xsRangeError("unimplemented");
	tcp->format = format;
	if ((onReadable = builtinGetCallback(the, xsID_onReadable))) triggerable |= kReadable;
	if ((onWritable = builtinGetCallback(the, xsID_onWritable))) triggerable |= kWritable;
	if ((onError = builtinGetCallback(the, xsID_onError))) triggerable |= kError;
	if (xsmcHas(xsArg(0), xsID_nodelay)) {
		xsmcGet(xsVar(0), xsArg(0), xsID_nodelay);
		nodelay = xsmcToBoolean(xsVar(0)) ? 2 : 1;
	}

	if (xsmcHas(xsArg(0), xsID_from)) {
		TCP from;
		xsmcGet(xsVar(0), xsArg(0), xsID_from);
		from = xsmcGetHostDataValidate(xsVar(0), (void *)&xsTCPHooks);
		if (from->skt < 0) xsUnknownError("invalid from");
		tcpUnwatch(from);
		tcp->skt = from->skt;
		tcp->connected = 1;
		tcp->error = from->error;
		tcp->bytesReadable = from->bytesReadable;
		tcp->readPosition = from->readPosition;
		memmove(tcp->readBuf, from->readBuf, sizeof(from->readBuf));
		tcp->outLength = from->outLength;
		memmove(tcp->outBuf, from->outBuf, from->outLength);
		from->skt = -1;
		from->done = 1;
		/* `from` is spent: it forgets nothing (it was never remembered) and frees with its object. */
		triggered = kWritable;
		if (tcp->bytesReadable) triggered |= kReadable;
		if (tcp->error) triggered |= kError;
	}
	else {
		char address[32];
		struct sockaddr_in addr = {0};
		int port;
		xsmcGet(xsVar(0), xsArg(0), xsID_address);
		xsmcToStringBuffer(xsVar(0), address, sizeof(address));
		if (!inet_aton(address, &addr.sin_addr)) xsUnknownError("invalid address");
		xsmcGet(xsVar(0), xsArg(0), xsID_port);
		port = builtinGetSignedInteger(the, &xsVar(0));
		if ((port < 0) || (port > 65535)) xsRangeError("invalid port");
		tcp->skt = socket(AF_INET, SOCK_STREAM, 0);
		if (tcp->skt < 0) xsUnknownError("no socket");
		fcntl(tcp->skt, F_SETFL, O_NONBLOCK | fcntl(tcp->skt, F_GETFL, 0));
		addr.sin_family = AF_INET;
		addr.sin_port = htons(port);
		if (connect(tcp->skt, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
			tcp->error = 1;
			triggered = kError;
		}
	}
	if (nodelay) {
		int value = (2 == nodelay) ? 1 : 0;
		setsockopt(tcp->skt, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value));
	}
	builtinInitializeTarget(the);
	tcp->triggerable = triggerable;
	tcp->onReadable = onReadable;
	tcp->onWritable = onWritable;
	tcp->onError = onError;
	xsRemember(tcp->obj);
	tcpHold(tcp); /* the open socket's own hold: released by close() */
	tcpArm(tcp);
	tcpTrigger(tcp, triggered);
}

/* Ends a lingering close: the descriptor closes and the open socket's hold is released. */
static void tcpEndLinger(TCP tcp)
{
	tcpShut(tcp);
	tcpRelease(tcp);
}

static gboolean tcpLingerWritable(gint fd, GIOCondition condition, gpointer data)
{
	TCP tcp = data;
	(void)fd;
	(void)condition;
	if (tcpFlush(tcp) < 0 || !tcp->outLength) {
		tcp->lingerWatch = 0; /* this source ends with the return below */
		tcpEndLinger(tcp);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean tcpLingerExpired(gpointer data)
{
	TCP tcp = data;
	tcp->lingerTimeout = 0;
	tcpEndLinger(tcp); /* a peer that reads nothing for this long loses the rest, as SO_LINGER would */
	return G_SOURCE_REMOVE;
}

/* Seconds a closed socket keeps sending what was written before close(). */
#define kLingerSeconds (10)

void xs_portcullis_tcp_close(xsMachine *the)
{
	TCP tcp = xsmcGetHostData(xsThis);
	if (!tcp || !xsmcGetHostDataValidate(xsThis, (void *)&xsTCPHooks) || tcp->done) return;
	tcp->done = 1;
	tcp->triggerable = 0;
	tcp->triggered = 0;
	xsForget(tcp->obj);
	tcpUnwatch(tcp);
	/*
	 * What was written is sent before the descriptor closes, as close(2) does with what the kernel
	 * holds: at once when the kernel takes it, else from a watch, for at most kLingerSeconds. No
	 * callback runs meanwhile; the record outlives its object until then (the open socket's hold).
	 */
	if (tcp->skt >= 0 && tcp->connected && !tcp->error && tcpFlush(tcp) == 0 && tcp->outLength) {
		tcp->lingerWatch = g_unix_fd_add(tcp->skt, G_IO_OUT | G_IO_ERR, tcpLingerWritable, tcp);
		tcp->lingerTimeout = g_timeout_add_seconds(kLingerSeconds, tcpLingerExpired, tcp);
		return;
	}
	tcpEndLinger(tcp);
}

void xs_portcullis_tcp_read(xsMachine *the)
{
	TCP tcp = xsmcGetHostDataValidate(xsThis, (void *)&xsTCPHooks);
	uint32_t requested;
	uint8_t *out, value;

	if (tcp->done || !tcp->bytesReadable) return;
	if (kIOFormatBuffer == tcp->format) {
		uint8_t allocate = 1;
		xsUnsignedValue byteLength;
		if (0 == xsmcArgc || xsUndefinedType == xsmcTypeOf(xsArg(0))) requested = tcp->bytesReadable;
		else if (xsReferenceType == xsmcTypeOf(xsArg(0))) {
			xsResult = xsArg(0);
			xsmcGetBufferWritable(xsResult, (void **)&out, &byteLength);
			requested = (uint32_t)byteLength;
			allocate = 0;
		}
		else requested = xsmcToInteger(xsArg(0));
		if ((requested <= 0) || (requested > tcp->bytesReadable)) xsUnknownError("invalid");
		if (allocate) out = xsmcSetArrayBuffer(xsResult, NULL, requested);
		else xsmcSetInteger(xsResult, requested);
	}
	else {
		requested = 1;
		out = &value;
	}
	c_memmove(out, tcp->readBuf + tcp->readPosition, requested);
	tcp->readPosition += requested;
	tcp->bytesReadable -= requested;
	if (!tcp->bytesReadable) tcp->readPosition = 0;
	tcpArm(tcp); /* room again: read the socket (or report the error once all is read) */
	if (kIOFormatNumber == tcp->format) xsmcSetInteger(xsResult, value);
}

void xs_portcullis_tcp_write(xsMachine *the)
{
	TCP tcp = xsmcGetHostDataValidate(xsThis, (void *)&xsTCPHooks);
	xsUnsignedValue needed;
	void *buffer;
	uint8_t value;

	if (tcp->done || tcp->skt < 0) xsUnknownError("closed");
	if (kIOFormatBuffer == tcp->format) xsmcGetBufferReadable(xsArg(0), &buffer, &needed);
	else {
		needed = 1;
		value = (uint8_t)xsmcToInteger(xsArg(0));
		buffer = &value;
	}
	if (needed > kWriteSize - tcp->outLength) xsUnknownError("would block");
	if (tcp->error) {
		tcpTrigger(tcp, kError);
		return;
	}
	c_memmove(tcp->outBuf + tcp->outLength, buffer, needed);
	tcp->outLength += (uint32_t)needed;
	if (tcp->connected && tcpFlush(tcp) < 0) tcp->error = 1;
	/* The window is reported again once the kernel has taken the bytes (onWritable from the writable watch). */
	if (!tcp->error && tcp->connected && !tcp->outLength) tcpTrigger(tcp, kWritable);
	tcpArm(tcp);
	xsmcSetInteger(xsResult, kWriteSize - tcp->outLength);
}

void xs_portcullis_tcp_get_remoteAddress(xsMachine *the)
{
	TCP tcp = xsmcGetHostDataValidate(xsThis, (void *)&xsTCPHooks);
	struct sockaddr_in addr;
	socklen_t length = sizeof(addr);
	char text[INET_ADDRSTRLEN];
	if (tcp->skt < 0 || getpeername(tcp->skt, (struct sockaddr *)&addr, &length) < 0) return;
	if (!inet_ntop(AF_INET, &addr.sin_addr, text, sizeof(text))) return;
	xsmcSetString(xsResult, text);
}

void xs_portcullis_tcp_get_remotePort(xsMachine *the)
{
	TCP tcp = xsmcGetHostDataValidate(xsThis, (void *)&xsTCPHooks);
	struct sockaddr_in addr;
	socklen_t length = sizeof(addr);
	if (tcp->skt < 0 || getpeername(tcp->skt, (struct sockaddr *)&addr, &length) < 0) return;
	xsmcSetInteger(xsResult, ntohs(addr.sin_port));
}

void xs_portcullis_tcp_get_format(xsMachine *the)
{
	TCP tcp = xsmcGetHostDataValidate(xsThis, (void *)&xsTCPHooks);
	builtinGetFormat(the, tcp->format);
}

void xs_portcullis_tcp_set_format(xsMachine *the)
{
	TCP tcp = xsmcGetHostDataValidate(xsThis, (void *)&xsTCPHooks);
	uint8_t format = builtinSetFormat(the);
	if ((kIOFormatNumber != format) && (kIOFormatBuffer != format)) xsRangeError("unimplemented");
	tcp->format = format;
}

/*
	Listener: accepted sockets wait in a list (as in the SDK's) until read() hands one to a TCP.
 */
typedef struct ListenerPendingRecord {
	struct ListenerPendingRecord *next;
	int skt;
} ListenerPendingRecord, *ListenerPending;

typedef struct ListenerRecord {
	xsSlot obj;
	xsMachine *the;
	xsSlot *onReadable;
	ListenerPending pending;
	int skt;
	guint watch;
} ListenerRecord, *Listener;

static void xs_portcullis_listener_mark(xsMachine *the, void *it, xsMarkRoot markRoot);
void xs_portcullis_listener_destructor(void *data);
static const xsHostHooks xsListenerHooks = {
	xs_portcullis_listener_destructor,
	xs_portcullis_listener_mark,
	NULL
};

void xs_portcullis_listener_destructor(void *data)
{
	Listener listener = data;
	if (!listener) return;
	if (listener->watch) g_source_remove(listener->watch);
	if (listener->skt >= 0) close(listener->skt);
	while (listener->pending) {
		ListenerPending pending = listener->pending;
		listener->pending = pending->next;
		close(pending->skt);
		c_free(pending);
	}
	c_free(listener);
}

static void xs_portcullis_listener_mark(xsMachine *the, void *it, xsMarkRoot markRoot)
{
	Listener listener = it;
	if (listener->onReadable) (*markRoot)(the, listener->onReadable);
}

static gboolean listenerReadable(gint fd, GIOCondition condition, gpointer data)
{
	Listener listener = data;
	int accepted = 0, count = 0;
	ListenerPending walker, *tail = &listener->pending;
	(void)fd;
	(void)condition;
	while (*tail) tail = &(*tail)->next;
	for (;;) {
		int skt = accept(listener->skt, NULL, NULL);
		if (skt < 0) break;
		ListenerPending pending = c_calloc(1, sizeof(ListenerPendingRecord));
		if (!pending) {
			close(skt); /* no memory for the record: refuse the connection, keep listening */
			continue;
		}
		fcntl(skt, F_SETFL, O_NONBLOCK | fcntl(skt, F_GETFL, 0));
		pending->skt = skt;
		*tail = pending;
		tail = &pending->next;
		accepted++;
	}
	if (!accepted || !listener->onReadable) return G_SOURCE_CONTINUE;
	for (walker = listener->pending; walker; walker = walker->next) count++;
	xsMachine *the = listener->the;
	xsBeginHost(the);
	xsmcSetInteger(xsResult, count);
	xsCallFunction1(xsReference(listener->onReadable), listener->obj, xsResult);
	xsEndHost(the);
	return G_SOURCE_CONTINUE;
}

void xs_portcullis_listener_constructor(xsMachine *the)
{
	Listener listener;
	int port = 0, yes = 1;
	struct sockaddr_in address = {0};

	xsmcVars(1);
	if (xsmcHas(xsArg(0), xsID_port)) {
		xsmcGet(xsVar(0), xsArg(0), xsID_port);
		port = builtinGetSignedInteger(the, &xsVar(0));
		if ((port < 0) || (port > 65535)) xsRangeError("invalid port");
	}
	if (kIOFormatSocketTCP != builtinInitializeFormat(the, kIOFormatSocketTCP)) xsRangeError("unimplemented");
	listener = c_calloc(1, sizeof(ListenerRecord));
	if (!listener) xsRangeError("no memory");
	listener->skt = -1;
	listener->the = the;
	listener->obj = xsThis;
	xsmcSetHostData(xsThis, listener);
	xsTry {
		listener->onReadable = builtinGetCallback(the, xsID_onReadable);
		listener->skt = socket(AF_INET, SOCK_STREAM, IPPROTO_IP);
		if (listener->skt < 0) xsUnknownError("create socket failed");
		fcntl(listener->skt, F_SETFL, O_NONBLOCK | fcntl(listener->skt, F_GETFL, 0));
		setsockopt(listener->skt, SOL_SOCKET, SO_REUSEADDR, (void *)&yes, sizeof(yes));
		address.sin_family = AF_INET;
		address.sin_port = htons(port);
		if (bind(listener->skt, (struct sockaddr *)&address, sizeof(address)) < 0) xsUnknownError("bind socket failed");
		if (listen(listener->skt, SOMAXCONN) < 0) xsUnknownError("listen failed");
		builtinInitializeTarget(the);
		listener->watch = g_unix_fd_add(listener->skt, G_IO_IN, listenerReadable, listener);
		xsSetHostHooks(xsThis, (xsHostHooks *)&xsListenerHooks);
		xsRemember(listener->obj);
	}
	xsCatch {
		xsmcSetHostData(xsThis, NULL);
		xs_portcullis_listener_destructor(listener);
		xsThrow(xsException);
	}
}

void xs_portcullis_listener_close(xsMachine *the)
{
	Listener listener = xsmcGetHostData(xsThis);
	if (listener && xsmcGetHostDataValidate(xsThis, (void *)&xsListenerHooks)) {
		xsForget(listener->obj);
		xs_portcullis_listener_destructor(listener);
		xsmcSetHostData(xsThis, NULL);
		xsmcSetHostDestructor(xsThis, NULL);
	}
}

void xs_portcullis_listener_read(xsMachine *the)
{
	Listener listener = xsmcGetHostDataValidate(xsThis, (void *)&xsListenerHooks);
	ListenerPending pending = listener->pending;
	TCP tcp;
	if (!pending) return;
	listener->pending = pending->next;
	xsResult = xsArg(0);
	tcp = xsmcGetHostDataValidate(xsResult, (void *)&xsTCPHooks);
	tcp->skt = pending->skt;
	tcp->connected = 1;
	c_free(pending);
}

void xs_portcullis_listener_get_port(xsMachine *the)
{
	Listener listener = xsmcGetHostDataValidate(xsThis, (void *)&xsListenerHooks);
	struct sockaddr_in sin;
	socklen_t length = sizeof(sin);
	if (listener->skt < 0 || getsockname(listener->skt, (struct sockaddr *)&sin, &length) < 0) return;
	xsmcSetInteger(xsResult, ntohs(sin.sin_port));
}
