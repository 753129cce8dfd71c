/* Pod networking through CNI: the network configuration crid follows (and
 * the readiness it reports), a pod's attachment to that network (ADD when
 * the pod is made, DEL when it stops, CHECK after a restart), and the
 * attachments' records, so that no address outlives its pod. Owns the
 * contents of pods' network namespaces and their IP leases; never touches
 * containers, and never makes or removes the namespaces themselves. */
#ifndef CRID_NETWORK_H
#define CRID_NETWORK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"
#include "config/config.h"
#include "runtime/v1/api.pb-c.h"
#include "store/store.h"

struct crid_network;

/* One pod's attachment: what ADD was given and answered, kept (in memory
 * and in the store) until DEL has released it. */
struct crid_network_attachment;

struct crid_network_readiness {
	bool ready;
	char reason[64];   /* CamelCase, for the NetworkReady condition; "" when ready */
	char message[512]; /* a sentence for the operator; "" when ready */
};

/* Loads the configuration of cfg->cni_conf_dir (made when missing) and
 * watches it; reads the attachments recorded before a restart, which pods
 * then claim (crid_network_claim), and ends plugins a crashed crid left
 * running for them. */
int crid_network_new(struct crid_network **out, const struct crid_config *cfg, struct crid_store *db,
		     struct crid_err *err);
void crid_network_free(struct crid_network *net);

/* Whether pods can get a network now: a valid configuration exists. */
void crid_network_readiness(struct crid_network *net, struct crid_network_readiness *out);

/* The configuration in use, for Status' verbose info (new reference), or
 * the reason there is none. */
json_t *crid_network_describe(struct crid_network *net);

/* What ADD needs of a pod. */
struct crid_network_pod {
	const char *id;					   /* CNI_CONTAINERID */
	const char *netns;				   /* the pod's pinned network namespace */
	const Runtime__V1__PodSandboxConfig *config;	   /* metadata, ports, annotations, DNS */
	const char *pod_cidr;				   /* UpdateRuntimeConfig's, NULL when none */
};

/* Attaches the pod to the network in use: records the attachment, then runs
 * ADD through the plugin list. On failure what the plugins that ran made is
 * undone (DEL) and the error carries the plugin's message:
 * FAILED_PRECONDITION when no configuration is valid or a plugin is
 * missing, INVALID_ARGUMENT for a pod setting plugins cannot take,
 * DEADLINE_EXCEEDED when a plugin outlived cni_plugin_timeout_s, UNKNOWN
 * for a plugin's own error. */
int crid_network_attach(struct crid_network *net, const struct crid_network_pod *pod,
			struct crid_network_attachment **out, struct crid_err *err);

/* DEL through the list in reverse, with the cached result; the namespace
 * is passed only while it still exists. On success the record goes and
 * the attachment is marked detached; detaching again is success. Every
 * plugin is called even when one fails; the first failure is reported. */
int crid_network_detach(struct crid_network *net, struct crid_network_attachment *a, struct crid_err *err);

/* CHECK through the list (CNI 0.4.0 and later, unless the list disables
 * it). Success when there is nothing to check. */
int crid_network_check(struct crid_network *net, struct crid_network_attachment *a, struct crid_err *err);

bool crid_network_attachment_detached(const struct crid_network_attachment *a);

/* The pod's addresses from the ADD result, the primary (IPv4 when there is
 * one) first; loopback addresses left out. Valid while a lives. */
size_t crid_network_attachment_ips(const struct crid_network_attachment *a, const char *const **ips);

/* The network's name and ADD result, for PodSandboxStatus' verbose info
 * (new reference). */
json_t *crid_network_attachment_describe(const struct crid_network_attachment *a);

void crid_network_attachment_free(struct crid_network_attachment *a);

/* Start-up: the attachment recorded for pod_id, taken out of those read at
 * start (NULL when none). */
struct crid_network_attachment *crid_network_claim(struct crid_network *net, const char *pod_id);

/* Start-up, after every pod claimed its attachment: releases the others
 * (a RunPodSandbox cut short by a crash). Plugins a crashed crid left
 * running for any recorded attachment were ended by crid_network_new.
 * Failures are logged and the records kept for the next start. */
void crid_network_release_unclaimed(struct crid_network *net);

#endif
