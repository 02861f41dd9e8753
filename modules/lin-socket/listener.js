/*
 * portcullis lin sockets: the ECMA-419 TCP listener over lin_socket.c (a GLib watch on the listening socket).
 */
import TCP from "embedded:io/socket/tcp";

class Listener extends Native("xs_portcullis_listener_destructor") {
	constructor(options) { super(); native("xs_portcullis_listener_constructor").call(this, options); }
	close() { return native("xs_portcullis_listener_close").call(this); }
	read() { return native("xs_portcullis_listener_read").call(this, new TCP); }
	get port() { return native("xs_portcullis_listener_get_port").call(this); }
	get format() { return "socket/tcp"; }
	set format(value) {
		if ("socket/tcp" !== value) throw new RangeError("socket/tcp only");
	}
}

export default Listener;
