/* The objects pods and containers share: the runtime's tables of pods and
 * containers, their IDs, names, references and locks, their records in the
 * store, and the node's features. Each object has its own lock; the tables'
 * lock is held only to find, add or remove objects, never across a runtime
 * or CNI call. Plain state, but for the features (probed once, features.c). */
#ifndef CRID_RUNTIME_OBJECTS_H
#define CRID_RUNTIME_OBJECTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "image/images.h"
#include "network/network.h" /* a pod's network attachment, held here */
#include "common/stoppable_thread.h"
#include "oci/handler.h"
#include "pod/pod_ns.h" /* the type of a pod's kernel state, held here */
#include "runtime/events.h"
#include "runtime/packed_list.h"
#include "runtime/runtime.h"
#include "runtime/v1/api.pb-c.h"
#include "stats/cgroup.h"
#include "stats/cpu_rate.h"
#include "stats/layer_usage.h"
#include "stats/metrics.h"
#include "store/store.h"

#define CRID_ID_LEN 64

struct crid_pod {
	atomic_int refs;
	pthread_mutex_t lock; /* everything below but id and config */
	char id[CRID_ID_LEN + 1];
	Runtime__V1__PodSandboxConfig *config; /* owned, immutable */
	char *name_key;			       /* name_namespace_uid_attempt */
	const struct crid_runtime_handler *handler;
	char *handler_name; /* as the request said ("" for the default) */
	int64_t created_at; /* set once, when the pod is ready */
	atomic_bool ready;  /* read without the lock: lists never wait */
	bool removed;
	char *dir; /* <run_root>/pods/<id> */
	struct crid_pod_ns ns;
	/* NULL for a host-network pod. Set before the pod is ready and kept
	 * until it is freed (detached, not freed, by DEL): status reads its
	 * addresses without the lock once it has seen ready. */
	struct crid_network_attachment *net;
	struct crid_cpu_rate cpu; /* the previous CPU reading of PodSandboxStats */
	json_t *resources; /* the pod cgroup's (OCI linux.resources), NULL when none */
	/* A handler with one sandbox per pod: the pod's sandbox container
	 * (pod_sandbox.c), its ID the pod's, in <dir>/sandbox. 0: none. */
	pid_t sandbox_shim_pid, sandbox_pid;
	struct crid_packed_entry listed; /* (table lock) its ListPodSandbox entry */
	struct crid_pod *next;
};

enum crid_ctr_state {
	CRID_CTR_CREATED = 0,
	CRID_CTR_RUNNING,
	CRID_CTR_EXITED,
	CRID_CTR_UNKNOWN,
};

struct crid_container {
	atomic_int refs;
	pthread_mutex_t lock;	      /* operations: held across runtime calls */
	pthread_mutex_t state_lock;   /* the fields marked (s): never held across a call */
	pthread_cond_t changed;	      /* state moves: waiters for exit (with lock) */
	char id[CRID_ID_LEN + 1];
	char pod_id[CRID_ID_LEN + 1];
	Runtime__V1__ContainerConfig *config; /* owned, immutable */
	char *name_key;
	const struct crid_runtime_handler *handler;
	bool host_network; /* its pod uses the node's network */
	char *image_name;  /* as requested */
	char *image_id;	   /* "sha256:..." */
	char *image_shown; /* ContainerStatus' image: a name, not an ID, where one is known */
	char *image_ref;   /* "repository@sha256:...", else the ID */
	enum crid_ctr_state state;		      /* (s) */
	int64_t created_at, started_at, finished_at; /* (s) */
	int exit_code;				      /* (s) */
	char *reason, *message;			      /* (s) */
	char *log_path; /* absolute, "" when none */
	char *dir;	/* <run_root>/containers/<id>: bundle, shim state */
	char *rootfs;	/* <dir>/rootfs, an overlay mount */
	char *upper;	/* <state_root>/containers/<id> */
	char *cgroups_path;
	int stop_signal;
	pid_t shim_pid, pid;
	json_t *process; /* the OCI process, for exec */
	json_t *resources; /* (s) the OCI linux.resources applied, updates included */
	bool removed;
	bool stop_published;	  /* (lock) the STOPPED event went out */
	struct crid_cpu_rate cpu; /* the previous CPU reading of ContainerStats */
	struct crid_packed_entry listed; /* (table lock) its ListContainers entry */
	struct crid_container *next;
};

struct crid_streaming;

struct crid_runtime {
	const struct crid_config *cfg;
	struct crid_events *events;
	struct crid_images *images;
	struct crid_store *db;
	struct crid_network *net;
	struct crid_cdi *cdi; /* CDI device specs */
	struct crid_cgroup_layout cgroups; /* where stats read each controller */
	struct crid_layer_usage *layers;   /* writable layers' disk use */
	struct crid_metrics *metrics;	   /* NULL: none kept */
	pthread_mutex_t lock; /* pod_cidr, and the tables below */
	char *pod_cidr;
	struct crid_pod *pods;
	struct crid_container *containers;
	struct crid_packed_list pod_list, container_list; /* (lock) answers' buffers */
	char *pods_dir;	      /* <run_root>/pods */
	char *containers_dir; /* <run_root>/containers */
	char *upper_dir;      /* <state_root>/containers */
	char *shim_path;
	char *sandbox_init_path; /* crid-sandbox-init, next to crid-shim */
	struct crid_streaming *streaming; /* Exec, Attach, PortForward hand out its URLs */
	/* exit watcher (exit_watch.c) */
	struct crid_stoppable_thread watcher;
	int inotify_fd;
	pthread_mutex_t watch_lock;
	struct crid_exit_watch *watches; /* inotify watch → container */
	size_t n_watches, cap_watches;
	/* Status' features, probed at the first Status (runtime_service.c). */
	pthread_mutex_t features_lock;
	bool features_probed;
	bool userns_ok, rro_ok; /* what the kernel and the directories allow */
	struct crid_handler_features *handler_features; /* one per cfg->runtimes[i] */
	unsigned adopted; /* objects recorded again from their copies at start */
};

/* What handler h can do on this node, user namespaces and recursive
 * read-only mounts (features.c): probed at the first call, then kept. */
void crid_runtime_features(struct crid_runtime *rt, const struct crid_runtime_handler *h,
			   struct crid_handler_features *out);

/* A new random 64-hex ID. */
int crid_new_id(char out[CRID_ID_LEN + 1], struct crid_err *err);

/* Finds by full ID or unique prefix; takes a reference. NOT_FOUND,
 * or INVALID_ARGUMENT for an ambiguous prefix, naming what. */
int crid_pod_find(struct crid_runtime *rt, const char *id, struct crid_pod **out, struct crid_err *err);
int crid_container_find(struct crid_runtime *rt, const char *id, struct crid_container **out, struct crid_err *err);
void crid_pod_unref(struct crid_pod *p);
void crid_container_unref(struct crid_container *c);

static inline void crid_pod_unrefp(struct crid_pod **p)
{
	crid_pod_unref(*p);
}

static inline void crid_container_unrefp(struct crid_container **c)
{
	crid_container_unref(*c);
}

/* A deep copy of a CRI message (through its wire form), to keep a request's
 * config past the call. NULL on out of memory. */
ProtobufCMessage *crid_message_copy(const ProtobufCMessage *m);

/* What one object may carry in labels, annotations and metadata together
 * (Kubernetes caps a pod's annotations at 256 KiB). */
#define CRID_MAX_OBJECT_METADATA (256 * 1024)

/* How many bytes an object adds to ListPodSandbox / ListContainers. */
size_t crid_pod_list_weight(const Runtime__V1__PodSandboxConfig *c, const char *handler);
size_t crid_container_list_weight(const Runtime__V1__ContainerConfig *c);

/* INVALID_ARGUMENT when a new object's labels, annotations and metadata
 * exceed CRID_MAX_OBJECT_METADATA. */
int crid_pod_metadata_check(const Runtime__V1__PodSandboxConfig *c, struct crid_err *err);
int crid_container_metadata_check(const Runtime__V1__ContainerConfig *c, struct crid_err *err);

/* With the tables' lock held: RESOURCE_EXHAUSTED when one more object of
 * weight would make the list of every pod (container) larger than the
 * largest response crid sends, so lists always fit. */
int crid_pods_admit_locked(struct crid_runtime *rt, size_t weight, struct crid_err *err);
int crid_containers_admit_locked(struct crid_runtime *rt, size_t weight, struct crid_err *err);

/* Takes c or p out of its table and drops the table's reference. */
void crid_pod_unlink(struct crid_runtime *rt, struct crid_pod *p);
void crid_container_unlink(struct crid_runtime *rt, struct crid_container *c);

/* Records in the store (records.c); lock of the object held. Failures are
 * logged: the object lives on in memory. */
int crid_pod_persist(struct crid_runtime *rt, struct crid_pod *p);
int crid_container_persist(struct crid_runtime *rt, struct crid_container *c);
void crid_object_forget(struct crid_runtime *rt, const char *kind, const char *id);

/* Start-up: an object on the machine that crid.db does not know (the
 * database was lost) is recorded again from the copy its directory dir
 * holds; *out is that record, to clear with crid_object_record_clear.
 * -ENOENT when dir holds no copy: the object was never recorded (an
 * interrupted create). */
int crid_object_adopt(struct crid_runtime *rt, const char *kind, const char *dir, const char *id,
		      struct crid_object_record *out);
void crid_object_record_clear(struct crid_object_record *r);

/* A string member of a record's state, "" when absent. */
static inline const char *crid_record_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

#endif
