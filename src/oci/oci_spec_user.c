/* User specs ("1000", "1000:50", "app", "app:wheel") resolved against the
 * contents of an image's /etc/passwd and /etc/group, following runc's
 * GetExecUser: a numeric part is taken as it is, a name must be found.
 * Supplementary groups come from /etc/group when the user has a passwd
 * entry, whether or not a group was given (containerd's rule for CRI, which
 * the kubelet's supplemental groups policy Merge describes). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

/* runc refuses IDs above INT32_MAX. */
#define ID_MAX 2147483647u

struct span {
	const char *p;
	size_t n;
};

static bool span_eq(struct span s, const char *str, size_t len)
{
	return s.n == len && memcmp(s.p, str, len) == 0;
}

/* Decimal digits only, no sign, at most ID_MAX. -1 when not a number,
 * -2 when a number out of range. */
static int parse_id(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > ID_MAX)
			return -2;
	}
	*out = (uint32_t)v;
	return 0;
}

/* The next line of text (without its '\n'); false at the end. */
static bool next_line(const char **cursor, struct span *line)
{
	const char *p = *cursor, *nl;

	if (!p || !*p)
		return false;
	nl = strchr(p, '\n');
	line->p = p;
	line->n = nl ? (size_t)(nl - p) : strlen(p);
	*cursor = nl ? nl + 1 : p + line->n;
	return true;
}

/* Splits a line at ':' into at most max fields; returns how many. */
static size_t split_fields(struct span line, struct span *f, size_t max)
{
	size_t n = 0;
	const char *p = line.p, *end = line.p + line.n;

	while (n < max) {
		const char *c = memchr(p, ':', (size_t)(end - p));

		f[n].p = p;
		f[n].n = c ? (size_t)(c - p) : (size_t)(end - p);
		n++;
		if (!c)
			break;
		p = c + 1;
	}
	return n;
}

static bool skip_line(struct span line)
{
	return line.n == 0 || line.p[0] == '#';
}

struct pw_match {
	bool found;
	struct span name;
	uint32_t uid, gid;
};

/* Finds the passwd entry named name (name_n bytes) or, when by_uid, the
 * first one with that uid. Malformed lines are skipped. */
static void passwd_find(const char *passwd, const char *name, size_t name_n, bool by_uid, uint32_t uid,
			struct pw_match *m)
{
	const char *cur = passwd;
	struct span line;

	m->found = false;
	while (next_line(&cur, &line)) {
		struct span f[7];
		uint32_t u, g;

		if (skip_line(line) || split_fields(line, f, 7) < 4)
			continue;
		if (parse_id(f[2].p, f[2].n, &u) < 0 || parse_id(f[3].p, f[3].n, &g) < 0)
			continue;
		if (by_uid ? u != uid : !span_eq(f[0], name, name_n))
			continue;
		m->found = true;
		m->name = f[0];
		m->uid = u;
		m->gid = g;
		return;
	}
}

/* Finds the gid of the group named name; false when there is none. */
static bool group_find(const char *group, const char *name, size_t name_n, uint32_t *gid)
{
	const char *cur = group;
	struct span line;

	while (next_line(&cur, &line)) {
		struct span f[4];

		if (skip_line(line) || split_fields(line, f, 4) < 3)
			continue;
		if (span_eq(f[0], name, name_n) && parse_id(f[2].p, f[2].n, gid) == 0)
			return true;
	}
	return false;
}

static bool member_of(struct span members, struct span user)
{
	const char *p = members.p, *end = members.p + members.n;

	while (p <= end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		struct span m = { p, c ? (size_t)(c - p) : (size_t)(end - p) };

		if (m.n == user.n && m.n > 0 && memcmp(m.p, user.p, m.n) == 0)
			return true;
		if (!c)
			break;
		p = c + 1;
	}
	return false;
}

/* The gids of the groups that list user as a member, without duplicates,
 * in file order. */
static int group_members(const char *group, struct span user, struct crid_user_ids *out, struct crid_err *err)
{
	const char *cur = group;
	struct span line;

	while (next_line(&cur, &line)) {
		struct span f[4];
		uint32_t gid, *grown;
		bool dup = false;

		if (skip_line(line) || split_fields(line, f, 4) < 4)
			continue;
		if (parse_id(f[2].p, f[2].n, &gid) < 0 || !member_of(f[3], user))
			continue;
		for (size_t i = 0; i < out->n_additional_gids; i++)
			dup = dup || out->additional_gids[i] == gid;
		if (dup)
			continue;
		grown = realloc(out->additional_gids, (out->n_additional_gids + 1) * sizeof(*grown));
		if (!grown)
			return crid_err_nomem(err, "supplementary groups");
		out->additional_gids = grown;
		out->additional_gids[out->n_additional_gids++] = gid;
	}
	return 0;
}

int crid_spec_resolve_user(const char *user, const char *passwd, const char *group, struct crid_user_ids *out,
			   struct crid_err *err)
{
	const char *colon, *uname = user ? user : "", *gname = NULL;
	size_t uname_n, gname_n = 0;
	struct pw_match pw = { 0 };
	uint32_t uid = 0, gid = 0;
	int r;

	memset(out, 0, sizeof(*out));
	colon = strchr(uname, ':');
	uname_n = colon ? (size_t)(colon - uname) : strlen(uname);
	if (colon) {
		gname = colon + 1;
		gname_n = strlen(gname);
	}

	/* The user: empty is root, as for runc. */
	if (uname_n == 0) {
		uname = "0";
		uname_n = 1;
	}
	r = parse_id(uname, uname_n, &uid);
	if (r == -2)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "uid %.*s is out of range (0 to %u)", (int)uname_n,
				    uname, ID_MAX);
	if (r == 0) {
		if (passwd)
			passwd_find(passwd, NULL, 0, true, uid, &pw);
		gid = pw.found ? pw.gid : 0;
	} else {
		if (passwd)
			passwd_find(passwd, uname, uname_n, false, 0, &pw);
		if (!pw.found)
			return crid_err_set(err, CRID_NOT_FOUND, 0, "no user %.*s in the image's /etc/passwd%s",
					    (int)uname_n, uname, passwd ? "" : " (the image has none)");
		uid = pw.uid;
		gid = pw.gid;
	}

	/* The group, when given explicitly. */
	if (gname) {
		if (gname_n == 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "user %s: the group after ':' is empty",
					    user);
		r = parse_id(gname, gname_n, &gid);
		if (r == -2)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "gid %s is out of range (0 to %u)", gname,
					    ID_MAX);
		if (r < 0 && !(group && group_find(group, gname, gname_n, &gid)))
			return crid_err_set(err, CRID_NOT_FOUND, 0, "no group %s in the image's /etc/group%s", gname,
					    group ? "" : " (the image has none)");
	}
	out->uid = uid;
	out->gid = gid;

	if (pw.found && group) {
		r = group_members(group, pw.name, out, err);
		if (r < 0) {
			crid_user_ids_free(out);
			return r;
		}
	}
	return 0;
}

void crid_user_ids_free(struct crid_user_ids *u)
{
	if (!u)
		return;
	free(u->additional_gids);
	u->additional_gids = NULL;
	u->n_additional_gids = 0;
}
