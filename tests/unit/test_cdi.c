/* CDI spec files, device names, the YAML reader and the merging and
 * application of container edits (src/cdi/): valid specs of every
 * version, refusals naming the field, conflicts naming both devices. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdi/cdi.h"
#include "common/cleanup.h"

static json_t *parse_ok(const char *text, bool yaml)
{
	struct crid_err err;
	json_t *spec = NULL;
	int r = crid_cdi_spec_parse(text, strlen(text), yaml, &spec, &err);

	ck_assert_msg(r == 0, "refused: %s\n%s", err.msg, text);
	ck_assert_ptr_nonnull(spec);
	return spec;
}

static void parse_bad(const char *text, bool yaml, const char *needle)
{
	struct crid_err err;
	json_t *spec = NULL;
	int r = crid_cdi_spec_parse(text, strlen(text), yaml, &spec, &err);

	ck_assert_msg(r < 0, "accepted:\n%s", text);
	ck_assert_ptr_null(spec);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_msg(strstr(err.msg, needle), "\"%s\" lacks \"%s\"", err.msg, needle);
}

static const char *const versions[] = { "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0" };

START_TEST(test_every_version)
{
	char text[256];
	json_t *spec;

	snprintf(text, sizeof(text),
		 "{\"cdiVersion\": \"%s\", \"kind\": \"vendor.com/gpu\", \"devices\": [{\"name\": \"gpu0\", "
		 "\"containerEdits\": {\"env\": [\"A=1\"]}}]}",
		 versions[_i]);
	spec = parse_ok(text, false);
	ck_assert_str_eq(json_string_value(json_object_get(spec, "kind")), "vendor.com/gpu");
	json_decref(spec);
}
END_TEST

/* Optional fields may be null, as Go's encoders write them. */
START_TEST(test_nulls)
{
	json_t *spec = parse_ok("{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"annotations\": null, "
				"\"containerEdits\": null, \"devices\": [{\"name\": \"a\", \"containerEdits\": "
				"{\"env\": [\"A=1\"], \"hooks\": null, \"deviceNodes\": [{\"path\": \"/dev/null\", "
				"\"hostPath\": null, \"type\": null, \"fileMode\": null, \"uid\": null}]}}]}",
				false);
	json_auto_t *merged = json_object();
	struct crid_err err;
	json_t *d = json_array_get(json_object_get(spec, "devices"), 0);

	ck_assert_int_eq(crid_cdi_edits_merge(merged, json_object_get(spec, "containerEdits"), "a.com/b=a", &err), 0);
	ck_assert_int_eq(crid_cdi_edits_merge(merged, json_object_get(d, "containerEdits"), "a.com/b=a", &err), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(merged, "deviceNodes")), 1);
	d = json_array_get(json_object_get(merged, "deviceNodes"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(d, "fileMode")), 0666); /* the host's */
	ck_assert_ptr_null(json_object_get(d, "uid"));
	json_decref(spec);
}
END_TEST

START_TEST(test_full_yaml)
{
	static const char text[] = "cdiVersion: 0.7.0\n"
				   "kind: nvidia.com/gpu\n"
				   "annotations: {a: b}\n"
				   "containerEdits:\n"
				   "  env: [NVIDIA=1]\n"
				   "  hooks:\n"
				   "    - hookName: createContainer\n"
				   "      path: /usr/bin/nvidia-ctk\n"
				   "      args: [nvidia-ctk, hook, update-ldcache]\n"
				   "      timeout: 5\n"
				   "devices:\n"
				   "  - name: \"0\"\n"
				   "    containerEdits:\n"
				   "      deviceNodes:\n"
				   "        - path: /dev/nvidia0\n"
				   "          hostPath: /dev/nvidia0\n"
				   "          type: c\n"
				   "          major: 195\n"
				   "          minor: 0\n"
				   "          fileMode: 0660\n"
				   "          permissions: rw\n"
				   "          uid: 0\n"
				   "          gid: 44\n"
				   "      mounts:\n"
				   "        - {hostPath: /usr/lib/x, containerPath: /usr/lib/x, type: bind, options: [ro]}\n"
				   "      additionalGids: [44]\n"
				   "      intelRdt: {closID: gpu, l3CacheSchema: 'L3:0=f', enableCMT: true}\n"
				   "  - name: all\n"
				   "    containerEdits: {env: ['ALL=yes']}\n";
	json_t *spec = parse_ok(text, true);
	json_t *d0 = json_array_get(json_object_get(spec, "devices"), 0);
	json_t *node = json_array_get(json_object_get(json_object_get(d0, "containerEdits"), "deviceNodes"), 0);

	/* "0" quoted is a string; 0660 plain is octal. */
	ck_assert_str_eq(json_string_value(json_object_get(d0, "name")), "0");
	ck_assert_int_eq(json_integer_value(json_object_get(node, "fileMode")), 0660);
	ck_assert_int_eq(json_integer_value(json_object_get(node, "major")), 195);
	json_decref(spec);
}
END_TEST

static const struct {
	const char *text;
	bool yaml;
	const char *needle;
} bad[] = {
	{ "{", false, "JSON line" },
	{ "[1]", false, "not an object" },
	{ "a: [", true, "YAML line" },
	{ "", true, "empty" },
	{ "{\"kind\": \"a.com/b\", \"devices\": []}", false, "cdiVersion: is missing" },
	{ "{\"cdiVersion\": \"1.0.0\", \"kind\": \"a.com/b\", \"devices\": []}", false, "0.3.0 to 0.8.0" },
	{ "{\"cdiVersion\": \"0.2.0\", \"kind\": \"a.com/b\", \"devices\": []}", false, "0.3.0 to 0.8.0" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": []}", false, "defines no device" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"nokind\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"env\": [\"A=1\"]}}]}",
	  false, "kind: \"nokind\"" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"-a\", \"containerEdits\": "
	  "{\"env\": [\"A=1\"]}}]}",
	  false, "devices[0].name" },
	{ "{\"cdiVersion\": \"0.4.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"0\", \"containerEdits\": "
	  "{\"env\": [\"A=1\"]}}]}",
	  false, "0.5.0" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{}}]}",
	  false, "no edits" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"env\": [\"A=1\"]}}, {\"name\": \"a\", \"containerEdits\": {\"env\": [\"A=1\"]}}]}",
	  false, "defined twice" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"env\": [\"NOEQUALS\"]}}]}",
	  false, "env[0]" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"deviceNodes\": [{\"path\": \"/dev/x\", \"permissions\": \"rwx\"}]}}]}",
	  false, "deviceNodes[0].permissions" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"deviceNodes\": [{\"path\": \"/dev/x\", \"type\": \"z\"}]}}]}",
	  false, "deviceNodes[0].type" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"deviceNodes\": [{\"path\": \"/dev/x\", \"uid\": -1}]}}]}",
	  false, "deviceNodes[0].uid" },
	{ "{\"cdiVersion\": \"0.4.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"deviceNodes\": [{\"path\": \"/dev/x\", \"hostPath\": \"/dev/y\"}]}}]}",
	  false, "hostPath: needs cdiVersion 0.5.0" },
	{ "{\"cdiVersion\": \"0.3.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"mounts\": [{\"hostPath\": \"/x\", \"containerPath\": \"/y\", \"type\": \"bind\"}]}}]}",
	  false, "type: needs cdiVersion 0.4.0" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"mounts\": [{\"hostPath\": \"/x\", \"containerPath\": \"y\"}]}}]}",
	  false, "mounts[0].containerPath" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"hooks\": [{\"hookName\": \"prestop\", \"path\": \"/x\"}]}}]}",
	  false, "hooks[0].hookName" },
	{ "{\"cdiVersion\": \"0.7.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"intelRdt\": {\"closID\": \"../x\"}}}]}",
	  false, "closID" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"devices\": [{\"name\": \"a\", \"containerEdits\": "
	  "{\"intelRdt\": {\"closID\": \"x\"}}}]}",
	  false, "intelRdt: needs cdiVersion 0.7.0" },
	{ "{\"cdiVersion\": \"0.6.0\", \"kind\": \"a.com/b\", \"extra\": 1, \"devices\": [{\"name\": \"a\", "
	  "\"containerEdits\": {\"env\": [\"A=1\"]}}]}",
	  false, "spec.extra: unknown field" },
	{ "{\"cdiVersion\": \"0.6.0\", \"cdiVersion\": \"0.6.0\"}", false, "JSON line" },
	/* A nesting bomb and an alias bomb stay bounded. */
	{ "a: &a [*a]", true, "nested deeper" },
	{ "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
	  true, "more than" },
	{ "x: 1\nx: 2\n", true, "twice" },
};

START_TEST(test_refused)
{
	parse_bad(bad[_i].text, bad[_i].yaml, bad[_i].needle);
}
END_TEST

START_TEST(test_qualified_names)
{
	static const char *const good[] = { "vendor.com/class=name", "a/b=0", "nvidia.com/gpu=GPU-1:0",
					    "x.y-z_w/c_l-s=n.a_m-e" };
	static const char *const badn[] = { "", "vendor.com/class", "class=name", "/c=n", "v/=n", "v/c=",
					    "v/c=-n", "1v/c=n", "v/c=n=", "v/c/d=n", "v/c=n-" };
	char buf[64];
	const char *kind, *name;
	struct crid_err err;

	for (size_t i = 0; i < CRID_ARRAY_SIZE(good); i++)
		ck_assert_msg(crid_cdi_parse_qualified(good[i], buf, &kind, &name, &err) == 0, "%s: %s", good[i],
			      err.msg);
	ck_assert_int_eq(crid_cdi_parse_qualified("vendor.com/class=name", buf, &kind, &name, &err), 0);
	ck_assert_str_eq(kind, "vendor.com/class");
	ck_assert_str_eq(name, "name");
	for (size_t i = 0; i < CRID_ARRAY_SIZE(badn); i++) {
		ck_assert_msg(crid_cdi_parse_qualified(badn[i], buf, &kind, &name, &err) < 0, "%s accepted", badn[i]);
		ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	}
}
END_TEST

static json_t *edits(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	ck_assert_msg(j != NULL, "%s", e.text);
	return j;
}

START_TEST(test_merge_and_apply)
{
	json_auto_t *merged = json_object();
	json_auto_t *a = edits("{\"env\": [\"A=1\", \"S=spec\"], \"deviceNodes\": [{\"path\": \"/dev/n\", \"hostPath\": "
			       "\"/dev/null\", \"permissions\": \"rw\"}], \"mounts\": [{\"hostPath\": \"/h\", "
			       "\"containerPath\": \"/c\"}], \"hooks\": [{\"hookName\": \"poststart\", \"path\": \"/x\"}], "
			       "\"additionalGids\": [0, 7]}");
	json_auto_t *b = edits("{\"env\": [\"S=spec\"], \"deviceNodes\": [{\"path\": \"/dev/p\", \"type\": \"p\"}], "
			       "\"hooks\": [{\"hookName\": \"poststart\", \"path\": \"/x\"}], \"additionalGids\": [7, "
			       "8], \"intelRdt\": {\"closID\": \"c\", \"memBwSchema\": null}}");
	json_auto_t *spec = edits("{\"process\": {\"env\": [\"A=0\", \"PATH=/bin\"], \"user\": {\"uid\": 0, \"gid\": 0, "
				  "\"additionalGids\": [0]}}, \"mounts\": [{\"destination\": \"/c\", \"source\": \"/old\"}], "
				  "\"linux\": {\"resources\": {\"devices\": []}}}");
	struct crid_err err;
	json_t *node, *v;

	ck_assert_int_eq(crid_cdi_edits_merge(merged, a, "v.com/c=a", &err), 0);
	ck_assert_int_eq(crid_cdi_edits_merge(merged, b, "v.com/c=b", &err), 0);
	/* What both bring alike is there once. */
	ck_assert_uint_eq(json_array_size(json_object_get(merged, "env")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(merged, "hooks"), "poststart")), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(merged, "additionalGids")), 2);
	node = json_array_get(json_object_get(merged, "deviceNodes"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(node, "type")), "c");
	ck_assert_int_eq(json_integer_value(json_object_get(node, "major")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(node, "minor")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(node, "fileMode")), 0666);

	json_object_del(merged, "owners");
	ck_assert_int_eq(crid_cdi_apply(merged, spec, &err), 0);
	v = json_object_get(json_object_get(spec, "process"), "env");
	ck_assert_uint_eq(json_array_size(v), 3);
	ck_assert_str_eq(json_string_value(json_array_get(v, 0)), "A=1");
	v = json_object_get(spec, "mounts");
	ck_assert_uint_eq(json_array_size(v), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "source")), "/h");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "type")), "bind");
	v = json_object_get(json_object_get(spec, "linux"), "devices");
	ck_assert_uint_eq(json_array_size(v), 2);
	ck_assert_ptr_null(json_object_get(json_array_get(v, 0), "permissions"));
	/* One cgroup rule: a FIFO has none. */
	v = json_object_get(json_object_get(json_object_get(spec, "linux"), "resources"), "devices");
	ck_assert_uint_eq(json_array_size(v), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "access")), "rw");
	v = json_object_get(json_object_get(json_object_get(spec, "process"), "user"), "additionalGids");
	ck_assert_uint_eq(json_array_size(v), 3);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(spec, "hooks"), "poststart"));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(spec, "linux"), "intelRdt"),
							   "closID")),
			 "c");
	ck_assert_uint_eq(json_object_size(json_object_get(json_object_get(spec, "linux"), "intelRdt")), 1);
	ck_assert_int_eq(crid_cdi_apply(NULL, spec, &err), 0);
}
END_TEST

static const struct {
	const char *a, *b, *needle;
} conflicts[] = {
	{ "{\"env\": [\"X=1\"]}", "{\"env\": [\"X=2\"]}", "environment variable X" },
	{ "{\"deviceNodes\": [{\"path\": \"/dev/x\", \"hostPath\": \"/dev/null\"}]}",
	  "{\"deviceNodes\": [{\"path\": \"/dev/x\", \"hostPath\": \"/dev/zero\"}]}", "the device node /dev/x" },
	{ "{\"mounts\": [{\"hostPath\": \"/a\", \"containerPath\": \"/m\"}]}",
	  "{\"mounts\": [{\"hostPath\": \"/b\", \"containerPath\": \"/m\"}]}", "the mount at /m" },
	{ "{\"intelRdt\": {\"closID\": \"a\"}}", "{\"intelRdt\": {\"closID\": \"b\"}}", "intelRdt" },
};

START_TEST(test_conflicts_name_both)
{
	json_auto_t *merged = json_object();
	json_auto_t *a = edits(conflicts[_i].a);
	json_auto_t *b = edits(conflicts[_i].b);
	struct crid_err err;

	ck_assert_int_eq(crid_cdi_edits_merge(merged, a, "v.com/c=one", &err), 0);
	ck_assert_int_lt(crid_cdi_edits_merge(merged, b, "v.com/c=two", &err), 0);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_msg(strstr(err.msg, "v.com/c=one") && strstr(err.msg, "v.com/c=two") &&
			      strstr(err.msg, conflicts[_i].needle),
		      "%s", err.msg);
}
END_TEST

START_TEST(test_missing_host_device)
{
	json_auto_t *merged = json_object();
	json_auto_t *a = edits("{\"deviceNodes\": [{\"path\": \"/dev/crid-no-such-device\"}]}");
	json_auto_t *f = edits("{\"deviceNodes\": [{\"path\": \"/dev/x\", \"hostPath\": \"/etc/hostname\"}]}");
	struct crid_err err;

	ck_assert_int_lt(crid_cdi_edits_merge(merged, a, "v.com/c=a", &err), 0);
	ck_assert_msg(strstr(err.msg, "v.com/c=a") && strstr(err.msg, "/dev/crid-no-such-device"), "%s", err.msg);
	ck_assert_int_lt(crid_cdi_edits_merge(merged, f, "v.com/c=a", &err), 0);
	ck_assert_msg(strstr(err.msg, "not a device"), "%s", err.msg);
}
END_TEST

START_TEST(test_requested)
{
	Runtime__V1__ContainerConfig c = RUNTIME__V1__CONTAINER_CONFIG__INIT;
	Runtime__V1__CDIDevice d[2] = { RUNTIME__V1__CDIDEVICE__INIT, RUNTIME__V1__CDIDEVICE__INIT };
	Runtime__V1__CDIDevice *dp[2] = { &d[0], &d[1] };
	Runtime__V1__ContainerConfig__AnnotationsEntry an[3] = {
		RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT,
		RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT,
		RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT,
	};
	Runtime__V1__ContainerConfig__AnnotationsEntry *ap[3] = { &an[0], &an[1], &an[2] };
	_cleanup_free_ const char **names = NULL;
	struct crid_err err;
	size_t n;

	d[0].name = (char *)"a.com/x=1";
	d[1].name = (char *)"a.com/x=2";
	an[0].key = (char *)"cdi.k8s.io/z";
	an[0].value = (char *)"a.com/x=2, a.com/x=4,,";
	an[1].key = (char *)"other";
	an[1].value = (char *)"a.com/x=9";
	an[2].key = (char *)"cdi.k8s.io/a";
	an[2].value = (char *)"a.com/x=3";
	c.n_cdi_devices = 2;
	c.cdi_devices = dp;
	c.n_annotations = 3;
	c.annotations = ap;
	ck_assert_int_eq(crid_cdi_requested(&c, &names, &n, &err), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(names[0], "a.com/x=1");
	ck_assert_str_eq(names[1], "a.com/x=2");
	ck_assert_str_eq(names[2], "a.com/x=3");
	ck_assert_str_eq(names[3], "a.com/x=4");
}
END_TEST

/* The sample spec of README.md (the YAML block after its
 * "# /etc/cdi/example.yaml" line) is valid as shown. */
START_TEST(test_readme_sample)
{
	static const char self[] = "tests/unit/test_cdi.c";
	const char *file = __FILE__;
	size_t prefix = strlen(file) - strlen(self);
	_cleanup_free_ char *text = calloc(1, 1 << 17);
	char path[4096];
	char *start, *end;
	json_t *spec;
	FILE *f;

	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(file + prefix, self);
	snprintf(path, sizeof(path), "%.*sREADME.md", (int)prefix, file);
	f = fopen(path, "re");
	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	ck_assert_uint_gt(fread(text, 1, (1 << 17) - 1, f), 0);
	fclose(f);
	start = strstr(text, "# /etc/cdi/example.yaml\n");
	ck_assert_ptr_nonnull(start);
	end = strstr(start, "```");
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	spec = parse_ok(start, true);
	ck_assert_str_eq(json_string_value(json_object_get(spec, "kind")), "example.com/accel");
	json_decref(spec);
}
END_TEST

static Suite *cdi_suite(void)
{
	Suite *s = suite_create("cdi");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_every_version, 0, (int)CRID_ARRAY_SIZE(versions));
	tcase_add_test(tc, test_full_yaml);
	tcase_add_test(tc, test_nulls);
	tcase_add_loop_test(tc, test_refused, 0, (int)CRID_ARRAY_SIZE(bad));
	tcase_add_test(tc, test_qualified_names);
	tcase_add_test(tc, test_merge_and_apply);
	tcase_add_loop_test(tc, test_conflicts_name_both, 0, (int)CRID_ARRAY_SIZE(conflicts));
	tcase_add_test(tc, test_missing_host_device);
	tcase_add_test(tc, test_requested);
	tcase_add_test(tc, test_readme_sample);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cdi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
