/* Container Device Interface (CDI): the device specifications vendors and
 * device plugins write into the spec directories, kept current by an
 * inotify watch, and the container edits of requested devices applied to
 * a container's config.json. Reads files and stats host devices; never
 * runs anything and never changes the host. */
#ifndef CRID_CDI_CDI_H
#define CRID_CDI_CDI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "runtime/v1/api.pb-c.h"

/* The annotation prefix of the older way to ask for devices: keys
 * "cdi.k8s.io/<anything>", values comma-separated device names. */
#define CRID_CDI_ANNOTATION_PREFIX "cdi.k8s.io/"

/* ---- spec files (cdi_spec.c, cdi_yaml.c): pure ---- */

/* Parses and validates one spec file's text (YAML when yaml, else JSON),
 * for versions 0.3.0 to 0.8.0. *spec is a new reference to the spec as
 * JSON, checked field by field: cdiVersion, kind ("vendor/class"),
 * devices (each with a name and container edits), containerEdits.
 * INVALID_ARGUMENT naming the field and the problem. */
int crid_cdi_spec_parse(const char *text, size_t len, bool yaml, json_t **spec, struct crid_err *err);

/* A YAML document as JSON: mappings with string keys, sequences, and
 * scalars typed as YAML 1.1 plain scalars are (null, booleans, decimal,
 * 0x hexadecimal and 0-prefixed octal integers, numbers); quoted
 * scalars are strings. New reference. */
int crid_cdi_yaml_to_json(const char *text, size_t len, json_t **out, struct crid_err *err);

/* "vendor.com/class=name": splits a fully-qualified device name, each
 * part checked; INVALID_ARGUMENT naming the name. kind and name point
 * into buf (size at least strlen(qualified) + 1). */
int crid_cdi_parse_qualified(const char *qualified, char *buf, const char **kind, const char **name,
			     struct crid_err *err);

/* ---- the registry (cdi_registry.c) ---- */

struct crid_cdi;

/* Loads the specs of dirs (later directories override earlier ones for
 * the same device) and starts watching them. n == 0: CDI is off, every
 * request for a device fails. */
int crid_cdi_new(struct crid_cdi **out, char *const *dirs, size_t n, struct crid_err *err);
void crid_cdi_free(struct crid_cdi *cdi);

/* Reads the directories again now (the watch does it on every change). */
void crid_cdi_refresh(struct crid_cdi *cdi);

/* For Status' verbose info: the directories, the devices known (name →
 * spec file) and the spec files refused with why. New reference, NULL when out of memory. */
json_t *crid_cdi_describe(struct crid_cdi *cdi);

/* The device names a container asks for: CDI_devices, then the values
 * of its cdi.k8s.io/ annotations in key order, each once. *names is one
 * allocation (free it); the strings point into config. */
int crid_cdi_requested(const Runtime__V1__ContainerConfig *config, const char ***names, size_t *n,
		       struct crid_err *err);

/* The merged container edits of the named devices (JSON, new reference
 * in *edits; NULL when n is 0), device nodes completed from the host.
 * INVALID_ARGUMENT for an unknown name (naming it and the directories
 * searched) and for two devices whose edits conflict (naming both). */
int crid_cdi_resolve(struct crid_cdi *cdi, const char *const *names, size_t n, json_t **edits,
		     struct crid_err *err);

/* ---- applying edits (cdi_edits.c) ---- */

/* Merges resolved edits into config.json: process.env, mounts,
 * linux.devices and their cgroup rules, hooks, process.user's
 * additionalGids, linux.intelRdt. A NULL edits changes nothing. */
int crid_cdi_apply(const json_t *edits, json_t *spec, struct crid_err *err);

/* Adds the container edits of one device or spec (checked JSON from
 * crid_cdi_spec_parse) to the merged edits, completing device nodes
 * from the host; owner names the device for conflict messages. Used by
 * crid_cdi_resolve, exported for tests. */
int crid_cdi_edits_merge(json_t *merged, const json_t *container_edits, const char *owner, struct crid_err *err);

#endif
