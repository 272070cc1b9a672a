/* The msgpack codec for message envelopes: ig_msg_encode / ig_msg_decode.
 *
 * An envelope is the msgpack array [1, type, sender-path-or-nil, payload-bin]
 * (docs/formats.md, "Runtime message envelope (msgpack)"). Encoding goes
 * through msgpack-c's packer into one buffer of the exact size. Decoding
 * reads untrusted bytes: msgpack-c's C unpacker has no size limits and
 * allocates arrays and maps from their declared counts, so we never hand it
 * anything but a scalar whose marker, declared length and bytes we have
 * already checked; it then extracts the value. The outer array header is
 * read here, for the same reason.
 */
#include <msgpack.h>
#include <string.h>

#include "runtime_int.h"

#define ENV_VERSION 1
#define ENV_ITEMS 4
#define PAYLOAD_MAX ((size_t)64 << 20) /* 64 MiB */
#define PATH_MAX_BYTES 512

/* ---- encoding ---------------------------------------------------------------- */

/* A packer target of fixed capacity: the size is computed up front, so a
 * large payload costs one allocation and one copy. */
typedef struct fixed_buf {
	char *data;
	size_t len, cap;
} fixed_buf_t;

static int fixed_write(void *arg, const char *p, size_t n)
{
	fixed_buf_t *b = arg;
	if (n == 0)
		return 0; /* an empty payload's body: p may be NULL */
	if (n > b->cap - b->len)
		return -1; /* cannot happen if the size computation is right */
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* Bytes msgpack's smallest encoding of an unsigned integer takes. */
static size_t uint_size(uint64_t v)
{
	return v < 128 ? 1 : v <= UINT8_MAX ? 2 : v <= UINT16_MAX ? 3 : v <= UINT32_MAX ? 5 : 9;
}

static size_t str_header_size(size_t n)
{
	return n < 32 ? 1 : n <= UINT8_MAX ? 2 : n <= UINT16_MAX ? 3 : 5;
}

static size_t bin_header_size(size_t n)
{
	return n <= UINT8_MAX ? 2 : n <= UINT16_MAX ? 3 : 5;
}

/* The sender's path, or "" when there is none to name: no sender, or one
 * that is already gone (a reply to it could not be delivered anyway). */
static int sender_path(ig_ref_t sender, char *buf, size_t len)
{
	buf[0] = '\0';
	if (ig_ref_is_none(sender))
		return 0;
	int rc = ig_ref_path(sender, buf, len);
	if (rc == IG_ENOACTOR) {
		buf[0] = '\0';
		return 0;
	}
	return rc; /* IG_ERANGE: a path longer than the format allows */
}

int ig_msg_encode(ig_system_t *sys, const ig_msg_t *msg, void **out, size_t *out_len)
{
	(void)sys; /* paths name actors by themselves; sys is for symmetry */
	if (!msg || !out || !out_len || (msg->size && !msg->data))
		return IG_EINVAL;
	if (msg->size > PAYLOAD_MAX)
		return IG_ERANGE; /* never write what a decoder must refuse */
	char path[PATH_MAX_BYTES + 1];
	int rc = sender_path(msg->sender, path, sizeof path);
	if (rc)
		return rc;
	size_t plen = strlen(path);
	size_t total = 1 + uint_size(ENV_VERSION) + uint_size(msg->type) +
		       (plen ? str_header_size(plen) + plen : 1) +
		       bin_header_size(msg->size) + msg->size;
	fixed_buf_t b = {.data = malloc(total), .cap = total};
	if (!b.data)
		return IG_ENOMEM;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, fixed_write);
	int bad = msgpack_pack_array(&pk, ENV_ITEMS);
	bad |= msgpack_pack_uint32(&pk, ENV_VERSION);
	bad |= msgpack_pack_uint32(&pk, msg->type);
	if (plen)
		bad |= msgpack_pack_str_with_body(&pk, path, plen);
	else
		bad |= msgpack_pack_nil(&pk);
	bad |= msgpack_pack_bin_with_body(&pk, msg->data, msg->size);
	IG_ASSERT(!bad && b.len == total);
	*out = b.data;
	*out_len = total;
	return 0;
}

/* ---- decoding ------------------------------------------------------------------ */

enum item_kind { ITEM_INT, ITEM_NIL, ITEM_STR, ITEM_BIN, ITEM_ARRAY, ITEM_OTHER };

/* What an item's marker byte says: its kind, the bytes of its header, and
 * for str, bin and array the width of the big-endian length that follows
 * the marker (0 when the length sits in the marker itself). */
typedef struct item_head {
	enum item_kind kind;
	size_t head;    /* marker plus length field, or the whole int */
	unsigned lenw;  /* bytes of the length field */
	size_t inl_len; /* fixstr / fixarray length */
} item_head_t;

static item_head_t classify(uint8_t m)
{
	if (m <= 0x7f || m >= 0xe0) /* positive and negative fixint */
		return (item_head_t){ITEM_INT, 1, 0, 0};
	if (m >= 0x90 && m <= 0x9f)
		return (item_head_t){ITEM_ARRAY, 1, 0, m & 0x0fu};
	if (m >= 0xa0 && m <= 0xbf)
		return (item_head_t){ITEM_STR, 1, 0, m & 0x1fu};
	switch (m) {
	case 0xc0: return (item_head_t){ITEM_NIL, 1, 0, 0};
	case 0xc4: return (item_head_t){ITEM_BIN, 2, 1, 0};
	case 0xc5: return (item_head_t){ITEM_BIN, 3, 2, 0};
	case 0xc6: return (item_head_t){ITEM_BIN, 5, 4, 0};
	case 0xcc: case 0xd0: return (item_head_t){ITEM_INT, 2, 0, 0};
	case 0xcd: case 0xd1: return (item_head_t){ITEM_INT, 3, 0, 0};
	case 0xce: case 0xd2: return (item_head_t){ITEM_INT, 5, 0, 0};
	case 0xcf: case 0xd3: return (item_head_t){ITEM_INT, 9, 0, 0};
	case 0xd9: return (item_head_t){ITEM_STR, 2, 1, 0};
	case 0xda: return (item_head_t){ITEM_STR, 3, 2, 0};
	case 0xdb: return (item_head_t){ITEM_STR, 5, 4, 0};
	case 0xdc: return (item_head_t){ITEM_ARRAY, 3, 2, 0};
	case 0xdd: return (item_head_t){ITEM_ARRAY, 5, 4, 0};
	default: return (item_head_t){ITEM_OTHER, 1, 0, 0};
	}
}

static uint64_t read_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The reader over the untrusted bytes; `off` only moves past bytes that
 * were accepted, so on failure it is the offset the caller reports. */
typedef struct reader {
	const uint8_t *p;
	size_t len, off;
	msgpack_unpacked u;
} reader_t;

/* Checks the item at r->off: a kind in `allowed` (a bit per item_kind),
 * a header and a body that fit in the input, a declared length of at most
 * max. On success *h is its header and *body_len its declared length. */
static int check_item(const reader_t *r, unsigned allowed, uint64_t max, item_head_t *h,
		      uint64_t *body_len)
{
	if (r->off >= r->len)
		return IG_ECORRUPT;
	*h = classify(r->p[r->off]);
	if (!(allowed & (1u << h->kind)))
		return IG_ECORRUPT;
	size_t left = r->len - r->off;
	if (left < h->head)
		return IG_ECORRUPT;
	uint64_t n = h->lenw ? read_be(r->p + r->off + 1, h->lenw) : h->inl_len;
	if (n > max)
		return IG_ECORRUPT;
	/* arrays are walked item by item; str and bin bodies must be here */
	if ((h->kind == ITEM_STR || h->kind == ITEM_BIN) && n > left - h->head)
		return IG_ECORRUPT;
	*body_len = n;
	return 0;
}

/* Lets msgpack-c parse one checked scalar item of `size` bytes at r->off
 * and moves past it. */
static int unpack_scalar(reader_t *r, size_t size, msgpack_object_type want,
			 msgpack_object_type also)
{
	size_t noff = r->off;
	msgpack_unpack_return ret =
		msgpack_unpack_next(&r->u, (const char *)r->p, r->len, &noff);
	if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
		return IG_ENOMEM;
	if (ret != MSGPACK_UNPACK_SUCCESS || noff != r->off + size ||
	    (r->u.data.type != want && r->u.data.type != also))
		return IG_ECORRUPT; /* our check and msgpack-c disagree: refuse */
	r->off = noff;
	return 0;
}

#define KIND(k) (1u << (k))

/* An unsigned integer of at most max (negative ones are refused). */
static int read_uint(reader_t *r, uint64_t max, uint64_t *out)
{
	item_head_t h;
	uint64_t n;
	int rc = check_item(r, KIND(ITEM_INT), 0, &h, &n);
	if (rc)
		return rc;
	size_t at = r->off;
	rc = unpack_scalar(r, h.head, MSGPACK_OBJECT_POSITIVE_INTEGER,
			   MSGPACK_OBJECT_POSITIVE_INTEGER);
	if (rc == 0 && r->u.data.via.u64 > max) {
		r->off = at;
		rc = IG_ECORRUPT;
	}
	if (rc == 0)
		*out = r->u.data.via.u64;
	return rc;
}

static int read_array_header(reader_t *r, uint64_t *count)
{
	item_head_t h;
	int rc = check_item(r, KIND(ITEM_ARRAY), UINT32_MAX, &h, count);
	if (rc == 0)
		r->off += h.head;
	return rc;
}

/* A str of at most PATH_MAX_BYTES or nil; *path points into the input
 * (NULL for nil). */
static int read_path(reader_t *r, const char **path, size_t *plen)
{
	item_head_t h;
	uint64_t n;
	int rc = check_item(r, KIND(ITEM_STR) | KIND(ITEM_NIL), PATH_MAX_BYTES, &h, &n);
	if (rc)
		return rc;
	size_t at = r->off;
	rc = unpack_scalar(r, h.head + n, MSGPACK_OBJECT_STR, MSGPACK_OBJECT_NIL);
	if (rc)
		return rc;
	if (r->u.data.type == MSGPACK_OBJECT_NIL) {
		*path = NULL;
		*plen = 0;
		return 0;
	}
	const char *s = r->u.data.via.str.ptr;
	size_t l = r->u.data.via.str.size;
	/* A path is absolute, and a NUL would make C see a different one. */
	if (l == 0 || s[0] != '/' || memchr(s, '\0', l)) {
		r->off = at;
		return IG_ECORRUPT;
	}
	*path = s;
	*plen = l;
	return 0;
}

/* A bin of at most PAYLOAD_MAX; *data points into the input. */
static int read_payload(reader_t *r, const void **data, size_t *size)
{
	item_head_t h;
	uint64_t n;
	int rc = check_item(r, KIND(ITEM_BIN), PAYLOAD_MAX, &h, &n);
	if (rc)
		return rc;
	rc = unpack_scalar(r, h.head + n, MSGPACK_OBJECT_BIN, MSGPACK_OBJECT_BIN);
	if (rc == 0) {
		*data = r->u.data.via.bin.ptr;
		*size = r->u.data.via.bin.size;
	}
	return rc;
}

/* The decoded fields, still pointing into the input. */
typedef struct envelope {
	uint32_t type;
	const char *path;
	size_t plen;
	const void *payload;
	size_t size;
} envelope_t;

static int parse(reader_t *r, envelope_t *e)
{
	uint64_t count, version, type;
	int rc = read_array_header(r, &count);
	if (rc)
		return rc;
	/* The version comes first so that a newer envelope is refused at its
	 * version rather than at its (possibly different) item count. */
	if (count == 0) {
		r->off = 0;
		return IG_ECORRUPT;
	}
	size_t at = r->off;
	if ((rc = read_uint(r, UINT64_MAX, &version)) != 0)
		return rc;
	if (version != ENV_VERSION) {
		r->off = at;
		return IG_ECORRUPT;
	}
	if (count != ENV_ITEMS) {
		r->off = 0; /* the array header announced the wrong shape */
		return IG_ECORRUPT;
	}
	if ((rc = read_uint(r, UINT32_MAX, &type)) != 0)
		return rc;
	e->type = (uint32_t)type;
	if ((rc = read_path(r, &e->path, &e->plen)) != 0)
		return rc;
	if ((rc = read_payload(r, &e->payload, &e->size)) != 0)
		return rc;
	if (r->off != r->len)
		return IG_ECORRUPT; /* trailing bytes: stop at the first */
	return 0;
}

/* The live actor at path in sys, or IG_NOREF. */
static ig_ref_t resolve(ig_system_t *sys, const char *path, size_t plen)
{
	char buf[PATH_MAX_BYTES + 1];
	ig_ref_t ref = IG_NOREF;
	if (!sys || !path)
		return IG_NOREF;
	memcpy(buf, path, plen);
	buf[plen] = '\0';
	if (ig_lookup(sys, buf, &ref) != 0)
		return IG_NOREF;
	return ref;
}

int ig_msg_decode(ig_system_t *sys, const void *buf, size_t len, uint32_t *type,
		  void **payload, size_t *payload_len, ig_ref_t *sender, size_t *err_offset)
{
	if ((!buf && len) || !type || !payload || !payload_len)
		return IG_EINVAL;
	reader_t r = {.p = buf, .len = len};
	msgpack_unpacked_init(&r.u);
	envelope_t e = {0};
	int rc = parse(&r, &e);
	void *copy = NULL;
	if (rc == 0 && e.size && !(copy = malloc(e.size)))
		rc = IG_ENOMEM;
	if (rc == 0 && e.size)
		memcpy(copy, e.payload, e.size);
	msgpack_unpacked_destroy(&r.u);
	if (rc) {
		if (rc == IG_ECORRUPT && err_offset)
			*err_offset = r.off;
		return rc;
	}
	*type = e.type;
	*payload = copy;
	*payload_len = e.size;
	if (sender)
		*sender = resolve(sys, e.path, e.plen);
	return 0;
}
