/*
 * portcullis/memory: the XS machine's heap figures (current, peak and maximum of the chunk and slot
 * heaps, in bytes), read from the machine record as the SDK's instrumentation does
 * (build/simulators/modules/screen.c). Used for the memory budget in SPEC.md "Firmware".
 */
#include "xsAll.h"
#include "xsmc.h"
#if ESP32
#include "esp_timer.h"
#else
#include <time.h>
#endif

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

/*
 * cpuMicros(): CPU time in microseconds for the per-stage meter (src/util/meter.ts). On lin the
 * calling thread's CPU time, so other processes on the machine do not count; on the ESP32, where XS
 * runs on one core, esp_timer's time since boot (it includes time that core spends in other tasks).
 */
void xs_portcullis_cpu_micros(xsMachine *the)
{
#if ESP32
	xsmcSetNumber(xsResult, (txNumber)esp_timer_get_time());
#else
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	xsmcSetNumber(xsResult, (txNumber)ts.tv_sec * 1e6 + (txNumber)ts.tv_nsec / 1e3);
#endif
}

/*
 * census(top): where the live slots are, after a full collection (call Debug.gc() first). Walks the
 * slot heaps as fxSweep does and groups every live instance with its property chain: functions by
 * their code (name = the code's ID), other instances by prototype (name = the prototype's constructor);
 * slots outside any chain (closure cells, map entries, environments' variables, list items) by kind.
 * Returns text, one "<slots> <count> <name>" line per group, largest first, at most `top` lines.
 * A diagnostic for the memory budget (DESIGN.md "Where the slots go"); it allocates nothing while it walks.
 */
#define CENSUS_GROUPS 768
#define CENSUS_TARGETS 64
typedef struct {
	const void *key;
	txID first; /* the first property's key: tells object literals and environments apart */
	txSlot *instance; /* one member: names the group */
	txInteger count;
	txInteger slots;
	txBoolean function;
} CensusGroup;

/* Taken from the C heap for the call only (about 40 KB on the ESP32 with the text): never resident. */
typedef struct {
	CensusGroup groups[CENSUS_GROUPS];
	txInteger kinds[64];
	const char *targetNames[CENSUS_TARGETS];
	txInteger targetCounts[CENSUS_TARGETS];
	const char *idNames[CENSUS_TARGETS];
	txInteger idCounts[CENSUS_TARGETS];
	const char *anonNames[CENSUS_TARGETS];
	txInteger anonCounts[CENSUS_TARGETS];
	char text[16384];
} Census;
#define census_groups (census->groups)
#define census_kinds (census->kinds)
#define census_text (census->text)

static const char *census_function_name(txMachine *the, txSlot *instance)
{
	txSlot *code = mxFunctionInstanceCode(instance);
	if (code->ID != XS_NO_ID) {
		const char *name = fxGetKeyName(the, code->ID);
		if (name && *name) return name;
	}
	return "(anonymous function)";
}

static const char *census_instance_name(txMachine *the, txSlot *instance)
{
	txSlot *prototype = instance->value.instance.prototype;
	txSlot *property;
	if (!prototype) return "(no prototype: environment or null-prototype object)";
	for (property = prototype->next; property; property = property->next) {
		if (property->ID == mxID(_constructor) && property->kind == XS_REFERENCE_KIND) {
			txSlot *ctor = property->value.reference;
			if (mxIsFunction(ctor)) return census_function_name(the, ctor);
		}
	}
	return "(prototype without constructor)";
}

/* An anonymous function named by the first variable of its closure environment ("?" without one). */
static const char *census_anonymous_capture(txMachine *the, txSlot *function)
{
	txSlot *code = mxFunctionInstanceCode(function);
	txSlot *env = (code->kind == XS_CODE_KIND || code->kind == XS_CODE_X_KIND) ? code->value.code.closures : C_NULL;
	txSlot *p;
	if (!env) return "(no environment)";
	for (p = env->next; p; p = p->next)
		if (p->ID != XS_NO_ID) {
			const char *name = fxGetKeyName(the, p->ID);
			if (name && *name) return name;
		}
	return "?";
}

/* Counts one more slot under `name` (names are interned key strings or constants: compared by address). */
static void census_tally(const char **names, txInteger *counts, txInteger *n, const char *name)
{
	txInteger i;
	for (i = 0; i < *n; i++) if (names[i] == name) break;
	if (i == *n && *n < CENSUS_TARGETS) names[(*n)++] = name;
	if (i < *n) counts[i]++;
}

/* Appends the `top` largest tallies, largest first, one "<count> - <label> <name>" line each; returns the new offset. */
static txInteger census_print_top(char *text, txInteger offset, txInteger size, const char **names, txInteger *counts, txInteger n, txInteger top, const char *label)
{
	txInteger i, j;
	for (j = 0; j < top; j++) {
		txInteger best = -1, bestCount = 0;
		for (i = 0; i < n; i++) if (counts[i] > bestCount) { bestCount = counts[i]; best = i; }
		if (best < 0 || offset >= size - 160) break;
		offset += c_snprintf(text + offset, size - offset, "%6d        - %s %s\n", (int)bestCount, label, names[best] ? names[best] : "?");
		counts[best] = 0;
	}
	return offset;
}

void xs_portcullis_memory_census(xsMachine *the)
{
	txInteger top = xsmcToInteger(xsArg(0));
	txInteger used = 0, groups = 0, overflow = 0, aliases = 0, targets = 0, ids = 0, anons = 0, i, j, offset = 0, functions = 0, functionSlots = 0, pass;
	txSlot *heap, *slot, *limit, *p;
	Census *census = c_calloc(1, sizeof(Census));
	if (!census) xsUnknownError("census: no memory for the tally");
	/* Free slots are marked first so that they are not counted. */
	for (p = the->freeHeap; p; p = p->next) p->flag |= XS_MARK_FLAG;
	/*
	 * Two passes: functions first, each with its chain, its closure environment and the environment's
	 * variable cells (so a closure's whole cost is charged to it); then every other instance.
	 */
	for (pass = 0; pass < 2; pass++) {
		for (heap = the->firstHeap; heap; heap = heap->next) {
			limit = heap->value.reference;
			for (slot = heap + 1; slot < limit; slot++) {
				CensusGroup *g = C_NULL;
				const void *key;
				txID first = XS_NO_ID;
				txBoolean function;
				txInteger n = 0;
				if (slot->kind != XS_INSTANCE_KIND || (slot->flag & XS_MARK_FLAG)) continue;
				function = mxIsFunction(slot) ? 1 : 0;
				if (function != (pass == 0)) continue;
				/* Functions by name (the same arrow made per connection is one group), anonymous ones by code. */
				if (function && mxFunctionInstanceCode(slot)->ID != XS_NO_ID) key = (const void *)(uintptr_t)(1 + (unsigned)mxFunctionInstanceCode(slot)->ID);
				else key = function ? (const void *)mxFunctionInstanceCode(slot)->value.code.address : (const void *)slot->value.instance.prototype;
				if (!function) {
					/* The first keyed property (an environment starts with unkeyed internal slots). */
					for (p = slot->next; p && first == XS_NO_ID; p = p->next) first = p->ID;
				}
				for (p = slot; p; p = p->next) {
					if (p->flag & XS_MARK_FLAG) break;
					p->flag |= XS_MARK_FLAG;
					n++;
				}
				if (function) {
					txSlot *code = mxFunctionInstanceCode(slot);
					txSlot *env = (code->kind == XS_CODE_KIND || code->kind == XS_CODE_X_KIND) ? code->value.code.closures : C_NULL;
					if (env && !(env->flag & XS_MARK_FLAG)) {
						for (p = env; p; p = p->next) {
							if (p->flag & XS_MARK_FLAG) break;
							p->flag |= XS_MARK_FLAG;
							n++;
							if (p->kind == XS_CLOSURE_KIND && p->value.closure && !(p->value.closure->flag & XS_MARK_FLAG)) {
								p->value.closure->flag |= XS_MARK_FLAG;
								n++;
							}
						}
					}
					functionSlots += n;
					functions++;
				}
				for (i = 0; i < groups; i++)
					if (census_groups[i].key == key && census_groups[i].first == first && census_groups[i].function == function) { g = &census_groups[i]; break; }
				if (!g && groups < CENSUS_GROUPS) {
					g = &census_groups[groups++];
					g->key = key;
					g->first = first;
					g->instance = slot;
					g->function = function;
				}
				if (g) { g->count++; g->slots += n; }
				else overflow += n;
			}
		}
	}
	/* Module variables written at run time: XS gives a preloaded (flash) variable a slot of RAM, its alias. */
#if mxAliasInstance
	for (i = 0; i < the->aliasCount; i++) {
		p = the->aliasArray[i];
		if (p && !(p->flag & XS_MARK_FLAG) && p->kind != XS_INSTANCE_KIND) {
			p->flag |= XS_MARK_FLAG;
			aliases++;
		}
	}
#endif
	/* Live slots outside any chain, by kind (references also by what they point to); then every mark is cleared again. */
	for (heap = the->firstHeap; heap; heap = heap->next) {
		limit = heap->value.reference;
		for (slot = heap + 1; slot < limit; slot++) {
			if (!(slot->flag & XS_MARK_FLAG)) {
				census_kinds[(slot->kind >= 0 && slot->kind < 64) ? slot->kind : 63]++;
				used++;
				if (slot->ID != XS_NO_ID) {
					census_tally(census->idNames, census->idCounts, &ids, fxGetKeyName(the, slot->ID));
				}
				if (slot->kind == XS_REFERENCE_KIND && slot->value.reference) {
					txSlot *target = slot->value.reference;
					const char *name = mxIsFunction(target) ? census_function_name(the, target) : census_instance_name(the, target);
					census_tally(census->targetNames, census->targetCounts, &targets, name);
					if (mxIsFunction(target) && mxFunctionInstanceCode(target)->ID == XS_NO_ID)
						census_tally(census->anonNames, census->anonCounts, &anons, census_anonymous_capture(the, target));
				}
			}
		}
	}
	used += aliases;
	for (heap = the->firstHeap; heap; heap = heap->next) {
		limit = heap->value.reference;
		for (slot = heap + 1; slot < limit; slot++) slot->flag &= ~XS_MARK_FLAG;
	}
	for (i = 0; i < groups; i++) used += census_groups[i].slots;
	used += overflow;
	offset += c_snprintf(census_text + offset, sizeof(census_text) - offset, "census: %d live slots in %d groups; closures %d in %d slots (with their environments and cells)\n", (int)used, (int)groups, (int)functions, (int)functionSlots);
	/* Selection of the largest groups, then the largest orphan kinds, as text. */
	for (j = 0; j < top; j++) {
		txInteger best = -1, bestKind = -1, bestSlots = 0;
		for (i = 0; i < groups; i++) if (census_groups[i].slots > bestSlots) { bestSlots = census_groups[i].slots; best = i; }
		for (i = 0; i < 64; i++) if (census_kinds[i] > bestSlots) { bestSlots = census_kinds[i]; bestKind = i; best = -1; }
		if (bestSlots == 0 || offset >= (txInteger)sizeof(census_text) - 160) break;
		if (bestKind >= 0) {
			offset += c_snprintf(census_text + offset, sizeof(census_text) - offset, "%6d        - outside instances, kind %d\n", (int)bestSlots, (int)bestKind);
			census_kinds[bestKind] = 0;
		}
		else {
			CensusGroup *g = &census_groups[best];
			const char *name = g->function ? census_function_name(the, g->instance) : census_instance_name(the, g->instance);
			const char *first = (g->first != XS_NO_ID) ? fxGetKeyName(the, g->first) : C_NULL;
			offset += c_snprintf(census_text + offset, sizeof(census_text) - offset, "%6d %6d %s%s%s%s%s\n", (int)g->slots, (int)g->count, g->function ? "fn " : "", name,
				first ? " {" : "", first ? first : "", first ? ", ...}" : "");
			g->slots = 0;
		}
	}
	if (aliases) offset += c_snprintf(census_text + offset, sizeof(census_text) - offset, "%6d        - module variables written at run time (aliases of flash)\n", (int)aliases);
	offset = census_print_top(census_text, offset, sizeof(census_text), census->targetNames, census->targetCounts, targets, 12, "outside references to");
	offset = census_print_top(census_text, offset, sizeof(census_text), census->anonNames, census->anonCounts, anons, 12, "outside references to an anonymous function capturing");
	offset = census_print_top(census_text, offset, sizeof(census_text), census->idNames, census->idCounts, ids, 24, "outside slots named");
	if (overflow) offset += c_snprintf(census_text + offset, sizeof(census_text) - offset, "%6d        - in groups past the table's %d\n", (int)overflow, CENSUS_GROUPS);
	xsmcSetString(xsResult, census_text);
	c_free(census);
}
