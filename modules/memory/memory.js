/*
 * portcullis/memory: XS heap figures and a census of the live slots (see xs_memory.c).
 */
export function memory() @ "xs_portcullis_memory";
export function census(top) @ "xs_portcullis_memory_census";
export function cpuMicros() @ "xs_portcullis_cpu_micros";
