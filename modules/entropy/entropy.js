/*
 * portcullis/entropy: secure random bytes from the platform (see entropy_source.c).
 */
export function fill(bytes) @ "xs_portcullis_entropy_fill";
