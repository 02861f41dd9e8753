/*
 * portcullis lin sockets: the ECMA-419 TCP socket class over lin_socket.c (GLib watches, no polling).
 */
class TCP extends Native("xs_portcullis_tcp_destructor") {
	constructor(options) { super(); native("xs_portcullis_tcp_constructor").call(this, options); }
	close() { return native("xs_portcullis_tcp_close").call(this); }
	read(count) { return native("xs_portcullis_tcp_read").call(this, count); }
	write(data) { return native("xs_portcullis_tcp_write").call(this, data); }
	get remoteAddress() { return native("xs_portcullis_tcp_get_remoteAddress").call(this); }
	get remotePort() { return native("xs_portcullis_tcp_get_remotePort").call(this); }
	get format() { return native("xs_portcullis_tcp_get_format").call(this); }
	set format(value) { native("xs_portcullis_tcp_set_format").call(this, value); }
}

export default TCP;
