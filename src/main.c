/* crid: the daemon's entry point. Loads the configuration, builds the
 * services, and serves CRI on the socket until SIGTERM. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/fsutil.h"
#include "config/config.h"
#include "image/images.h"
#include "image/registry.h"
#include "image/unpack.h"
#include "oci/handler.h"
#include "rpc/methods.h"
#include "rpc/server.h"
#include "pod/pod_ns.h"
#include "runtime/runtime.h"
#include "stats/layer_usage.h"
#include "stats/metrics.h"
#include "stats/metrics_http.h"
#include "store/store.h"
#include "streaming/streaming.h"

/* Every client connection is a descriptor: take all the system allows
 * (systemd's default soft limit is 1024). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the limit of open files", "error", strerror(errno));
	}
}

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

static void store_closep(struct crid_store **s)
{
	crid_store_close(*s);
}

static void streaming_freep(struct crid_streaming **s)
{
	crid_streaming_free(*s);
}

static void images_freep(struct crid_images **im)
{
	crid_images_free(*im);
}

static void layers_freep(struct crid_layer_usage **l)
{
	crid_layer_usage_free(*l);
}

static void metrics_freep(struct crid_metrics **m)
{
	crid_metrics_free(*m);
}

static void metrics_http_stopp(struct crid_metrics_http **h)
{
	crid_metrics_http_stop(*h);
}

static void count_call(void *data, const char *service, const char *method, int status, int64_t dur_ns)
{
	crid_metrics_rpc_done(data, service, method, status, dur_ns);
}

struct services {
	struct crid_runtime *runtime;
	struct crid_images *images;
};

/* Shutdown began: end open streams, abort transfers. */
static void services_shutdown(void *data)
{
	struct services *s = data;

	crid_runtime_shutdown(s->runtime);
	crid_images_shutdown(s->images);
}

static int serve(const struct crid_config *cfg, struct crid_err *err)
{
	_cleanup_(methods_freep) struct crid_rpc_methods *methods = NULL;
	_cleanup_(metrics_freep) struct crid_metrics *metrics = NULL;
	_cleanup_(layers_freep) struct crid_layer_usage *layers = NULL;
	_cleanup_(store_closep) struct crid_store *store = NULL;
	_cleanup_(runtime_freep) struct crid_runtime *runtime = NULL;
	/* Declared after the runtime: freed before it, its sessions ended first. */
	_cleanup_(streaming_freep) struct crid_streaming *streaming = NULL;
	_cleanup_(images_freep) struct crid_images *images = NULL;
	_cleanup_(server_freep) struct crid_server *server = NULL;
	_cleanup_(metrics_http_stopp) struct crid_metrics_http *metrics_http = NULL;
	_cleanup_free_ char *upper_dir = NULL;
	struct services services;
	struct crid_server_options opts = {
		.socket_path = cfg->socket_path,
		.max_recv_bytes = cfg->grpc_max_recv_bytes,
		.max_send_bytes = cfg->grpc_max_send_bytes,
		.max_pending_bytes = cfg->grpc_max_pending_bytes,
		.request_timeout_s = cfg->grpc_request_timeout_s,
		.max_connections = cfg->grpc_max_connections,
		.preface_timeout_s = cfg->grpc_preface_timeout_s,
		.idle_timeout_s = cfg->grpc_idle_timeout_s,
		.worker_threads = cfg->worker_threads,
		.shutdown_grace_s = cfg->shutdown_grace_s,
	};
	int r;

	/* Nothing under the state root is for other users: layers and writable
	 * layers hold setuid binaries, the database every container's env. */
	if ((r = crid_mkdir_p(cfg->run_root, 0711, err)) < 0 || (r = crid_mkdir_private(cfg->state_root, err)) < 0)
		return r;
	if (asprintf(&upper_dir, "%s/containers", cfg->state_root) < 0)
		return crid_err_nomem(err, "paths");
	if ((r = crid_mkdir_p(upper_dir, 0711, err)) < 0 || (r = crid_metrics_new(&metrics, err)) < 0 ||
	    (r = crid_layer_usage_new(&layers, upper_dir, cfg->layer_usage_period_s, cfg->layer_usage_files_per_s,
				      err)) < 0 ||
	    (r = crid_store_open(&store, cfg->state_root, err)) < 0 || (r = crid_rpc_methods_new(&methods, err)) < 0 ||
	    (r = crid_images_new(&images, cfg, store, err)) < 0 || (r = crid_images_register(images, methods, err)) < 0 ||
	    (r = crid_streaming_new(&streaming, cfg, err)) < 0)
		return r;
	crid_images_observe(images, layers, metrics);
	if ((r = crid_runtime_new(&runtime, cfg, images, store, layers, metrics, streaming, err)) < 0 ||
	    (r = crid_runtime_register(runtime, methods, err)) < 0)
		return r;
	opts.on_call_end = count_call;
	opts.on_call_end_data = metrics;
	/* Once the runtime knows what still runs: what a lost database no
	 * longer names is kept, not collected. */
	crid_images_collect_startup(images, crid_runtime_adopted(runtime) > 0);
	r = crid_server_new(&server, &opts, methods, err);
	if (r < 0)
		return r;
	if (cfg->metrics_address && *cfg->metrics_address &&
	    (r = crid_metrics_http_start(&metrics_http, cfg->metrics_address, metrics, err)) < 0)
		return r;
	services.runtime = runtime;
	services.images = images;
	crid_server_on_shutdown(server, services_shutdown, &services);
	r = crid_server_run(server, err);
	/* Pulls still running answer their calls while the server is there. */
	crid_images_stop_pulls(images);
	/* The server goes first: its workers may still hold calls on the runtime. */
	crid_server_free(take_ptr(&server));
	crid_metrics_http_stop(take_ptr(&metrics_http));
	return r;
}

int main(int argc, char **argv)
{
	_cleanup_(config_freep) struct crid_config cfg = { 0 };
	struct crid_err err;
	sigset_t sigs;
	int r;

	/* crid re-executed as a layer unpacker, confined to one directory, or
	 * as the init of a pod that shares one PID namespace. */
	if (argc > 1 && strcmp(argv[1], CRID_UNPACK_ARG) == 0)
		return crid_unpack_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], CRID_POD_INIT_ARG) == 0)
		return crid_pod_init_main(argc, argv);

	/* Two malloc arenas at most, whatever the number of threads: a worker
	 * pool of dozens would otherwise keep a heap each, with what each
	 * burst of calls left free in it. (A malloc that is not glibc's, the
	 * sanitizers' say, refuses: nothing to do then.) */
	mallopt(M_ARENA_MAX, 2);

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
	raise_fd_limit();
	crid_handlers_resolve(&cfg);
	log_info("starting crid", "version", CRID_VERSION, "config", cfg.config_file ? cfg.config_file : "(none)");
	r = serve(&cfg, &err);
	crid_registry_global_cleanup();
	if (r < 0) {
		log_error("crid failed", "error", err.msg);
		return 1;
	}
	log_info("crid stopped");
	return 0;
}
