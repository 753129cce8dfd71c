/* What the CRI shows of a pod or a container (PodSandboxStatus,
 * ContainerStatus), filled from memory in one place, so status calls,
 * lists and container events say the same; and the container events
 * themselves, built with those views and handed to the event bus. Views
 * borrow the object's strings: they live as long as the object's lock or
 * reference that the caller holds. Nothing here runs a process. */
#ifndef CRID_RUNTIME_VIEWS_H
#define CRID_RUNTIME_VIEWS_H

#include <stdint.h>

#include "runtime/objects.h"

#define CRID_POD_VIEW_MAX_ADDITIONAL_IPS 16

struct crid_pod_view {
	Runtime__V1__PodSandboxStatus status;
	Runtime__V1__PodSandboxNetworkStatus network;
	Runtime__V1__PodIP additional[CRID_POD_VIEW_MAX_ADDITIONAL_IPS];
	Runtime__V1__PodIP *additional_ptrs[CRID_POD_VIEW_MAX_ADDITIONAL_IPS];
	Runtime__V1__LinuxPodSandboxStatus linux_status;
	Runtime__V1__Namespace ns;
	Runtime__V1__NamespaceOption ns_options;
};

/* Needs no lock: what it reads is immutable or atomic. */
void crid_pod_view_fill(struct crid_pod *p, struct crid_pod_view *v);

struct crid_container_view {
	Runtime__V1__ContainerStatus status;
	Runtime__V1__ImageSpec image;
};

/* c->state_lock held, for as long as the view is used. */
void crid_container_view_fill(struct crid_container *c, struct crid_container_view *v);

Runtime__V1__ContainerState crid_container_cri_state(enum crid_ctr_state s);

/* Publishes an event for container c (whose operations lock the caller
 * holds, so a container's events go out in the order they happened): the
 * pod's status and the statuses of all its containers as they are now.
 * at: when it happened (created, started, finished, removed). */
void crid_event_container(struct crid_runtime *rt, struct crid_container *c, Runtime__V1__ContainerEventType type,
			  int64_t at);

/* The same for a pod sandbox: container_id is the pod's ID, as the peers
 * send it (see ARCHITECTURE.md, container events). */
void crid_event_pod(struct crid_runtime *rt, struct crid_pod *p, Runtime__V1__ContainerEventType type, int64_t at);

#endif
