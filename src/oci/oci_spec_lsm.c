/* AppArmor and SELinux for a container (process.apparmorProfile,
 * process.selinuxLabel, linux.mountLabel). Applied where the host runs the
 * LSM; where it does not, nothing that asks for enforcement is dropped in
 * silence: a Localhost AppArmor profile or SELinux options are refused with
 * FAILED_PRECONDITION. RuntimeDefault and Unconfined ask for no particular
 * profile and are accepted everywhere, as the peers do. */
#include <string.h>

#include "oci/oci_spec.h"

#define SC "linux.security_context"

/* AppArmor profile names as apparmor_parser takes them: no spaces, no
 * control characters, not too long. */
static bool profile_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	}
	return true;
}

enum aa_choice { AA_NONE, AA_DEFAULT, AA_UNCONFINED, AA_LOCALHOST };

static int apparmor_choice(const Runtime__V1__SecurityProfile *sp, const char *deprecated, const char *scope,
			   enum aa_choice *c, const char **name, struct crid_err *err)
{
	*c = AA_NONE;
	*name = NULL;
	if (sp) {
		switch (sp->profile_type) {
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
			*c = AA_DEFAULT;
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
			*c = AA_UNCONFINED;
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
			*c = AA_LOCALHOST;
			*name = sp->localhost_ref ? sp->localhost_ref : "";
			/* The kubelet once sent "localhost/<name>" here too. */
			if (strncmp(*name, "localhost/", 10) == 0)
				*name += 10;
			if (!profile_name_ok(*name))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
						    "%s.apparmor: localhost profile \"%.64s\" is not a profile name", scope,
						    *name);
			return 0;
		default:
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.apparmor.profile_type: %d is not a profile type",
					    scope, (int)sp->profile_type);
		}
	}
	if (!deprecated || !*deprecated)
		return 0;
	if (strcmp(deprecated, "runtime/default") == 0) {
		*c = AA_DEFAULT;
	} else if (strcmp(deprecated, "unconfined") == 0) {
		*c = AA_UNCONFINED;
	} else if (strncmp(deprecated, "localhost/", 10) == 0 && profile_name_ok(deprecated + 10)) {
		*c = AA_LOCALHOST;
		*name = deprecated + 10;
	} else {
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "%s.apparmor_profile: \"%.64s\" is not runtime/default, unconfined or localhost/<name>",
				    scope, deprecated);
	}
	return 0;
}

/* The profile name to run under, NULL for none. */
static int apparmor_profile(const Runtime__V1__SecurityProfile *sp, const char *deprecated, bool privileged,
			    const struct crid_spec_host *host, const char *scope, const char **out, struct crid_err *err)
{
	enum aa_choice c;
	const char *name;
	int r;

	*out = NULL;
	r = apparmor_choice(sp, deprecated, scope, &c, &name, err);
	if (r < 0)
		return r;
	if (!host->apparmor) {
		if (c == AA_LOCALHOST)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "%s.apparmor: localhost profile %s cannot be enforced: AppArmor is not "
					    "enabled on this host",
					    scope, name);
		return 0; /* nothing to confine with, and nothing in particular asked */
	}
	if (c == AA_LOCALHOST) {
		*out = name;
		return 0;
	}
	/* The default applies when nothing else was asked, as with the
	 * peers; a privileged container runs unconfined unless it names a
	 * profile. */
	if (c == AA_UNCONFINED || privileged)
		return 0;
	if (!host->apparmor_default) {
		if (c == AA_DEFAULT)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "%s.apparmor: RuntimeDefault: crid's profile %s is not loaded (load "
					    "packaging/apparmor/%s with apparmor_parser -r)",
					    scope, CRID_APPARMOR_DEFAULT_PROFILE, CRID_APPARMOR_DEFAULT_PROFILE);
		return 0;
	}
	*out = CRID_APPARMOR_DEFAULT_PROFILE;
	return 0;
}

static bool selinux_given(const Runtime__V1__SELinuxOption *o)
{
	return o && ((o->user && *o->user) || (o->role && *o->role) || (o->type && *o->type) ||
		     (o->level && *o->level));
}

static bool label_part_ok(const char *s)
{
	for (; s && *s; s++) {
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	}
	return true;
}

/* "user:role:type:level", the parts not given from the usual container
 * context. */
static int selinux_label(const Runtime__V1__SELinuxOption *o, const char *scope, bool process, char *out,
			 size_t size, struct crid_err *err)
{
	const char *user = o->user && *o->user ? o->user : "system_u";
	const char *role = process ? (o->role && *o->role ? o->role : "system_r") : "object_r";
	const char *type = process ? (o->type && *o->type ? o->type : "container_t") : "container_file_t";
	const char *level = o->level && *o->level ? o->level : "s0";

	if (!label_part_ok(o->user) || !label_part_ok(o->role) || !label_part_ok(o->type) || !label_part_ok(o->level) ||
	    (o->user && strchr(o->user, ':')) || (o->role && strchr(o->role, ':')) || (o->type && strchr(o->type, ':')))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.selinux_options: not a valid SELinux context",
				    scope);
	if ((size_t)snprintf(out, size, "%s:%s:%s:%s", user, role, type, level) >= size)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.selinux_options: the context is too long", scope);
	return 0;
}

static int selinux_check(const Runtime__V1__SELinuxOption *o, const struct crid_spec_host *host, const char *scope,
			 struct crid_err *err)
{
	char label[1024];

	if (!selinux_given(o))
		return 0;
	if (!host->selinux)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
				    "%s.selinux_options: cannot be applied: SELinux is not enabled on this host", scope);
	return selinux_label(o, scope, true, label, sizeof(label), err);
}

int crid_spec_lsm(const Runtime__V1__LinuxContainerSecurityContext *sc, const struct crid_spec_host *host,
		  json_t *process, json_t *linux_obj, struct crid_err *err)
{
/* The initializer names the deprecated fields too. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	static const Runtime__V1__LinuxContainerSecurityContext none = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
#pragma GCC diagnostic pop
	const char *profile, *deprecated = NULL;
	char label[1024];
	int r, bad = 0;

	if (!sc)
		sc = &none;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	deprecated = sc->apparmor_profile;
#pragma GCC diagnostic pop
	r = apparmor_profile(sc->apparmor, deprecated, sc->privileged, host, SC, &profile, err);
	if (r < 0)
		return r;
	if (profile && process)
		bad |= json_object_set_new(process, "apparmorProfile", json_string(profile));
	r = selinux_check(sc->selinux_options, host, SC, err);
	if (r < 0)
		return r;
	if (selinux_given(sc->selinux_options) && process && linux_obj) {
		selinux_label(sc->selinux_options, SC, true, label, sizeof(label), err);
		bad |= json_object_set_new(process, "selinuxLabel", json_string(label));
		selinux_label(sc->selinux_options, SC, false, label, sizeof(label), err);
		bad |= json_object_set_new(linux_obj, "mountLabel", json_string(label));
	}
	return bad ? crid_err_nomem(err, "security labels") : 0;
}

int crid_spec_pod_lsm_check(const Runtime__V1__LinuxSandboxSecurityContext *psc, const struct crid_spec_host *host,
			    struct crid_err *err)
{
	const char *profile;
	int r;

	if (!psc)
		return 0;
	r = apparmor_profile(psc->apparmor, NULL, psc->privileged, host, "linux.security_context", &profile, err);
	if (r < 0)
		return r;
	return selinux_check(psc->selinux_options, host, "linux.security_context", err);
}
