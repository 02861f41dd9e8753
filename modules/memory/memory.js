/*
 * portcullis/memory: XS heap figures (see xs_memory.c).
 */
export function memory() @ "xs_portcullis_memory";
