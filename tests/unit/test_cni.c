/* Unit tests of src/network's parts that need no network: configuration
 * lists and the choice of a directory's file, the CNI settings of the
 * configuration, bandwidth quantities, CNI_ARGS and runtimeConfig from a
 * pod, each plugin's configuration, results and their addresses, and
 * plugin calls against small shell-script plugins (environment, stdin,
 * errors, a missing binary, a plugin killed at its timeout). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "config/config.h"
#include "network/cni.h"

#define FMT(buf, ...) ck_assert_int_lt(snprintf(buf, sizeof(buf), __VA_ARGS__), (int)sizeof(buf))

static char parent_dir[PATH_MAX];
static char dir[PATH_MAX];

static void setup(void)
{
	FMT(dir, "%s/t-XXXXXX", parent_dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void teardown(void)
{
	rm_rf(dir);
}

static void write_file(const char *name, const char *content, mode_t mode)
{
	char path[PATH_MAX];
	FILE *f;

	FMT(path, "%s/%s", dir, name);
	f = fopen(path, "we");
	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	ck_assert_int_ge(fputs(content, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	ck_assert_msg(j != NULL, "bad JSON in the test: %s: %s", text, jerr.text);
	return j;
}

/* ---- configuration lists ---- */

START_TEST(test_conflist_valid)
{
	json_t *j = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"net-1\",\"disableCheck\":true,\"plugins\":["
			  "{\"type\":\"bridge\",\"bridge\":\"br0\"},{\"type\":\"portmap\",\"capabilities\":"
			  "{\"portMappings\":true}}]}");
	struct crid_cni_conflist *l;
	struct crid_err err;

	ck_assert_int_eq(crid_cni_conflist_new("/x/10.conflist", j, false, &l, &err), 0);
	json_decref(j); /* the list holds a copy of its own */
	ck_assert_str_eq(l->name, "net-1");
	ck_assert_str_eq(l->version, "1.0.0");
	ck_assert_str_eq(l->file, "/x/10.conflist");
	ck_assert(l->disable_check);
	ck_assert_uint_eq(l->n_plugins, 2);
	ck_assert_str_eq(crid_cni_plugin_type(l, 0), "bridge");
	ck_assert_str_eq(crid_cni_plugin_type(l, 1), "portmap");
	ck_assert_ptr_eq(crid_cni_conflist_ref(l), l);
	crid_cni_conflist_unref(l);
	crid_cni_conflist_unref(l);
}
END_TEST

START_TEST(test_conflist_single_conf)
{
	json_t *j = parse("{\"cniVersion\":\"0.3.1\",\"name\":\"one\",\"type\":\"bridge\",\"isGateway\":true}");
	json_t *l2 = parse("{\"cniVersion\":\"0.4.0\",\"name\":\"listed\",\"plugins\":[{\"type\":\"loopback\"}]}");
	struct crid_cni_conflist *l;
	struct crid_err err;

	ck_assert_int_eq(crid_cni_conflist_new("f.conf", j, true, &l, &err), 0);
	ck_assert_uint_eq(l->n_plugins, 1);
	ck_assert_str_eq(l->version, "0.3.1");
	ck_assert(json_equal(json_array_get(json_object_get(l->list, "plugins"), 0), j));
	ck_assert(!l->disable_check);
	crid_cni_conflist_unref(l);
	/* A .conf that holds a list is read as one. */
	ck_assert_int_eq(crid_cni_conflist_new("g.conf", l2, true, &l, &err), 0);
	ck_assert_str_eq(l->name, "listed");
	ck_assert_str_eq(crid_cni_plugin_type(l, 0), "loopback");
	crid_cni_conflist_unref(l);
	json_decref(j);
	json_decref(l2);
}
END_TEST

static const struct {
	const char *json;
	bool single;
	const char *msg;
} bad_lists[] = {
	{ "[1]", false, "not a JSON object" },
	{ "{\"name\":\"n\",\"plugins\":[{\"type\":\"x\"}]}", false, "cniVersion is missing" },
	{ "{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"x\"}]}", false,
	  "cniVersion \"0.2.0\" is not one crid speaks (1.0.0, 0.4.0, 0.3.1, 0.3.0)" },
	{ "{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"x\"}]}", false, "name is missing" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"a b\",\"plugins\":[{\"type\":\"x\"}]}", false,
	  "name \"a b\" is not a network name (letters, digits, '_', '.', '-')" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}", false, "plugins is not a list of plugins" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":{}}", false, "plugins is not a list of plugins" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"a\"},{\"bridge\":\"b\"}]}", false,
	  "plugins[1].type is missing" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[7]}", false, "plugins[0] is not an object" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../../bin/sh\"}]}", false,
	  "plugins[0].type \"../../bin/sh\" is not a plugin name" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"..\"}]}", false,
	  "plugins[0].type \"..\" is not a plugin name" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"p\",\"capabilities\":[]}]}", false,
	  "plugins[0].capabilities is not an object" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"disableCheck\":\"yes\",\"plugins\":[{\"type\":\"p\"}]}",
	  false, "disableCheck is not true or false" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", true, "type is missing" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"a/b\"}", true, "type \"a/b\" is not a plugin name" },
};

START_TEST(test_conflist_bad)
{
	json_t *j = parse(bad_lists[_i].json);
	struct crid_cni_conflist *l = (void *)1;
	struct crid_err err;

	ck_assert_int_lt(crid_cni_conflist_new("f", j, bad_lists[_i].single, &l, &err), 0);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_str_eq(err.msg, bad_lists[_i].msg);
	json_decref(j);
}
END_TEST

START_TEST(test_conflist_too_many_plugins)
{
	json_t *j = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}");
	struct crid_cni_conflist *l;
	struct crid_err err;

	for (int i = 0; i <= CRID_CNI_PLUGINS_MAX; i++)
		json_array_append_new(json_object_get(j, "plugins"), json_pack("{s:s}", "type", "p"));
	ck_assert_int_lt(crid_cni_conflist_new("f", j, false, &l, &err), 0);
	ck_assert_str_eq(err.msg, "plugins: more than 64");
	json_decref(j);
}
END_TEST

START_TEST(test_versions)
{
	ck_assert(crid_cni_version_supported("1.0.0"));
	ck_assert(crid_cni_version_supported("0.4.0"));
	ck_assert(crid_cni_version_supported("0.3.1"));
	ck_assert(crid_cni_version_supported("0.3.0"));
	ck_assert(!crid_cni_version_supported("0.2.0"));
	ck_assert(!crid_cni_version_supported("1.1.0"));
	ck_assert(!crid_cni_version_supported(NULL));
	ck_assert_int_lt(crid_cni_version_cmp("0.3.1", "0.4.0"), 0);
	ck_assert_int_eq(crid_cni_version_cmp("0.4.0", "0.4.0"), 0);
	ck_assert_int_gt(crid_cni_version_cmp("1.0.0", "0.4.0"), 0);
	ck_assert_int_lt(crid_cni_version_cmp("0.3.0", "0.3.1"), 0);
}
END_TEST

/* ---- the directory ---- */

static const char *const good = "{\"cniVersion\":\"1.0.0\",\"name\":\"%s\",\"plugins\":[{\"type\":\"loopback\"}]}";

static void write_net(const char *file, const char *name)
{
	char text[256];

	FMT(text, good, name);
	write_file(file, text, 0644);
}

static const char *load_dir_name(char *why, size_t size)
{
	static char name[64];
	struct crid_cni_conflist *l;

	crid_cni_conflist_load_dir(dir, &l, why, size);
	if (!l)
		return NULL;
	snprintf(name, sizeof(name), "%s", l->name);
	crid_cni_conflist_unref(l);
	return name;
}

START_TEST(test_dir_choice)
{
	char why[512], path[PATH_MAX + 32];
	const char *name;

	/* Nothing there, then only files that are no candidates. */
	ck_assert_ptr_null(load_dir_name(why, sizeof(why)));
	FMT(path, "no CNI network configuration in %s (a .conflist, .conf or .json file)", dir);
	ck_assert_str_eq(why, path);
	write_net(".hidden.conflist", "hidden");
	write_net("50-x.conflist.tmp", "tmp");
	write_net("README", "readme");
	ck_assert_ptr_null(load_dir_name(why, sizeof(why)));

	/* Invalid files name the first one's fault; a later valid one wins. */
	write_file("10-bad.conflist", "{ nope", 0644);
	ck_assert_ptr_null(load_dir_name(why, sizeof(why)));
	FMT(path, "no valid CNI network configuration in %s: %s/10-bad.conflist: not valid JSON", dir, dir);
	ck_assert_msg(strncmp(why, path, strlen(path)) == 0, "%s", why);
	write_net("20-b.json", "b");
	name = load_dir_name(why, sizeof(why));
	ck_assert_ptr_nonnull(name);
	ck_assert_str_eq(name, "b");
	/* Lexical order, not numeric: "100" before "20". */
	write_net("100-a.conf", "a");
	ck_assert_str_eq(load_dir_name(why, sizeof(why)), "a");
	/* A directory or a FIFO with a candidate's name is skipped, never read. */
	FMT(path, "%s/0-dir.conflist", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	FMT(path, "%s/01-fifo.conflist", dir);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	ck_assert_str_eq(load_dir_name(why, sizeof(why)), "a");
}
END_TEST

START_TEST(test_dir_missing)
{
	char why[512], want[PATH_MAX + 64], missing[PATH_MAX];
	struct crid_cni_conflist *l;

	FMT(missing, "%s/none", dir);
	crid_cni_conflist_load_dir(missing, &l, why, sizeof(why));
	ck_assert_ptr_null(l);
	FMT(want, "cannot read the CNI configuration directory %s: No such file or directory", missing);
	ck_assert_str_eq(why, want);
}
END_TEST

/* ---- the CNI settings of crid's configuration ---- */

static int load_config(struct crid_config *cfg, struct crid_err *err, const char *yaml, ...)
{
	char main_path[PATH_MAX], dropins[PATH_MAX];
	char *argv[16];
	int argc = 0;
	va_list ap;
	char *a;

	write_file("crid.yaml", yaml, 0644);
	FMT(main_path, "%s/crid.yaml", dir);
	FMT(dropins, "%s/crid.d", dir);
	argv[argc++] = "crid";
	argv[argc++] = "--config";
	argv[argc++] = main_path;
	argv[argc++] = "--config-dir";
	argv[argc++] = dropins;
	va_start(ap, yaml);
	while ((a = va_arg(ap, char *)) && argc < 15)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	crid_err_clear(err);
	return crid_config_load(cfg, argc, argv, err);
}

START_TEST(test_config_cni)
{
	struct crid_config cfg;
	struct crid_err err;
	json_t *j;

	ck_assert_int_eq(load_config(&cfg, &err, "cni_conf_dir: /srv/net.d\ncni_plugin_timeout_s: 5\n"
						 "cni_bin_dirs: [/a, /b/c]\n", NULL),
			 CRID_CONFIG_RUN);
	ck_assert_str_eq(cfg.cni_conf_dir, "/srv/net.d");
	ck_assert_uint_eq(cfg.cni_plugin_timeout_s, 5);
	ck_assert_uint_eq(cfg.n_cni_bin_dirs, 2);
	ck_assert_str_eq(cfg.cni_bin_dirs[1], "/b/c");
	j = crid_config_to_json(&cfg);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "cni_bin_dirs"), 0)), "/a");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "cni_plugin_timeout_s")), 5);
	json_decref(j);
	crid_config_free(&cfg);
	/* Flags replace what the files said. */
	ck_assert_int_eq(load_config(&cfg, &err, "cni_bin_dirs: [/a]\n", "--cni-bin-dirs", "/x:/y:/z",
				     "--cni-conf-dir=/n", "--cni-plugin-timeout", "3600", NULL),
			 CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_cni_bin_dirs, 3);
	ck_assert_str_eq(cfg.cni_bin_dirs[2], "/z");
	ck_assert_str_eq(cfg.cni_conf_dir, "/n");
	ck_assert_uint_eq(cfg.cni_plugin_timeout_s, 3600);
	crid_config_free(&cfg);
}
END_TEST

static const struct {
	const char *yaml, *flag, *value, *msg; /* msg after "<file>:" for YAML */
} bad_cni_config[] = {
	{ "cni_bin_dirs: /opt/cni/bin\n", NULL, NULL, "1: cni_bin_dirs: expected a list of directories, found a single value" },
	{ "cni_bin_dirs: []\n", NULL, NULL, "1: cni_bin_dirs: needs at least one directory" },
	{ "cni_bin_dirs: [bin]\n", NULL, NULL, "1: cni_bin_dirs: \"bin\" is not an absolute path" },
	{ "cni_bin_dirs: [\"/a:/b\"]\n", NULL, NULL, "1: cni_bin_dirs: \"/a:/b\" holds a ':'" },
	{ "cni_conf_dir: net.d\n", NULL, NULL, "1: cni_conf_dir: \"net.d\" is not an absolute path" },
	{ "cni_plugin_timeout_s: 0\n", NULL, NULL, "1: cni_plugin_timeout_s: \"0\" is out of range 1..3600" },
	{ "", "--cni-bin-dirs", "/a::/b", "--cni-bin-dirs: \"/a::/b\" holds an empty directory" },
	{ "", "--cni-bin-dirs", "/a:", "--cni-bin-dirs: \"/a:\" holds an empty directory" },
	{ "", "--cni-bin-dirs", "/a:rel", "--cni-bin-dirs: \"rel\" is not an absolute path" },
	{ "", "--cni-plugin-timeout", "3601", "--cni-plugin-timeout: \"3601\" is out of range 1..3600" },
};

START_TEST(test_config_cni_bad)
{
	struct crid_config cfg;
	struct crid_err err;
	char want[PATH_MAX + 256];

	ck_assert_int_lt(load_config(&cfg, &err, bad_cni_config[_i].yaml, bad_cni_config[_i].flag,
				     bad_cni_config[_i].value, NULL),
			 0);
	if (bad_cni_config[_i].flag)
		FMT(want, "%s", bad_cni_config[_i].msg);
	else
		FMT(want, "%s/crid.yaml:%s", dir, bad_cni_config[_i].msg);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

/* ---- bandwidth ---- */

START_TEST(test_bandwidth)
{
	static const struct {
		const char *s;
		int r;
		uint64_t bps;
	} cases[] = {
		{ "10M", 0, 10000000 },	   { "1Mi", 0, 1048576 },   { "1.5k", 0, 1500 },
		{ "100k", 0, 100000 },	   { "1e3", 0, 1000 },	    { "1E6", 0, 1000000 },
		{ "0.5M", 0, 500000 },	   { ".5M", 0, 500000 },    { "1000.0001", 0, 1001 },
		{ "1000000m", 0, 1000 },   { "1P", 0, 1000000000000000ULL }, { "+2G", 0, 2000000000 },
		{ "999", -ERANGE, 0 },	   { "2P", -ERANGE, 0 },    { "1Ei", -ERANGE, 0 },
		{ "", -EINVAL, 0 },	   { "lots", -EINVAL, 0 },  { "-1M", -EINVAL, 0 },
		{ "1Xi", -EINVAL, 0 },	   { "1.2.3k", -EINVAL, 0 }, { "0x10M", -EINVAL, 0 },
		{ "inf", -EINVAL, 0 },	   { "nan", -EINVAL, 0 },   { "1 M", -EINVAL, 0 },
		{ ".", -EINVAL, 0 },	   { "1e", -EINVAL, 0 },    { "1e99", -EINVAL, 0 },
	};

	for (size_t i = 0; i < CRID_ARRAY_SIZE(cases); i++) {
		uint64_t bps = 0;
		int r = crid_cni_parse_bandwidth(cases[i].s, &bps);

		ck_assert_msg(r == cases[i].r, "\"%s\": %d, expected %d", cases[i].s, r, cases[i].r);
		if (r == 0)
			ck_assert_msg(bps == cases[i].bps, "\"%s\": %llu, expected %llu", cases[i].s,
				      (unsigned long long)bps, (unsigned long long)cases[i].bps);
	}
}
END_TEST

/* ---- what a pod gives its plugins ---- */

struct pod {
	Runtime__V1__PodSandboxConfig c;
	Runtime__V1__PodSandboxMetadata m;
	Runtime__V1__PortMapping pm[4];
	Runtime__V1__PortMapping *pmp[4];
	Runtime__V1__PodSandboxConfig__AnnotationsEntry ann[2];
	Runtime__V1__PodSandboxConfig__AnnotationsEntry *annp[2];
	Runtime__V1__DNSConfig dns;
};

static void pod_init(struct pod *p)
{
	memset(p, 0, sizeof(*p));
	runtime__v1__pod_sandbox_config__init(&p->c);
	runtime__v1__pod_sandbox_metadata__init(&p->m);
	p->m.name = "web-0";
	p->m.namespace_ = "shop";
	p->m.uid = "6f2c7d3e-1111-2222-3333-444455556666";
	p->c.metadata = &p->m;
	for (int i = 0; i < 4; i++) {
		runtime__v1__port_mapping__init(&p->pm[i]);
		p->pmp[i] = &p->pm[i];
	}
	for (int i = 0; i < 2; i++) {
		runtime__v1__pod_sandbox_config__annotations_entry__init(&p->ann[i]);
		p->annp[i] = &p->ann[i];
	}
	p->c.port_mappings = p->pmp;
	p->c.annotations = p->annp;
	runtime__v1__dnsconfig__init(&p->dns);
}

START_TEST(test_pod_args)
{
	struct pod p;
	struct crid_err err;
	_cleanup_free_ char *args = NULL;
	char *bad = NULL;

	pod_init(&p);
	ck_assert_int_eq(crid_cni_pod_args(&p.c, "abc123", &args, &err), 0);
	ck_assert_str_eq(args, "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;"
			       "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=6f2c7d3e-1111-2222-3333-444455556666");
	p.m.name = "a;K8S_POD_NAMESPACE=kube-system";
	ck_assert_int_lt(crid_cni_pod_args(&p.c, "abc123", &bad, &err), 0);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_str_eq(err.msg, "config.metadata.name \"a;K8S_POD_NAMESPACE=kube-system\" holds a ';', '=' or "
				  "control character, which CNI_ARGS cannot carry");
	p.m.name = "ok";
	p.m.uid = "u\n1";
	ck_assert_int_lt(crid_cni_pod_args(&p.c, "abc123", &bad, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "config.metadata.uid"));
	/* Not UTF-8: no record could hold it. */
	p.m.uid = "u1";
	p.m.namespace_ = "ns\xff";
	ck_assert_int_lt(crid_cni_pod_args(&p.c, "abc123", &bad, &err), 0);
	ck_assert_str_eq(err.msg, "config.metadata.namespace is not valid UTF-8");
}
END_TEST

static void assert_json(json_t *got, const char *want_text)
{
	json_t *want = parse(want_text);
	char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);

	ck_assert_msg(json_equal(got, want), "got %s\nwant %s", g, want_text);
	free(g);
	json_decref(want);
}

START_TEST(test_runtime_config)
{
	struct pod p;
	struct crid_err err;
	json_t *rc;
	char *servers[] = { "10.96.0.10" }, *searches[] = { "a.svc", "svc" }, *options[] = { "ndots:5" };

	pod_init(&p);
	ck_assert_int_eq(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
	assert_json(rc, "{\"portMappings\":[]}");
	json_decref(rc);

	p.c.n_port_mappings = 4;
	p.pm[0].protocol = RUNTIME__V1__PROTOCOL__TCP;
	p.pm[0].container_port = 80;
	p.pm[0].host_port = 8080;
	p.pm[1].protocol = RUNTIME__V1__PROTOCOL__UDP;
	p.pm[1].container_port = 53;
	p.pm[1].host_port = 5353;
	p.pm[1].host_ip = "127.0.0.1";
	p.pm[2].protocol = RUNTIME__V1__PROTOCOL__SCTP;
	p.pm[2].container_port = 9;
	p.pm[2].host_port = 9;
	p.pm[2].host_ip = "::1";
	p.pm[3].container_port = 8081; /* no host port: no mapping */
	p.c.n_annotations = 2;
	p.ann[0].key = "kubernetes.io/ingress-bandwidth";
	p.ann[0].value = "10M";
	p.ann[1].key = "kubernetes.io/egress-bandwidth";
	p.ann[1].value = "1Gi";
	p.dns.n_servers = 1;
	p.dns.servers = servers;
	p.dns.n_searches = 2;
	p.dns.searches = searches;
	p.dns.n_options = 1;
	p.dns.options = options;
	p.c.dns_config = &p.dns;
	ck_assert_int_eq(crid_cni_runtime_config(&p.c, "10.1.0.0/24,fd00::/64", &rc, &err), 0);
	assert_json(rc, "{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"},"
			"{\"hostPort\":5353,\"containerPort\":53,\"protocol\":\"udp\",\"hostIP\":\"127.0.0.1\"},"
			"{\"hostPort\":9,\"containerPort\":9,\"protocol\":\"sctp\",\"hostIP\":\"::1\"}],"
			"\"bandwidth\":{\"ingressRate\":10000000,\"ingressBurst\":4294967295,"
			"\"egressRate\":1073741824,\"egressBurst\":4294967295},"
			"\"ipRanges\":[[{\"subnet\":\"10.1.0.0/24\"}],[{\"subnet\":\"fd00::/64\"}]],"
			"\"dns\":{\"servers\":[\"10.96.0.10\"],\"searches\":[\"a.svc\",\"svc\"],\"options\":[\"ndots:5\"]}}");
	json_decref(rc);
}
END_TEST

START_TEST(test_runtime_config_bad)
{
	struct pod p;
	struct crid_err err;
	json_t *rc = (void *)1;

	pod_init(&p);
	p.c.n_port_mappings = 1;
	p.pm[0].container_port = 0;
	ck_assert_int_lt(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
	ck_assert_ptr_null(rc);
	ck_assert_str_eq(err.msg, "config.port_mappings[0].container_port: 0 is not a port");
	p.pm[0].container_port = 80;
	p.pm[0].host_port = 65536;
	ck_assert_int_lt(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
	ck_assert_str_eq(err.msg, "config.port_mappings[0].host_port: 65536 is not a port");
	p.pm[0].host_port = 80;
	p.pm[0].protocol = 7;
	ck_assert_int_lt(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
	ck_assert_str_eq(err.msg, "config.port_mappings[0].protocol: 7 is not TCP, UDP or SCTP");
	p.pm[0].protocol = 0;
	p.pm[0].host_ip = "localhost";
	ck_assert_int_lt(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
	ck_assert_str_eq(err.msg, "config.port_mappings[0].host_ip: \"localhost\" is not an IP address");
	p.c.n_port_mappings = 0;
	p.c.n_annotations = 1;
	p.ann[0].key = "kubernetes.io/egress-bandwidth";
	p.ann[0].value = "fast";
	ck_assert_int_lt(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_str_eq(err.msg, "annotation kubernetes.io/egress-bandwidth: \"fast\" is not a quantity such as 10M");
	p.ann[0].value = "10";
	ck_assert_int_lt(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
	ck_assert_str_eq(err.msg,
			 "annotation kubernetes.io/egress-bandwidth: \"10\" is out of range (1k to 1P bits per second)");
	p.c.n_annotations = 0;
	{
		char *searches[] = { "ok.svc", "bad\xc3" };

		p.dns.n_searches = 2;
		p.dns.searches = searches;
		p.c.dns_config = &p.dns;
		ck_assert_int_lt(crid_cni_runtime_config(&p.c, NULL, &rc, &err), 0);
		ck_assert_str_eq(err.msg, "config.dns_config.searches[1] is not valid UTF-8");
	}
}
END_TEST

START_TEST(test_plugin_conf)
{
	json_t *j = parse("{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"plugins\":["
			  "{\"type\":\"a\",\"name\":\"old\",\"runtimeConfig\":{\"x\":1},"
			  "\"capabilities\":{\"portMappings\":true,\"bandwidth\":false,\"dns\":true}},"
			  "{\"type\":\"b\"}]}");
	json_t *rc = parse("{\"portMappings\":[],\"bandwidth\":{\"ingressRate\":1000},\"ipRanges\":[]}");
	json_t *prev = parse("{\"cniVersion\":\"0.4.0\",\"ips\":[]}");
	struct crid_cni_conflist *l;
	struct crid_err err;
	json_t *c;

	ck_assert_int_eq(crid_cni_conflist_new("f", j, false, &l, &err), 0);
	/* Only the declared (true) capabilities that the pod has a value for;
	 * the list's name and version over the plugin's own. */
	c = crid_cni_plugin_conf(l, 0, rc, prev);
	assert_json(c, "{\"type\":\"a\",\"name\":\"n\",\"cniVersion\":\"0.4.0\","
		       "\"capabilities\":{\"portMappings\":true,\"bandwidth\":false,\"dns\":true},"
		       "\"runtimeConfig\":{\"portMappings\":[]},\"prevResult\":{\"cniVersion\":\"0.4.0\",\"ips\":[]}}");
	json_decref(c);
	c = crid_cni_plugin_conf(l, 1, rc, NULL);
	assert_json(c, "{\"type\":\"b\",\"name\":\"n\",\"cniVersion\":\"0.4.0\"}");
	json_decref(c);
	/* The list is untouched. */
	ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(l->list, "plugins"), 1), "name"));
	crid_cni_conflist_unref(l);
	json_decref(j);
	json_decref(rc);
	json_decref(prev);
}
END_TEST

/* ---- results ---- */

static void assert_ips(const char *result, const char *const *want, size_t n_want)
{
	json_t *r = parse(result);
	struct crid_err err;
	char **ips;
	size_t n;

	ck_assert_int_eq(crid_cni_result_check(r, &err), 0);
	ck_assert_int_eq(crid_cni_result_ips(r, "eth0", &ips, &n, &err), 0);
	ck_assert_uint_eq(n, n_want);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(ips[i], want[i]);
		free(ips[i]);
	}
	free(ips);
	json_decref(r);
}

START_TEST(test_result_ips)
{
	static const char *const bridge[] = { "10.85.0.7" };
	static const char *const dual[] = { "10.85.0.7", "fd00::7" };
	static const char *const old[] = { "10.1.2.3" };

	/* The bridge plugin's: the host's bridge and veth, the pod's eth0. */
	assert_ips("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"cni0\"},{\"name\":\"veth1\"},"
		   "{\"name\":\"eth0\",\"sandbox\":\"/ns\"}],\"ips\":[{\"interface\":2,\"address\":\"10.85.0.7/16\","
		   "\"gateway\":\"10.85.0.1\"}]}",
		   bridge, 1);
	/* loopback's: nothing a pod IP could be. */
	assert_ips("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"lo\",\"sandbox\":\"/ns\"}],"
		   "\"ips\":[{\"interface\":0,\"address\":\"127.0.0.1/8\"},{\"interface\":0,\"address\":\"::1/128\"}]}",
		   NULL, 0);
	assert_ips("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\"}],"
		   "\"ips\":[{\"interface\":0,\"address\":\"127.0.0.1/8\"}]}",
		   NULL, 0);
	/* IPv4 first whatever the order; duplicates once. */
	assert_ips("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\"}],\"ips\":["
		   "{\"interface\":0,\"address\":\"fd00::7/64\"},{\"interface\":0,\"address\":\"10.85.0.7/24\"},"
		   "{\"interface\":0,\"address\":\"10.85.0.7/24\"}]}",
		   dual, 2);
	/* 0.3.x: "version" fields; no interface index at all. */
	assert_ips("{\"cniVersion\":\"0.3.1\",\"ips\":[{\"version\":\"4\",\"address\":\"10.1.2.3/24\"}]}", old, 1);
	/* An address on another interface of the pod is not its IP. */
	assert_ips("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"net1\"},{\"name\":\"eth0\"}],\"ips\":["
		   "{\"interface\":0,\"address\":\"192.168.5.5/24\"},{\"interface\":1,\"address\":\"10.1.2.3/24\"}]}",
		   old, 1);
	assert_ips("{\"cniVersion\":\"1.0.0\"}", NULL, 0);
	assert_ips("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"garbage\"}]}", NULL, 0);
}
END_TEST

START_TEST(test_result_check)
{
	static const struct {
		const char *json, *msg;
	} cases[] = {
		{ "[]", "the result is not a JSON object" },
		{ "{\"ips\":{}}", "the result's ips is not a list" },
		{ "{\"interfaces\":7}", "the result's interfaces is not a list" },
		{ "{\"ips\":[{\"interface\":0}]}", "the result's ips[0] has no address" },
		{ "{\"ips\":[{\"address\":1}]}", "the result's ips[0] has no address" },
		{ "{\"interfaces\":[\"eth0\"]}", "the result's interfaces[0] is not an object" },
	};

	for (size_t i = 0; i < CRID_ARRAY_SIZE(cases); i++) {
		json_t *r = parse(cases[i].json);
		struct crid_err err;

		ck_assert_int_lt(crid_cni_result_check(r, &err), 0);
		ck_assert_str_eq(err.msg, cases[i].msg);
		json_decref(r);
	}
}
END_TEST

START_TEST(test_error_text)
{
	char buf[256];
	const char *full = "{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no IP addresses available\",\"details\":\"range 0\"}";
	const char *bare = "{\"code\":11,\"msg\":\"try again\"}";

	crid_cni_error_text(full, strlen(full), buf, sizeof(buf));
	ck_assert_str_eq(buf, "no IP addresses available: range 0 (code 7)");
	crid_cni_error_text(bare, strlen(bare), buf, sizeof(buf));
	ck_assert_str_eq(buf, "try again (code 11)");
	crid_cni_error_text("panic: oops", 11, buf, sizeof(buf));
	ck_assert_str_eq(buf, "panic: oops");
	crid_cni_error_text(NULL, 0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "no error output");
}
END_TEST

/* ---- plugin calls ---- */

static struct crid_cni_exec exec_in(char *const *bin_dirs, size_t n, char *path, unsigned timeout_s)
{
	struct crid_cni_exec x = { .bin_dirs = bin_dirs, .n_bin_dirs = n, .cni_path = path, .timeout_s = timeout_s };

	return x;
}

static const struct crid_cni_invocation inv = {
	.command = "ADD",
	.container_id = "c0ffee",
	.netns = "/run/netns/x",
	.ifname = "eth0",
	.args = "IgnoreUnknown=1;K8S_POD_NAME=p",
};

START_TEST(test_exec_result_and_environment)
{
	char other[PATH_MAX + 8];
	char *dirs[2] = { other, dir };
	struct crid_cni_exec x = exec_in(dirs, 2, "/nowhere:/x", 10);
	json_t *conf = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"echo\"}"), *res;
	struct crid_err err;

	FMT(other, "%s/missing", dir);
	/* Prints its environment and its stdin back as a result. */
	write_file("echo", "#!/bin/sh\n"
			   "conf=$(cat)\n"
			   "printf '{\"cniVersion\":\"1.0.0\",\"env\":\"%s|%s|%s|%s|%s|%s|%s\",\"conf\":%s}\\n' "
			   "\"$CNI_COMMAND\" \"$CNI_CONTAINERID\" \"$CNI_NETNS\" \"$CNI_IFNAME\" \"$CNI_ARGS\" "
			   "\"$CNI_PATH\" \"${CNI_STALE:-none}\" \"$conf\"\n",
		   0755);
	setenv("CNI_STALE", "from crid's environment", 1);
	ck_assert_int_eq(crid_cni_exec_plugin(&x, "echo", &inv, conf, &res, &err), 0);
	unsetenv("CNI_STALE");
	ck_assert_str_eq(json_string_value(json_object_get(res, "env")),
			 "ADD|c0ffee|/run/netns/x|eth0|IgnoreUnknown=1;K8S_POD_NAME=p|/nowhere:/x|none");
	ck_assert(json_equal(json_object_get(res, "conf"), conf));
	json_decref(res);

	/* Nothing printed: no result (DEL, CHECK). */
	write_file("quiet", "#!/bin/sh\ncat >/dev/null\n", 0755);
	res = (void *)1;
	ck_assert_int_eq(crid_cni_exec_plugin(&x, "quiet", &inv, conf, &res, &err), 0);
	ck_assert_ptr_null(res);
	json_decref(conf);
}
END_TEST

START_TEST(test_exec_errors)
{
	char *dirs[1] = { dir };
	struct crid_cni_exec x = exec_in(dirs, 1, dir, 10);
	json_t *conf = parse("{\"cniVersion\":\"1.0.0\"}"), *res;
	struct crid_err err;
	char want[PATH_MAX + 128];

	FMT(want, "plugin \"nope\" is in none of the CNI bin dirs (%s)", dir);
	ck_assert_int_eq(crid_cni_exec_plugin(&x, "nope", &inv, conf, &res, &err), -ENOENT);
	ck_assert_int_eq(err.status, CRID_FAILED_PRECONDITION);
	ck_assert_int_eq(err.errnum, ENOENT);
	ck_assert_str_eq(err.msg, want);
	/* Not executable: as good as missing. */
	write_file("noexec", "#!/bin/sh\n", 0644);
	ck_assert_int_eq(crid_cni_exec_plugin(&x, "noexec", &inv, conf, &res, &err), -ENOENT);

	write_file("fails", "#!/bin/sh\ncat >/dev/null\necho '{\"code\":7,\"msg\":\"no addresses\",\"details\":\"r0\"}'\n"
			    "echo 'first' >&2\necho 'the last line' >&2\nexit 1\n",
		   0755);
	ck_assert_int_lt(crid_cni_exec_plugin(&x, "fails", &inv, conf, &res, &err), 0);
	ck_assert_int_eq(err.status, CRID_UNKNOWN);
	ck_assert_str_eq(err.msg, "plugin fails (ADD) failed: no addresses: r0 (code 7) (stderr: the last line)");
	ck_assert_ptr_null(res);

	write_file("garbage", "#!/bin/sh\ncat >/dev/null\necho 'not json'\n", 0755);
	ck_assert_int_lt(crid_cni_exec_plugin(&x, "garbage", &inv, conf, &res, &err), 0);
	ck_assert_msg(strncmp(err.msg, "plugin garbage (ADD) answered something that is not JSON", 56) == 0, "%s",
		      err.msg);

	write_file("signal", "#!/bin/sh\ncat >/dev/null\nkill -9 $$\n", 0755);
	ck_assert_int_lt(crid_cni_exec_plugin(&x, "signal", &inv, conf, &res, &err), 0);
	ck_assert_str_eq(err.msg, "plugin signal (ADD) was killed by signal 9");
	json_decref(conf);
}
END_TEST

START_TEST(test_exec_timeout_kills_the_session)
{
	char *dirs[1] = { dir };
	struct crid_cni_exec x = exec_in(dirs, 1, dir, 1);
	json_t *conf = parse("{\"cniVersion\":\"1.0.0\"}"), *res;
	struct crid_err err;
	char pidfile[PATH_MAX + 16], script[PATH_MAX * 2], buf[32] = "";
	struct timespec t0, t1;
	long child;
	FILE *f;

	/* A plugin that starts a child (as plugins start iptables) and hangs,
	 * its pipes held open by the child too. */
	FMT(pidfile, "%s/child.pid", dir);
	FMT(script, "#!/bin/sh\nsleep 300 &\necho $! > %s\nwait\n", pidfile);
	write_file("hang", script, 0755);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_lt(crid_cni_exec_plugin(&x, "hang", &inv, conf, &res, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(err.status, CRID_DEADLINE_EXCEEDED);
	ck_assert_str_eq(err.msg, "plugin hang (ADD) did not finish within 1 s and was killed");
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
	f = fopen(pidfile, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	child = strtol(buf, NULL, 10);
	ck_assert_int_gt(child, 1);
	/* The child was in the plugin's session: killed with it (a zombie of
	 * whoever reaps orphans here at most). */
	for (int i = 0; i < 100; i++) {
		char stat_path[64], stat[256] = "";
		FILE *s;

		snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", child);
		s = fopen(stat_path, "re");
		if (!s)
			break;
		if (!fgets(stat, sizeof(stat), s))
			stat[0] = '\0';
		fclose(s);
		if (strstr(stat, ") Z ") || strstr(stat, ") X "))
			break;
		ck_assert_msg(i < 99, "the plugin's child %ld still runs: %s", child, stat);
		usleep(20000);
	}
	json_decref(conf);
}
END_TEST

static Suite *cni_suite(void)
{
	Suite *s = suite_create("cni");
	TCase *tc = tcase_create("cni");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_conflist_valid);
	tcase_add_test(tc, test_conflist_single_conf);
	tcase_add_loop_test(tc, test_conflist_bad, 0, (int)CRID_ARRAY_SIZE(bad_lists));
	tcase_add_test(tc, test_conflist_too_many_plugins);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_dir_choice);
	tcase_add_test(tc, test_dir_missing);
	tcase_add_test(tc, test_config_cni);
	tcase_add_loop_test(tc, test_config_cni_bad, 0, (int)CRID_ARRAY_SIZE(bad_cni_config));
	tcase_add_test(tc, test_bandwidth);
	tcase_add_test(tc, test_pod_args);
	tcase_add_test(tc, test_runtime_config);
	tcase_add_test(tc, test_runtime_config_bad);
	tcase_add_test(tc, test_plugin_conf);
	tcase_add_test(tc, test_result_ips);
	tcase_add_test(tc, test_result_check);
	tcase_add_test(tc, test_error_text);
	tcase_add_test(tc, test_exec_result_and_environment);
	tcase_add_test(tc, test_exec_errors);
	tcase_add_test(tc, test_exec_timeout_kills_the_session);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (snprintf(parent_dir, sizeof(parent_dir), "%s/crid-test-cni-XXXXXX",
		     getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") >= (int)sizeof(parent_dir) ||
	    !mkdtemp(parent_dir)) {
		perror("mkdtemp");
		return 1;
	}
	sr = srunner_create(cni_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_rf(parent_dir);
	return failed == 0 ? 0 : 1;
}
