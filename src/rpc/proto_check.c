/* The string checks of proto_check.h: a walk over the wire format guided by
 * the message descriptors, so that every RPC gets them without a line in
 * its handler. */
#include "rpc/proto_check.h"

#include <stdio.h>
#include <string.h>

#define PATH_MAX_LEN 256

bool crid_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false; /* a continuation byte, 0xc0/0xc1 (overlong) or past 0xf4 */
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Reads a varint; returns its length, 0 when malformed or cut short. */
static size_t read_varint(const uint8_t *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len && i < 10; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*out = v;
			return i + 1;
		}
	}
	return 0;
}

/* "outer.name": the path of a field inside the message at outer. A map's
 * entries are named by the map. */
static void path_join(char *out, size_t size, const char *outer, const char *name)
{
	snprintf(out, size, "%s%s%s", outer, *outer ? "." : "", name);
}

static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	return d->n_fields == 2 && strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

static int walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len, const char *path, int depth,
		struct crid_err *err)
{
	if (depth > CRID_PROTO_MAX_DEPTH)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: messages nested deeper than %d levels",
				    *path ? path : "request", CRID_PROTO_MAX_DEPTH);
	while (len > 0) {
		const ProtobufCFieldDescriptor *f;
		uint64_t tag, size;
		size_t n = read_varint(p, len, &tag);

		if (n == 0)
			return 0; /* malformed: the decoder says so */
		p += n;
		len -= n;
		switch (tag & 7) {
		case 0:
			if ((n = read_varint(p, len, &size)) == 0)
				return 0;
			break;
		case 1:
			n = 8;
			break;
		case 5:
			n = 4;
			break;
		case 2:
			if ((n = read_varint(p, len, &size)) == 0 || size > len - n)
				return 0;
			p += n;
			len -= n;
			n = (size_t)size;
			f = tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3))
						   : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_STRING) {
				char name[PATH_MAX_LEN];

				path_join(name, sizeof(name), path, f->name);
				if (memchr(p, '\0', n))
					return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: contains a NUL byte",
							    name);
				if (!crid_utf8_valid(p, n))
					return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not valid UTF-8", name);
			} else if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const ProtobufCMessageDescriptor *sub = f->descriptor;
				char name[PATH_MAX_LEN];
				int r;

				path_join(name, sizeof(name), path, f->name);
				/* A map entry's key and value are named by the map. */
				if (is_map_entry(sub)) {
					if ((r = walk(sub, p, n, "", depth + 1, err)) < 0)
						return crid_err_wrap(err, "%s ", name);
				} else if ((r = walk(sub, p, n, name, depth + 1, err)) < 0) {
					return r;
				}
			}
			break;
		default:
			return 0; /* groups are not CRI's: the decoder refuses them */
		}
		if (n > len)
			return 0;
		p += n;
		len -= n;
	}
	return 0;
}

int crid_proto_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
			     struct crid_err *err)
{
	return walk(desc, data, len, "", 0, err);
}
