/* Unit tests of src/runtime/oci_spec_caps.c and oci_spec_user.c: the
 * capability sets (Docker's defaults, add/drop, ALL, privileged, never more
 * than crid holds) and user specs resolved against passwd and group. */
#include "oci_spec_fixture.h"

/* ---- capabilities ---- */

static const char *const docker_caps[] = {
	"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",	   "CAP_FOWNER",     "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID",	   "CAP_SETUID",	   "CAP_SETFCAP",    "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",	   "CAP_AUDIT_WRITE",
};

#define ALL_HELD ((UINT64_C(1) << 41) - 1)

static json_t *caps_ok(const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t held)
{
	struct crid_err e = { 0 };
	json_t *j = NULL;
	int r = crid_spec_capabilities(sc, held, &j, &e);

	ck_assert_msg(r == 0, "crid_spec_capabilities: %s", e.msg);
	return j;
}

static void caps_fail(const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t held, int status,
		      const char *needle)
{
	struct crid_err e = { 0 };
	json_t *j = NULL;

	ck_assert_int_lt(crid_spec_capabilities(sc, held, &j, &e), 0);
	ck_assert_ptr_null(j);
	ck_assert_msg(e.status == status, "status %s (%s)", crid_status_name(e.status), e.msg);
	ck_assert_msg(strstr(e.msg, needle), "message \"%s\" does not name \"%s\"", e.msg, needle);
}

/* The same list in bounding, effective and permitted. */
static json_t *caps_set(json_t *c)
{
	json_t *b = json_object_get(c, "bounding");

	ck_assert(json_equal(b, json_object_get(c, "effective")));
	ck_assert(json_equal(b, json_object_get(c, "permitted")));
	return b;
}

START_TEST(test_caps_default)
{
	json_t *j = caps_ok(NULL, ALL_HELD), *set = caps_set(j);

	ck_assert_uint_eq(json_array_size(set), CRID_ARRAY_SIZE(docker_caps));
	for (size_t i = 0; i < CRID_ARRAY_SIZE(docker_caps); i++)
		ck_assert_msg(arr_has(set, docker_caps[i]), "%s missing", docker_caps[i]);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "inheritable")), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "ambient")), 0);
	json_decref(j);

	/* Never more than crid holds: without CAP_NET_RAW (13). */
	j = caps_ok(NULL, ALL_HELD & ~(UINT64_C(1) << 13));
	ck_assert(!arr_has(caps_set(j), "CAP_NET_RAW"));
	ck_assert_uint_eq(json_array_size(caps_set(j)), CRID_ARRAY_SIZE(docker_caps) - 1);
	json_decref(j);
}
END_TEST

START_TEST(test_caps_add_drop)
{
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__Capability c;
	char *add[] = { "NET_ADMIN", "cap_sys_time" }, *drop[] = { "CHOWN", "CAP_KILL" };
	json_t *j, *set;

	runtime__v1__linux_container_security_context__init(&sc);
	runtime__v1__capability__init(&c);
	sc.capabilities = &c;
	c.add_capabilities = add;
	c.n_add_capabilities = 2;
	c.drop_capabilities = drop;
	c.n_drop_capabilities = 2;
	j = caps_ok(&sc, ALL_HELD);
	set = caps_set(j);
	ck_assert(arr_has(set, "CAP_NET_ADMIN"));
	ck_assert(arr_has(set, "CAP_SYS_TIME"));
	ck_assert(!arr_has(set, "CAP_CHOWN"));
	ck_assert(!arr_has(set, "CAP_KILL"));
	ck_assert(arr_has(set, "CAP_SETUID"));
	ck_assert_uint_eq(json_array_size(set), CRID_ARRAY_SIZE(docker_caps));
	json_decref(j);

	/* Dropping wins over adding the same one. */
	drop[0] = "net_admin";
	j = caps_ok(&sc, ALL_HELD);
	ck_assert(!arr_has(caps_set(j), "CAP_NET_ADMIN"));
	json_decref(j);
}
END_TEST

START_TEST(test_caps_all)
{
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__Capability c;
	char *all[] = { "ALL" }, *chown_[] = { "CHOWN" }, *nbs[] = { "NET_BIND_SERVICE" };
	uint64_t held = ALL_HELD & ~(UINT64_C(1) << 24); /* no CAP_SYS_RESOURCE, like this host */
	json_t *j, *set;

	runtime__v1__linux_container_security_context__init(&sc);
	runtime__v1__capability__init(&c);
	sc.capabilities = &c;

	/* add ALL: everything crid holds. */
	c.add_capabilities = all;
	c.n_add_capabilities = 1;
	j = caps_ok(&sc, held);
	set = caps_set(j);
	ck_assert_uint_eq(json_array_size(set), 40);
	ck_assert(arr_has(set, "CAP_SYS_ADMIN"));
	ck_assert(arr_has(set, "CAP_CHECKPOINT_RESTORE"));
	ck_assert(!arr_has(set, "CAP_SYS_RESOURCE"));
	json_decref(j);

	/* add ALL, drop CHOWN. */
	c.drop_capabilities = chown_;
	c.n_drop_capabilities = 1;
	j = caps_ok(&sc, held);
	ck_assert_uint_eq(json_array_size(caps_set(j)), 39);
	ck_assert(!arr_has(caps_set(j), "CAP_CHOWN"));
	json_decref(j);

	/* drop ALL, add NET_BIND_SERVICE. */
	c.add_capabilities = nbs;
	c.drop_capabilities = all;
	j = caps_ok(&sc, held);
	set = caps_set(j);
	ck_assert_uint_eq(json_array_size(set), 1);
	ck_assert(arr_has(set, "CAP_NET_BIND_SERVICE"));
	json_decref(j);

	/* drop ALL ("all", any case). */
	c.n_add_capabilities = 0;
	all[0] = "all";
	j = caps_ok(&sc, held);
	ck_assert_uint_eq(json_array_size(caps_set(j)), 0);
	json_decref(j);
}
END_TEST

START_TEST(test_caps_privileged_and_ambient)
{
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__Capability c;
	char *drop[] = { "ALL" }, *amb[] = { "NET_BIND_SERVICE" };
	json_t *j;

	runtime__v1__linux_container_security_context__init(&sc);
	runtime__v1__capability__init(&c);
	sc.privileged = 1;
	sc.capabilities = &c;
	c.drop_capabilities = drop; /* privileged wins */
	c.n_drop_capabilities = 1;
	j = caps_ok(&sc, ALL_HELD);
	ck_assert_uint_eq(json_array_size(caps_set(j)), 41);
	for (int i = 0; i <= 40; i++)
		ck_assert(arr_has(caps_set(j), crid_spec_capability_name(i)));
	ck_assert_ptr_null(crid_spec_capability_name(41));
	ck_assert_ptr_null(crid_spec_capability_name(-1));
	json_decref(j);
	j = caps_ok(&sc, ALL_HELD & ~(UINT64_C(1) << 24));
	ck_assert_uint_eq(json_array_size(caps_set(j)), 40);
	ck_assert(!arr_has(caps_set(j), "CAP_SYS_RESOURCE"));
	json_decref(j);

	/* Ambient: also inheritable and in the three sets. */
	sc.privileged = 0;
	c.add_ambient_capabilities = amb;
	c.n_add_ambient_capabilities = 1;
	j = caps_ok(&sc, ALL_HELD);
	ck_assert(arr_has(caps_set(j), "CAP_NET_BIND_SERVICE"));
	ck_assert_uint_eq(json_array_size(caps_set(j)), 1);
	ck_assert(arr_has(json_object_get(j, "ambient"), "CAP_NET_BIND_SERVICE"));
	ck_assert(arr_has(json_object_get(j, "inheritable"), "CAP_NET_BIND_SERVICE"));
	json_decref(j);
}
END_TEST

START_TEST(test_caps_errors)
{
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__Capability c;
	char *bad[] = { "CHOWN", "CAP_FLY" }, *res[] = { "SYS_RESOURCE" };
	struct fx f;

	runtime__v1__linux_container_security_context__init(&sc);
	runtime__v1__capability__init(&c);
	sc.capabilities = &c;
	c.add_capabilities = bad;
	c.n_add_capabilities = 2;
	caps_fail(&sc, ALL_HELD, CRID_INVALID_ARGUMENT, "linux.security_context.capabilities.add_capabilities[1]");
	c.n_add_capabilities = 0;
	c.drop_capabilities = bad;
	c.n_drop_capabilities = 2;
	caps_fail(&sc, ALL_HELD, CRID_INVALID_ARGUMENT, "capabilities.drop_capabilities[1]");
	c.n_drop_capabilities = 0;
	c.add_ambient_capabilities = bad;
	c.n_add_ambient_capabilities = 2;
	caps_fail(&sc, ALL_HELD, CRID_INVALID_ARGUMENT, "capabilities.add_ambient_capabilities[1]");
	c.n_add_ambient_capabilities = 0;
	/* One crid does not hold. */
	c.add_capabilities = res;
	c.n_add_capabilities = 1;
	caps_fail(&sc, ALL_HELD & ~(UINT64_C(1) << 24), CRID_FAILED_PRECONDITION, "CAP_SYS_RESOURCE");

	/* Through crid_spec_build. */
	fx_init(&f);
	f.sc.capabilities = &f.caps;
	f.caps.add_capabilities = bad;
	f.caps.n_add_capabilities = 2;
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.security_context.capabilities.add_capabilities[1]");
}
END_TEST

START_TEST(test_caps_in_spec)
{
	uint64_t held = crid_spec_held_capabilities();
	struct fx f;
	json_t *j, *set;

	fx_init(&f);
	f.host.held_caps = held;
	j = build_ok(&f);
	set = jget(j, "process.capabilities.bounding");
	for (size_t i = 0; i < CRID_ARRAY_SIZE(docker_caps); i++) {
		int n = -1;

		for (int c = 0; c <= 40; c++) {
			if (strcmp(crid_spec_capability_name(c), docker_caps[i]) == 0)
				n = c;
		}
		ck_assert_int_ge(n, 0);
		ck_assert(arr_has(set, docker_caps[i]) == !!(held & (UINT64_C(1) << n)));
	}
	ck_assert(json_is_array(jget(j, "process.capabilities.inheritable")));
	ck_assert(json_is_array(jget(j, "process.capabilities.ambient")));
	json_decref(j);
}
END_TEST

/* ---- user resolution ---- */

static const char passwd[] = "root:x:0:0:root:/root:/bin/bash\n"
			     "# a comment\n"
			     "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
			     "broken line\n"
			     "app:x:1000:1000::/home/app:/bin/sh\n"
			     "bad:x:notanumber:1::/:/bin/sh\n"
			     "other:x:1001:1001::/:/bin/sh"; /* no final newline */

static const char group[] = "root:x:0:\n"
			    "wheel:x:10:root,app\n"
			    "staff:x:50:app\n"
			    "users:x:100:\n"
			    "#comment:x:7:app\n"
			    "docker:x:999:other,app\n"
			    "dup:x:50:app\n"
			    "appish:x:77:apple,ap,app2\n";

static const struct {
	const char *user;
	bool with_passwd, with_group;
	uint32_t uid, gid;
	uint32_t gids[4];
	size_t n_gids;
} user_cases[] = {
	{ "root", true, true, 0, 0, { 10 }, 1 },
	{ "", true, true, 0, 0, { 10 }, 1 },
	{ NULL, true, true, 0, 0, { 10 }, 1 },
	{ "app", true, true, 1000, 1000, { 10, 50, 999 }, 3 },
	{ "1000", true, true, 1000, 1000, { 10, 50, 999 }, 3 },
	/* An explicit group does not drop the user's groups (containerd's
	 * rule for CRI, KEP-3619), unlike Docker's. */
	{ "1000:50", true, true, 1000, 50, { 10, 50, 999 }, 3 },
	{ "app:wheel", true, true, 1000, 10, { 10, 50, 999 }, 3 },
	{ "app:1234", true, true, 1000, 1234, { 10, 50, 999 }, 3 },
	{ "0:wheel", true, true, 0, 10, { 10 }, 1 },
	{ "other", true, true, 1001, 1001, { 999 }, 1 },
	{ "2000", true, true, 2000, 0, { 0 }, 0 },
	{ "2000:3000", true, true, 2000, 3000, { 0 }, 0 },
	{ "1000", false, false, 1000, 0, { 0 }, 0 },
	{ "app", true, false, 1000, 1000, { 0 }, 0 },
	{ "", false, false, 0, 0, { 0 }, 0 },
	{ "2147483647", false, false, 2147483647u, 0, { 0 }, 0 },
};

START_TEST(test_resolve_user)
{
	struct crid_user_ids u = { 0 };
	struct crid_err e = { 0 };
	int r;

	r = crid_spec_resolve_user(user_cases[_i].user, user_cases[_i].with_passwd ? passwd : NULL,
				   user_cases[_i].with_group ? group : NULL, &u, &e);
	ck_assert_msg(r == 0, "%s: %s", user_cases[_i].user ? user_cases[_i].user : "(null)", e.msg);
	ck_assert_uint_eq(u.uid, user_cases[_i].uid);
	ck_assert_uint_eq(u.gid, user_cases[_i].gid);
	ck_assert_uint_eq(u.n_additional_gids, user_cases[_i].n_gids);
	for (size_t k = 0; k < u.n_additional_gids; k++)
		ck_assert_uint_eq(u.additional_gids[k], user_cases[_i].gids[k]);
	crid_user_ids_free(&u);
	ck_assert_ptr_null(u.additional_gids);
	ck_assert_uint_eq(u.n_additional_gids, 0);
	crid_user_ids_free(&u);
	crid_user_ids_free(NULL);
}
END_TEST

static const struct {
	const char *user;
	bool with_passwd, with_group;
	int status;
	const char *needle;
} bad_users[] = {
	{ "nobody", true, true, CRID_NOT_FOUND, "nobody" },
	{ "app", false, true, CRID_NOT_FOUND, "app" },
	{ "bad", true, true, CRID_NOT_FOUND, "bad" },
	{ "app:nogroup", true, true, CRID_NOT_FOUND, "nogroup" },
	{ "app:wheel", true, false, CRID_NOT_FOUND, "wheel" },
	{ "1000:comment", true, true, CRID_NOT_FOUND, "comment" },
	{ "99999999999", true, true, CRID_INVALID_ARGUMENT, "99999999999" },
	{ "2147483648", true, true, CRID_INVALID_ARGUMENT, "2147483648" },
	{ "1000:99999999999", true, true, CRID_INVALID_ARGUMENT, "99999999999" },
	{ "app:", true, true, CRID_INVALID_ARGUMENT, "group" },
	{ "-1", true, true, CRID_NOT_FOUND, "-1" },
};

START_TEST(test_resolve_user_errors)
{
	struct crid_user_ids u = { 0 };
	struct crid_err e = { 0 };

	ck_assert_int_lt(crid_spec_resolve_user(bad_users[_i].user, bad_users[_i].with_passwd ? passwd : NULL,
						bad_users[_i].with_group ? group : NULL, &u, &e),
			 0);
	ck_assert_msg(e.status == bad_users[_i].status, "%s: %s (%s)", bad_users[_i].user,
		      crid_status_name(e.status), e.msg);
	ck_assert_msg(strstr(e.msg, bad_users[_i].needle), "\"%s\" does not name %s", e.msg, bad_users[_i].needle);
	ck_assert_ptr_null(u.additional_gids);
}
END_TEST

START_TEST(test_resolve_user_in_spec)
{
	struct crid_user_ids u = { 0 };
	struct crid_err e = { 0 };
	struct fx f;
	json_t *j;

	ck_assert_int_eq(crid_spec_resolve_user("app", passwd, group, &u, &e), 0);
	fx_init(&f);
	f.in.user = &u;
	j = build_ok(&f);
	assert_gids(j, (const json_int_t[]){ 1000, 10, 50, 999 }, 4);
	json_decref(j);
	crid_user_ids_free(&u);
}
END_TEST

static Suite *oci_spec_caps_suite(void)
{
	Suite *s = suite_create("oci_spec_caps");
	TCase *tc = tcase_create("capabilities");
	TCase *tu = tcase_create("user");

	tcase_add_test(tc, test_caps_default);
	tcase_add_test(tc, test_caps_add_drop);
	tcase_add_test(tc, test_caps_all);
	tcase_add_test(tc, test_caps_privileged_and_ambient);
	tcase_add_test(tc, test_caps_errors);
	tcase_add_test(tc, test_caps_in_spec);
	suite_add_tcase(s, tc);

	tcase_add_loop_test(tu, test_resolve_user, 0, (int)CRID_ARRAY_SIZE(user_cases));
	tcase_add_loop_test(tu, test_resolve_user_errors, 0, (int)CRID_ARRAY_SIZE(bad_users));
	tcase_add_test(tu, test_resolve_user_in_spec);
	suite_add_tcase(s, tu);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(oci_spec_caps_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
