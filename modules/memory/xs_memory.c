/*
 * portcullis/memory: the XS machine's heap figures (current, peak and maximum of the chunk and slot
 * heaps, in bytes), read from the machine record as the SDK's instrumentation does
 * (build/simulators/modules/screen.c). Used for the memory budget in SPEC.md "Firmware".
 */
#include "xsAll.h"
#include "xsmc.h"

static void set(xsMachine *the, const char *name, txNumber value)
{
	xsmcVars(1);
	xsmcSetNumber(xsVar(0), value);
	xsmcSet(xsResult, xsID((char *)name), xsVar(0));
}

void xs_portcullis_memory(xsMachine *the)
{
	xsmcSetNewObject(xsResult);
	set(the, "chunkUsed", the->currentChunksSize);
	set(the, "chunkPeak", the->peakChunksSize);
	set(the, "chunkMaximum", the->maximumChunksSize);
	set(the, "slotUsed", (txNumber)the->currentHeapCount * sizeof(txSlot));
	set(the, "slotPeak", (txNumber)the->peakHeapCount * sizeof(txSlot));
	set(the, "slotMaximum", (txNumber)the->maximumHeapCount * sizeof(txSlot));
	set(the, "slotSize", sizeof(txSlot));
	set(the, "stackSlots", (txNumber)(the->stackTop - the->stackBottom));
#ifdef mxInstrument
	/* XS tracks the stack peak only in instrumented builds (xsRun.c); 0 otherwise. */
	set(the, "stackPeakSlots", (txNumber)(the->stackTop - the->stackPeak));
#else
	set(the, "stackPeakSlots", 0);
#endif
}
