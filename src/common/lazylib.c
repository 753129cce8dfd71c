/* Loading libraries on first use (lazylib.h). */
#include "common/lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

/* Sonames of the Debian packages crid depends on (libcurl4, libarchive13,
 * libssl3). libssl needs libcrypto and maps it itself. */
static const char *const sonames[CRID_LIB_COUNT] = {
	[CRID_LIB_CURL] = "libcurl.so.4",
	[CRID_LIB_ARCHIVE] = "libarchive.so.13",
	[CRID_LIB_SSL] = "libssl.so.3",
	[CRID_LIB_CRYPTO] = "libcrypto.so.3",
};

struct lazylib {
	pthread_mutex_t lock;
	void *_Atomic handle;
	bool tried;
	char error[256];
};

static struct lazylib libs[CRID_LIB_COUNT] = {
	[0 ... CRID_LIB_COUNT - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

int crid_lazylib_load(enum crid_lazylib lib, struct crid_err *err)
{
	struct lazylib *l = &libs[lib];
	int r = 0;

	if (atomic_load_explicit(&l->handle, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&l->lock);
	if (!l->tried) {
		/* RTLD_NODELETE: forwarded addresses stay valid for the process' life. */
		void *h = dlopen(sonames[lib], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
		const char *why;

		l->tried = true;
		if (h)
			atomic_store_explicit(&l->handle, h, memory_order_release);
		else {
			why = dlerror();
			snprintf(l->error, sizeof(l->error), "%s", why ? why : "unknown error");
		}
	}
	if (!atomic_load_explicit(&l->handle, memory_order_relaxed))
		r = crid_err_set(err, CRID_INTERNAL, 0, "load %s: %s", sonames[lib], l->error);
	pthread_mutex_unlock(&l->lock);
	return r;
}

bool crid_lazylib_loaded(enum crid_lazylib lib)
{
	return atomic_load_explicit(&libs[lib].handle, memory_order_acquire) != NULL;
}

void *crid_lazylib_sym(enum crid_lazylib lib, const char *name)
{
	struct crid_err err;
	void *sym;

	crid_err_clear(&err);
	if (crid_lazylib_load(lib, &err) < 0) {
		log_error("a library crid needs is missing", "error", err.msg);
		abort();
	}
	sym = dlsym(atomic_load_explicit(&libs[lib].handle, memory_order_acquire), name);
	if (!sym) {
		log_error("a library crid needs lacks a function", "library", sonames[lib], "function", name);
		abort();
	}
	return sym;
}
