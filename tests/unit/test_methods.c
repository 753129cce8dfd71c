/* Unit tests of src/rpc/methods: a fresh table knows every CRI method under
 * runtime.v1 and runtime.v1alpha2 with no handler yet, register sets handler
 * and data for both versions, and anything that is not exactly a CRI method
 * path is not found. The list of methods below is written out from
 * proto/runtime/v1/api.proto, not read back from the generated descriptors. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "rpc/methods.h"

#include "runtime/v1/api.pb-c.h"

struct cri_method {
	const char *service, *name, *input;
};

static const struct cri_method cri_methods[] = {
	{ "RuntimeService", "Version", "runtime.v1.VersionRequest" },
	{ "RuntimeService", "RunPodSandbox", "runtime.v1.RunPodSandboxRequest" },
	{ "RuntimeService", "StopPodSandbox", "runtime.v1.StopPodSandboxRequest" },
	{ "RuntimeService", "RemovePodSandbox", "runtime.v1.RemovePodSandboxRequest" },
	{ "RuntimeService", "PodSandboxStatus", "runtime.v1.PodSandboxStatusRequest" },
	{ "RuntimeService", "ListPodSandbox", "runtime.v1.ListPodSandboxRequest" },
	{ "RuntimeService", "StreamPodSandboxes", "runtime.v1.StreamPodSandboxesRequest" },
	{ "RuntimeService", "CreateContainer", "runtime.v1.CreateContainerRequest" },
	{ "RuntimeService", "StartContainer", "runtime.v1.StartContainerRequest" },
	{ "RuntimeService", "StopContainer", "runtime.v1.StopContainerRequest" },
	{ "RuntimeService", "RemoveContainer", "runtime.v1.RemoveContainerRequest" },
	{ "RuntimeService", "ListContainers", "runtime.v1.ListContainersRequest" },
	{ "RuntimeService", "StreamContainers", "runtime.v1.StreamContainersRequest" },
	{ "RuntimeService", "ContainerStatus", "runtime.v1.ContainerStatusRequest" },
	{ "RuntimeService", "UpdateContainerResources", "runtime.v1.UpdateContainerResourcesRequest" },
	{ "RuntimeService", "ReopenContainerLog", "runtime.v1.ReopenContainerLogRequest" },
	{ "RuntimeService", "ExecSync", "runtime.v1.ExecSyncRequest" },
	{ "RuntimeService", "Exec", "runtime.v1.ExecRequest" },
	{ "RuntimeService", "Attach", "runtime.v1.AttachRequest" },
	{ "RuntimeService", "PortForward", "runtime.v1.PortForwardRequest" },
	{ "RuntimeService", "ContainerStats", "runtime.v1.ContainerStatsRequest" },
	{ "RuntimeService", "ListContainerStats", "runtime.v1.ListContainerStatsRequest" },
	{ "RuntimeService", "StreamContainerStats", "runtime.v1.StreamContainerStatsRequest" },
	{ "RuntimeService", "PodSandboxStats", "runtime.v1.PodSandboxStatsRequest" },
	{ "RuntimeService", "ListPodSandboxStats", "runtime.v1.ListPodSandboxStatsRequest" },
	{ "RuntimeService", "StreamPodSandboxStats", "runtime.v1.StreamPodSandboxStatsRequest" },
	{ "RuntimeService", "UpdateRuntimeConfig", "runtime.v1.UpdateRuntimeConfigRequest" },
	{ "RuntimeService", "Status", "runtime.v1.StatusRequest" },
	{ "RuntimeService", "CheckpointContainer", "runtime.v1.CheckpointContainerRequest" },
	{ "RuntimeService", "CheckpointPod", "runtime.v1.CheckpointPodRequest" },
	{ "RuntimeService", "RestorePod", "runtime.v1.RestorePodRequest" },
	{ "RuntimeService", "GetContainerEvents", "runtime.v1.GetEventsRequest" },
	{ "RuntimeService", "ListMetricDescriptors", "runtime.v1.ListMetricDescriptorsRequest" },
	{ "RuntimeService", "ListPodSandboxMetrics", "runtime.v1.ListPodSandboxMetricsRequest" },
	{ "RuntimeService", "StreamPodSandboxMetrics", "runtime.v1.StreamPodSandboxMetricsRequest" },
	{ "RuntimeService", "RuntimeConfig", "runtime.v1.RuntimeConfigRequest" },
	{ "RuntimeService", "UpdatePodSandboxResources", "runtime.v1.UpdatePodSandboxResourcesRequest" },
	{ "ImageService", "ListImages", "runtime.v1.ListImagesRequest" },
	{ "ImageService", "StreamImages", "runtime.v1.StreamImagesRequest" },
	{ "ImageService", "ImageStatus", "runtime.v1.ImageStatusRequest" },
	{ "ImageService", "PullImage", "runtime.v1.PullImageRequest" },
	{ "ImageService", "RemoveImage", "runtime.v1.RemoveImageRequest" },
	{ "ImageService", "ImageFsInfo", "runtime.v1.ImageFsInfoRequest" },
};

#define N_CRI_METHODS (sizeof(cri_methods) / sizeof(cri_methods[0]))

static const char *const versions[] = { "v1", "v1alpha2" };

static struct crid_rpc_methods *table;

static void setup(void)
{
	struct crid_err err;

	crid_err_clear(&err);
	table = NULL;
	ck_assert_msg(crid_rpc_methods_new(&table, &err) == 0, "crid_rpc_methods_new: %s", err.msg);
	ck_assert_ptr_nonnull(table);
}

static void teardown(void)
{
	crid_rpc_methods_free(table);
	table = NULL;
}

static const struct crid_rpc_method *find(const char *path, const char **api_version)
{
	return crid_rpc_methods_find(table, path, strlen(path), api_version);
}

static const struct crid_rpc_method *find_path(const char *version, const char *service, const char *name,
					       const char **api_version)
{
	char path[256];

	ck_assert_int_lt(snprintf(path, sizeof(path), "/runtime.%s.%s/%s", version, service, name), (int)sizeof(path));
	return find(path, api_version);
}

/* Two distinct handlers so a mix-up between them shows. */
static int handler_a(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	return 0;
}

static int handler_b(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	return 1;
}

static int data_a, data_b;

START_TEST(test_method_count_matches_proto)
{
	/* Guards the hand-written list above against a proto that grew. */
	ck_assert_uint_eq(runtime__v1__runtime_service__descriptor.n_methods +
				  runtime__v1__image_service__descriptor.n_methods,
			  N_CRI_METHODS);
}
END_TEST

START_TEST(test_fresh_table_knows_every_method)
{
	for (size_t v = 0; v < 2; v++) {
		for (size_t i = 0; i < N_CRI_METHODS; i++) {
			const struct cri_method *c = &cri_methods[i];
			const char *api = NULL;
			const struct crid_rpc_method *m = find_path(versions[v], c->service, c->name, &api);

			ck_assert_msg(m != NULL, "/runtime.%s.%s/%s not found", versions[v], c->service, c->name);
			ck_assert_str_eq(api, versions[v]);
			ck_assert_str_eq(m->service, c->service);
			ck_assert_str_eq(m->name, c->name);
			ck_assert_ptr_nonnull(m->input);
			ck_assert_str_eq(m->input->name, c->input);
			ck_assert_ptr_null(m->handler);
			ck_assert_ptr_null(m->data);
		}
	}
}
END_TEST

START_TEST(test_find_named_examples)
{
	const char *api = NULL;
	const struct crid_rpc_method *m;

	m = find("/runtime.v1.RuntimeService/Version", &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(api, "v1");
	ck_assert_str_eq(m->input->name, "runtime.v1.VersionRequest");
	ck_assert_ptr_eq(m->input, &runtime__v1__version_request__descriptor);

	api = NULL;
	m = find("/runtime.v1alpha2.RuntimeService/Version", &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(api, "v1alpha2");
	ck_assert_str_eq(m->input->name, "runtime.v1.VersionRequest");

	api = NULL;
	m = find("/runtime.v1.ImageService/PullImage", &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(api, "v1");
	ck_assert_str_eq(m->service, "ImageService");
	ck_assert_ptr_eq(m->input, &runtime__v1__pull_image_request__descriptor);

	api = NULL;
	m = find("/runtime.v1alpha2.ImageService/PullImage", &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(api, "v1alpha2");

	api = NULL;
	m = find("/runtime.v1.RuntimeService/GetContainerEvents", &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(api, "v1");
	ck_assert_ptr_eq(m->input, &runtime__v1__get_events_request__descriptor);

	api = NULL;
	m = find("/runtime.v1alpha2.RuntimeService/GetContainerEvents", &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(api, "v1alpha2");
	ck_assert_str_eq(m->input->name, "runtime.v1.GetEventsRequest");
}
END_TEST

START_TEST(test_register_sets_both_versions)
{
	struct crid_err err;
	const char *api;
	const struct crid_rpc_method *m;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_rpc_methods_register(table, "RuntimeService", "Version", handler_a, &data_a, &err), 0);
	ck_assert_int_eq(crid_rpc_methods_register(table, "ImageService", "PullImage", handler_b, &data_b, &err), 0);

	for (size_t v = 0; v < 2; v++) {
		m = find_path(versions[v], "RuntimeService", "Version", &api);
		ck_assert_ptr_nonnull(m);
		ck_assert_str_eq(api, versions[v]);
		ck_assert_ptr_eq(m->handler, handler_a);
		ck_assert_ptr_eq(m->data, &data_a);

		m = find_path(versions[v], "ImageService", "PullImage", &api);
		ck_assert_ptr_nonnull(m);
		ck_assert_ptr_eq(m->handler, handler_b);
		ck_assert_ptr_eq(m->data, &data_b);
	}

	/* Nothing else got a handler. */
	for (size_t v = 0; v < 2; v++) {
		for (size_t i = 0; i < N_CRI_METHODS; i++) {
			const struct cri_method *c = &cri_methods[i];

			if (!strcmp(c->name, "Version") || !strcmp(c->name, "PullImage"))
				continue;
			m = find_path(versions[v], c->service, c->name, &api);
			ck_assert_ptr_nonnull(m);
			ck_assert_msg(m->handler == NULL, "%s/%s got a handler", c->service, c->name);
			ck_assert_ptr_null(m->data);
		}
	}
}
END_TEST

START_TEST(test_register_every_method)
{
	static int data[N_CRI_METHODS];
	struct crid_err err;

	crid_err_clear(&err);
	for (size_t i = 0; i < N_CRI_METHODS; i++)
		ck_assert_msg(crid_rpc_methods_register(table, cri_methods[i].service, cri_methods[i].name,
							i % 2 ? handler_a : handler_b, &data[i], &err) == 0,
			      "register %s/%s: %s", cri_methods[i].service, cri_methods[i].name, err.msg);
	for (size_t v = 0; v < 2; v++) {
		for (size_t i = 0; i < N_CRI_METHODS; i++) {
			const char *api;
			const struct crid_rpc_method *m =
				find_path(versions[v], cri_methods[i].service, cri_methods[i].name, &api);

			ck_assert_ptr_nonnull(m);
			ck_assert_ptr_eq(m->handler, i % 2 ? handler_a : handler_b);
			ck_assert_ptr_eq(m->data, &data[i]);
		}
	}
}
END_TEST

START_TEST(test_register_again_replaces)
{
	struct crid_err err;
	const char *api;
	const struct crid_rpc_method *m;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_rpc_methods_register(table, "RuntimeService", "Status", handler_a, &data_a, &err), 0);
	ck_assert_int_eq(crid_rpc_methods_register(table, "RuntimeService", "Status", handler_b, &data_b, &err), 0);
	m = find("/runtime.v1alpha2.RuntimeService/Status", &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_eq(m->handler, handler_b);
	ck_assert_ptr_eq(m->data, &data_b);
}
END_TEST

START_TEST(test_tables_are_independent)
{
	struct crid_rpc_methods *other = NULL;
	struct crid_err err;
	const char *api;
	const struct crid_rpc_method *m;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_rpc_methods_new(&other, &err), 0);
	ck_assert_int_eq(crid_rpc_methods_register(table, "RuntimeService", "Version", handler_a, &data_a, &err), 0);
	m = crid_rpc_methods_find(other, "/runtime.v1.RuntimeService/Version", 34, &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_null(m->handler);
	crid_rpc_methods_free(other);
	crid_rpc_methods_free(NULL);
}
END_TEST

START_TEST(test_register_unknown_fails)
{
	static const char *const bad[][2] = {
		{ "RuntimeService", "Nope" },
		{ "RuntimeService", "PullImage" }, /* an ImageService method */
		{ "ImageService", "Version" },     /* a RuntimeService method */
		{ "NoService", "Version" },
		{ "runtimeservice", "Version" },
		{ "RuntimeService", "version" },
		{ "runtime.v1.RuntimeService", "Version" },
		{ "", "Version" },
		{ "RuntimeService", "" },
	};
	struct crid_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		crid_err_clear(&err);
		ck_assert_msg(crid_rpc_methods_register(table, bad[i][0], bad[i][1], handler_a, &data_a, &err) == -ENOENT,
			      "register %s/%s did not fail with -ENOENT", bad[i][0], bad[i][1]);
		ck_assert_msg(err.msg[0] != '\0', "no message for %s/%s", bad[i][0], bad[i][1]);
	}
	/* And nothing was set by the failures. */
	for (size_t v = 0; v < 2; v++)
		for (size_t i = 0; i < N_CRI_METHODS; i++) {
			const char *api;
			const struct crid_rpc_method *m =
				find_path(versions[v], cri_methods[i].service, cri_methods[i].name, &api);

			ck_assert_ptr_nonnull(m);
			ck_assert_ptr_null(m->handler);
		}
}
END_TEST

START_TEST(test_unknown_paths)
{
	static const char *const bad[] = {
		"/runtime.v1.RuntimeService/Nope",
		"/runtime.v2.RuntimeService/Version",
		"/runtime.v1alpha1.RuntimeService/Version",
		"/runtime.v1alpha3.RuntimeService/Version",
		"/runtime.v1.NoService/Version",
		"/runtime.v1.RuntimeService/Version/extra",
		"/runtime.v1.RuntimeService/Version/",
		"/runtime.v1.RuntimeService//Version",
		"/runtime.v1.RuntimeService/",
		"/runtime.v1.RuntimeService",
		"/runtime.v1./Version",
		"/runtime.v1.",
		"/runtime.v1",
		"/runtime.",
		"",
		"/",
		"//",
		"runtime.v1.RuntimeService/Version",
		"//runtime.v1.RuntimeService/Version",
		"/runtime.v1.RuntimeService/version",
		"/runtime.v1.runtimeservice/Version",
		"/Runtime.v1.RuntimeService/Version",
		"/runtime.V1.RuntimeService/Version",
		"/runtime.v1.ImageService/Version",
		"/runtime.v1.RuntimeService/PullImage",
		"/runtime.v1.RuntimeService/Version ",
		" /runtime.v1.RuntimeService/Version",
		"/runtime.v1.RuntimeService/VersionX",
		"/runtime.v1.RuntimeServiceX/Version",
		"/runtime.v1.XRuntimeService/Version",
		"/runtime.v1.RuntimeService.Version",
		"/runtime.v1alpha2.ImageService/Status",
		"/runtime.v1.runtime.v1.RuntimeService/Version",
		"/grpc.health.v1.Health/Check",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *api = NULL;

		ck_assert_msg(find(bad[i], &api) == NULL, "\"%s\" found", bad[i]);
	}
}
END_TEST

START_TEST(test_long_unknown_paths)
{
	/* A method name longer than any buffer the lookup may use. */
	char path[1200];
	const char *api;
	int n = snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/");

	memset(path + n, 'V', sizeof(path) - (size_t)n - 1);
	path[sizeof(path) - 1] = '\0';
	ck_assert_ptr_null(find(path, &api));

	/* A long service name. */
	n = snprintf(path, sizeof(path), "/runtime.v1.");
	memset(path + n, 'S', 1000);
	strcpy(path + n + 1000, "/Version");
	ck_assert_ptr_null(find(path, &api));

	/* "Version" followed by 200 bytes of padding. */
	n = snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/Version");
	memset(path + n, 'n', 200);
	path[n + 200] = '\0';
	ck_assert_ptr_null(find(path, &api));
}
END_TEST

START_TEST(test_find_uses_path_len)
{
	/* Header values are not NUL-terminated: only path_len bytes count. */
	static const char buf[] = "/runtime.v1.RuntimeService/VersionXYZ";
	const char *api = NULL;
	const struct crid_rpc_method *m;

	m = crid_rpc_methods_find(table, buf, strlen(buf) - 3, &api);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->name, "Version");
	ck_assert_str_eq(api, "v1");

	/* "/runtime.v1.RuntimeService/Versio" */
	ck_assert_ptr_null(crid_rpc_methods_find(table, buf, strlen(buf) - 4, &api));
	/* "/runtime.v1.RuntimeService/" */
	ck_assert_ptr_null(crid_rpc_methods_find(table, buf, 27, &api));
	/* "/runtime.v1." and shorter */
	ck_assert_ptr_null(crid_rpc_methods_find(table, buf, 12, &api));
	ck_assert_ptr_null(crid_rpc_methods_find(table, buf, 5, &api));
	ck_assert_ptr_null(crid_rpc_methods_find(table, buf, 0, &api));
}
END_TEST

START_TEST(test_found_entries_are_stable)
{
	/* The same entry backs both versions: a pointer taken before register
	 * sees the handler afterwards. */
	struct crid_err err;
	const char *api;
	const struct crid_rpc_method *v1 = find("/runtime.v1.RuntimeService/ListContainers", &api);
	const struct crid_rpc_method *v1a2 = find("/runtime.v1alpha2.RuntimeService/ListContainers", &api);

	ck_assert_ptr_nonnull(v1);
	ck_assert_ptr_nonnull(v1a2);
	crid_err_clear(&err);
	ck_assert_int_eq(crid_rpc_methods_register(table, "RuntimeService", "ListContainers", handler_b, &data_b, &err),
			 0);
	ck_assert_ptr_eq(v1->handler, handler_b);
	ck_assert_ptr_eq(v1a2->handler, handler_b);
	ck_assert_ptr_eq(find("/runtime.v1.RuntimeService/ListContainers", &api), v1);
	/* Different methods are different entries. */
	ck_assert_ptr_ne(find("/runtime.v1.RuntimeService/ListPodSandbox", &api), v1);
}
END_TEST

static Suite *methods_suite(void)
{
	Suite *s = suite_create("methods");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_method_count_matches_proto);
	tcase_add_test(tc, test_fresh_table_knows_every_method);
	tcase_add_test(tc, test_find_named_examples);
	tcase_add_test(tc, test_register_sets_both_versions);
	tcase_add_test(tc, test_register_every_method);
	tcase_add_test(tc, test_register_again_replaces);
	tcase_add_test(tc, test_tables_are_independent);
	tcase_add_test(tc, test_register_unknown_fails);
	tcase_add_test(tc, test_unknown_paths);
	tcase_add_test(tc, test_long_unknown_paths);
	tcase_add_test(tc, test_find_uses_path_len);
	tcase_add_test(tc, test_found_entries_are_stable);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(methods_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
