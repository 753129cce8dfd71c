/* Libraries the daemon loads on first use (libcurl, libarchive, OpenSSL):
 * an idle daemon, and every process re-executed from its binary (the pod
 * init, the layer unpacker), never maps them. Owns only the loading; the
 * forwarding functions of the crid binary (lazylib_stubs.c) call in here. */
#ifndef CRID_COMMON_LAZYLIB_H
#define CRID_COMMON_LAZYLIB_H

#include <stdbool.h>

#include "common/error.h"

enum crid_lazylib {
	CRID_LIB_CURL,
	CRID_LIB_ARCHIVE,
	CRID_LIB_SSL,
	CRID_LIB_CRYPTO,
	CRID_LIB_COUNT,
};

/* Loads lib (once; later calls only report the first outcome). Callers
 * that can answer an error call this before their first use of lib. */
int crid_lazylib_load(enum crid_lazylib lib, struct crid_err *err);
/* Whether lib is mapped, loaded by crid_lazylib_load or linked in. */
bool crid_lazylib_loaded(enum crid_lazylib lib);
/* The address of name in lib, loading lib first. A library that cannot be
 * loaded here is a broken installation: it is logged and crid aborts. */
void *crid_lazylib_sym(enum crid_lazylib lib, const char *name);

#endif
