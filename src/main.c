/* crid: the daemon's entry point. Loads the configuration, builds the
 * services, and serves CRI on the socket until SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "config/config.h"
#include "rpc/methods.h"
#include "rpc/server.h"
#include "runtime/runtime.h"

static void config_freep(struct crid_config *cfg)
{
	crid_config_free(cfg);
}

static void methods_freep(struct crid_rpc_methods **m)
{
	crid_rpc_methods_free(*m);
}

static void runtime_freep(struct crid_runtime **rt)
{
	crid_runtime_free(*rt);
}

static void server_freep(struct crid_server **s)
{
	crid_server_free(*s);
}

/* mkdir -p with mode for the last component; the roots are configuration. */
static int make_root(const char *path, mode_t mode, struct crid_err *err)
{
	_cleanup_free_ char *copy = strdup(path);

	if (!copy)
		return crid_err_nomem(err, "path");
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			return crid_err_set(err, CRID_INTERNAL, errno, "create %s", copy);
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		return crid_err_set(err, CRID_INTERNAL, errno, "create %s", copy);
	return 0;
}

static int serve(const struct crid_config *cfg, struct crid_err *err)
{
	_cleanup_(methods_freep) struct crid_rpc_methods *methods = NULL;
	_cleanup_(runtime_freep) struct crid_runtime *runtime = NULL;
	_cleanup_(server_freep) struct crid_server *server = NULL;
	struct crid_server_options opts = {
		.socket_path = cfg->socket_path,
		.max_recv_bytes = cfg->grpc_max_recv_bytes,
		.max_send_bytes = cfg->grpc_max_send_bytes,
		.worker_threads = cfg->worker_threads,
		.shutdown_grace_s = cfg->shutdown_grace_s,
	};
	int r;

	if ((r = make_root(cfg->run_root, 0711, err)) < 0 || (r = make_root(cfg->state_root, 0711, err)) < 0)
		return r;
	if ((r = crid_rpc_methods_new(&methods, err)) < 0 || (r = crid_runtime_new(&runtime, cfg, err)) < 0 ||
	    (r = crid_runtime_register(runtime, methods, err)) < 0)
		return r;
	r = crid_server_new(&server, &opts, methods, err);
	if (r < 0)
		return r;
	crid_server_on_shutdown(server, crid_runtime_shutdown, runtime);
	r = crid_server_run(server, err);
	/* The server goes first: its workers may still hold calls on the runtime. */
	crid_server_free(take_ptr(&server));
	return r;
}

int main(int argc, char **argv)
{
	_cleanup_(config_freep) struct crid_config cfg = { 0 };
	struct crid_err err;
	sigset_t sigs;
	int r;

	/* Shutdown signals are read from a signalfd; every thread started later
	 * inherits this mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		perror("crid: set up signals");
		return 1;
	}
	crid_err_clear(&err);
	r = crid_config_load(&cfg, argc, argv, &err);
	if (r < 0) {
		fprintf(stderr, "crid: %s\n", err.msg);
		return 2;
	}
	if (r == CRID_CONFIG_EXIT)
		return 0;
	crid_log_setup(cfg.log_level, cfg.log_format);
	log_info("starting crid", "version", CRID_VERSION, "config", cfg.config_file ? cfg.config_file : "(none)");
	r = serve(&cfg, &err);
	if (r < 0) {
		log_error("crid failed", "error", err.msg);
		return 1;
	}
	log_info("crid stopped");
	return 0;
}
