/* Unit tests of src/runtime/packed_list: a list built from packed entries
 * decodes, with protobuf-c's own decoder, to the same items in the same
 * order as the messages they were packed from; an entry is valid only for
 * the state and creation time it was packed for; the kept buffer is reused
 * and a large one dropped; a response type that is not one repeated
 * message field is refused. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "runtime/packed_list.h"

#include "runtime/v1/api.pb-c.h"

static const ProtobufCMessageDescriptor *const list_desc = &runtime__v1__list_pod_sandbox_response__descriptor;

/* A pod entry with a label and an annotation of the given sizes. */
static void pod_entry(Runtime__V1__PodSandbox *p, Runtime__V1__PodSandboxMetadata *md,
		      Runtime__V1__PodSandbox__LabelsEntry *label, Runtime__V1__PodSandbox__LabelsEntry **labels,
		      char *id, char *value, int state, int64_t created)
{
	runtime__v1__pod_sandbox__init(p);
	runtime__v1__pod_sandbox_metadata__init(md);
	runtime__v1__pod_sandbox__labels_entry__init(label);
	md->name = id;
	md->uid = id;
	md->namespace_ = (char *)"default";
	label->key = (char *)"app";
	label->value = value;
	labels[0] = label;
	p->id = id;
	p->metadata = md;
	p->state = state;
	p->created_at = created;
	p->n_labels = 1;
	p->labels = labels;
	p->runtime_handler = (char *)"";
}

START_TEST(test_list_decodes_to_the_entries)
{
	enum { N = 50 };
	struct crid_packed_entry entries[N] = { 0 };
	struct crid_packed_list list = { 0 };
	struct crid_err err;
	Runtime__V1__ListPodSandboxResponse *resp;

	crid_err_clear(&err);
	crid_packed_list_begin(&list);
	for (int i = 0; i < N; i++) {
		Runtime__V1__PodSandbox p;
		Runtime__V1__PodSandboxMetadata md;
		Runtime__V1__PodSandbox__LabelsEntry label, *labels[1];
		char id[32];
		/* Values from 1 byte to 300 (two-byte length varints). */
		char *value = calloc(1, (size_t)(i * 6 + 2));

		ck_assert_ptr_nonnull(value);
		memset(value, 'v', (size_t)(i * 6 + 1));
		snprintf(id, sizeof(id), "pod-%02d", i);
		pod_entry(&p, &md, &label, labels, id, value, i % 2, 1000 + i);
		ck_assert_int_eq(crid_packed_entry_set(&entries[i], &p.base, i % 2, 1000 + i, &err), 0);
		ck_assert_int_eq(crid_packed_list_add(&list, list_desc, &entries[i], &err), 0);
		free(value);
	}
	resp = runtime__v1__list_pod_sandbox_response__unpack(NULL, list.len, list.buf);
	ck_assert_ptr_nonnull(resp);
	ck_assert_uint_eq(resp->n_items, N);
	for (int i = 0; i < N; i++) {
		char id[32];

		snprintf(id, sizeof(id), "pod-%02d", i);
		ck_assert_str_eq(resp->items[i]->id, id);
		ck_assert_str_eq(resp->items[i]->metadata->name, id);
		ck_assert_int_eq(resp->items[i]->state, i % 2);
		ck_assert_int_eq(resp->items[i]->created_at, 1000 + i);
		ck_assert_uint_eq(resp->items[i]->n_labels, 1);
		ck_assert_uint_eq(strlen(resp->items[i]->labels[0]->value), (size_t)(i * 6 + 1));
	}
	runtime__v1__list_pod_sandbox_response__free_unpacked(resp, NULL);
	for (int i = 0; i < N; i++)
		crid_packed_entry_clear(&entries[i]);
	crid_packed_list_free(&list);
}
END_TEST

START_TEST(test_empty_list_is_an_empty_message)
{
	struct crid_packed_list list = { 0 };
	Runtime__V1__ListPodSandboxResponse *resp;

	crid_packed_list_begin(&list);
	ck_assert_uint_eq(list.len, 0);
	resp = runtime__v1__list_pod_sandbox_response__unpack(NULL, 0, (const uint8_t *)"");
	ck_assert_ptr_nonnull(resp);
	ck_assert_uint_eq(resp->n_items, 0);
	runtime__v1__list_pod_sandbox_response__free_unpacked(resp, NULL);
	crid_packed_list_end(&list);
	crid_packed_list_free(&list);
}
END_TEST

START_TEST(test_entry_valid_for_what_it_was_packed_for)
{
	struct crid_packed_entry e = { 0 };
	Runtime__V1__PodSandbox p;
	Runtime__V1__PodSandboxMetadata md;
	Runtime__V1__PodSandbox__LabelsEntry label, *labels[1];
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert(!crid_packed_entry_valid(&e, 0, 0)); /* never packed */
	pod_entry(&p, &md, &label, labels, (char *)"a", (char *)"x", 1, 77);
	ck_assert_int_eq(crid_packed_entry_set(&e, &p.base, 1, 77, &err), 0);
	ck_assert(crid_packed_entry_valid(&e, 1, 77));
	ck_assert(!crid_packed_entry_valid(&e, 0, 77)); /* the state moved */
	ck_assert(!crid_packed_entry_valid(&e, 1, 78)); /* another object's time */
	/* Packed again for the new state: the bytes say so. */
	p.state = 0;
	ck_assert_int_eq(crid_packed_entry_set(&e, &p.base, 0, 77, &err), 0);
	ck_assert(crid_packed_entry_valid(&e, 0, 77));
	{
		Runtime__V1__PodSandbox *back = runtime__v1__pod_sandbox__unpack(NULL, e.len, e.data);

		ck_assert_ptr_nonnull(back);
		ck_assert_int_eq(back->state, 0);
		runtime__v1__pod_sandbox__free_unpacked(back, NULL);
	}
	crid_packed_entry_clear(&e);
	ck_assert(!crid_packed_entry_valid(&e, 0, 77));
}
END_TEST

START_TEST(test_buffer_kept_small_dropped_large)
{
	struct crid_packed_entry e = { 0 };
	struct crid_packed_list list = { 0 };
	Runtime__V1__PodSandbox p;
	Runtime__V1__PodSandboxMetadata md;
	Runtime__V1__PodSandbox__LabelsEntry label, *labels[1];
	char *big = malloc(64 << 10);
	struct crid_err err;
	uint8_t *kept;

	ck_assert_ptr_nonnull(big);
	memset(big, 'b', (64 << 10) - 1);
	big[(64 << 10) - 1] = '\0';
	crid_err_clear(&err);
	pod_entry(&p, &md, &label, labels, (char *)"a", (char *)"x", 1, 1);
	ck_assert_int_eq(crid_packed_entry_set(&e, &p.base, 1, 1, &err), 0);
	crid_packed_list_begin(&list);
	ck_assert_int_eq(crid_packed_list_add(&list, list_desc, &e, &err), 0);
	kept = list.buf;
	crid_packed_list_end(&list);
	ck_assert_ptr_eq(list.buf, kept); /* small: kept for the next answer */
	ck_assert_uint_eq(list.len, 0);
	label.value = big;
	ck_assert_int_eq(crid_packed_entry_set(&e, &p.base, 1, 1, &err), 0);
	crid_packed_list_begin(&list);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(crid_packed_list_add(&list, list_desc, &e, &err), 0);
	ck_assert_uint_gt(list.cap, 256 << 10);
	crid_packed_list_end(&list);
	ck_assert_ptr_null(list.buf); /* large: given back */
	ck_assert_uint_eq(list.cap, 0);
	crid_packed_entry_clear(&e);
	crid_packed_list_free(&list);
	free(big);
}
END_TEST

START_TEST(test_refuses_a_response_that_is_no_list)
{
	struct crid_packed_entry e = { 0 };
	struct crid_packed_list list = { 0 };
	Runtime__V1__PodSandbox p;
	Runtime__V1__PodSandboxMetadata md;
	Runtime__V1__PodSandbox__LabelsEntry label, *labels[1];
	struct crid_err err;

	crid_err_clear(&err);
	pod_entry(&p, &md, &label, labels, (char *)"a", (char *)"x", 1, 1);
	ck_assert_int_eq(crid_packed_entry_set(&e, &p.base, 1, 1, &err), 0);
	crid_packed_list_begin(&list);
	ck_assert_int_lt(crid_packed_list_add(&list, &runtime__v1__version_response__descriptor, &e, &err), 0);
	ck_assert_int_eq(err.status, CRID_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "VersionResponse"));
	ck_assert_uint_eq(list.len, 0);
	crid_packed_entry_clear(&e);
	crid_packed_list_free(&list);
}
END_TEST

static Suite *packed_list_suite(void)
{
	Suite *s = suite_create("packed_list");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_list_decodes_to_the_entries);
	tcase_add_test(tc, test_empty_list_is_an_empty_message);
	tcase_add_test(tc, test_entry_valid_for_what_it_was_packed_for);
	tcase_add_test(tc, test_buffer_kept_small_dropped_large);
	tcase_add_test(tc, test_refuses_a_response_that_is_no_list);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(packed_list_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
