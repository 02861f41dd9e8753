/*
 * XS binding of the entropy source: `fill(bytes)` fills any byte buffer (ArrayBuffer or view) in place.
 * It throws rather than return weak bytes (fail closed, src/ports.ts Random).
 */
#include "xsmc.h"
#include "xsHost.h"
#include "entropy_source.h"

void xs_portcullis_entropy_fill(xsMachine *the)
{
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferWritable(xsArg(0), &data, &length);
	if (portcullis_entropy_fill(NULL, data, length) != 0)
		xsUnknownError("no secure random source");
}
