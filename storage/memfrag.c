/* Memory fragments: a single-writer, reader-safe skip list of unique cells
 * over an arena (storage/memfrag_int.h holds the concurrency rule).
 *
 * Why a skip list: inserts arrive in log order, not key order, and readers
 * must be able to walk the list while the writer links new nodes. A node is
 * published with one release store per level, bottom level first, which is
 * all a lock-free reader needs; a balanced tree would need rotations that a
 * reader could observe half done.
 *
 * Why an arena: nodes are never freed one by one (a fragment is dropped
 * whole once flushed), so bump allocation from large chunks costs a few
 * instructions per cell and little memory beyond the cells themselves.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/storage.h>

#include "memfrag_int.h"

/* With a 1/4 chance of growing a level, 16 levels keep searches
 * logarithmic up to about 4^16 cells, far past a fragment's size. */
#define MF_MAX_HEIGHT 16
#define MF_CHUNK (256u << 10)

/* A cell's kind and value. Replacing a cell swaps in a new record, so a
 * reader never sees a kind from one write with the value of another. */
struct mf_val {
	uint32_t len;
	uint8_t kind;
	alignas(8) uint8_t bytes[];
};

struct ig__mf_node {
	const uint8_t *row;              /* in this node's allocation */
	const uint8_t *col;
	int64_t ts;
	uint32_t row_len;
	uint32_t col_len;
	_Atomic(struct mf_val *) val;    /* the latest write of this key */
	uint32_t height;                 /* levels in next[] */
	_Atomic(struct ig__mf_node *) next[];
};

struct mf_chunk {
	struct mf_chunk *prev;
	size_t size;                     /* bytes in data[] */
	size_t used;
	alignas(max_align_t) uint8_t data[];
};

struct ig__memfrag {
	struct ig__mf_node *head;        /* a tower of MF_MAX_HEIGHT, no key */
	struct mf_chunk *chunk;          /* the chunk being filled; writer only */
	uint64_t rng;                    /* node heights; writer only */
	atomic_bool frozen;
	_Atomic uint64_t cells;
	_Atomic uint64_t replaced;
	_Atomic uint64_t cell_bytes;
	_Atomic uint64_t arena_bytes;
};

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static size_t node_bytes(uint32_t height, uint32_t row_len, uint32_t col_len)
{
	return align8(sizeof(struct ig__mf_node) + height * sizeof(struct ig__mf_node *) +
		      row_len + col_len);
}

static size_t val_bytes(uint32_t len)
{
	return align8(sizeof(struct mf_val) + len);
}

/* The most arena bytes one cell can take: a new node of full height and its
 * value record (a replacement takes only the record). */
static size_t cell_reserve(const ig_cell_t *c)
{
	return node_bytes(MF_MAX_HEIGHT, c->key.row_len, c->key.column_len) +
	       val_bytes(c->value_len);
}

/* Makes sure the current chunk has `need` free bytes, so the allocations
 * that follow cannot fail; this is what makes apply all or nothing. */
static int arena_reserve(ig__memfrag_t *mf, size_t need)
{
	struct mf_chunk *c = mf->chunk;

	if (c != NULL && c->size - c->used >= need)
		return 0;
	size_t size = need > MF_CHUNK ? need : MF_CHUNK;
	c = malloc(sizeof *c + size);
	if (c == NULL)
		return IG_ENOMEM;
	c->prev = mf->chunk;
	c->size = size;
	c->used = 0;
	mf->chunk = c;
	atomic_fetch_add_explicit(&mf->arena_bytes, sizeof *c + size, memory_order_relaxed);
	return 0;
}

/* Takes n (a multiple of 8) bytes reserved by arena_reserve. */
static void *arena_take(ig__memfrag_t *mf, size_t n)
{
	struct mf_chunk *c = mf->chunk;
	void *p = c->data + c->used;

	c->used += n;
	return p;
}

int ig__memfrag_create(ig__memfrag_t **out)
{
	ig__memfrag_t *mf = calloc(1, sizeof *mf);

	if (mf == NULL)
		return IG_ENOMEM;
	mf->head = calloc(1, node_bytes(MF_MAX_HEIGHT, 0, 0));
	if (mf->head == NULL) {
		free(mf);
		return IG_ENOMEM;
	}
	mf->head->height = MF_MAX_HEIGHT;
	for (unsigned i = 0; i < MF_MAX_HEIGHT; i++)
		atomic_init(&mf->head->next[i], NULL);
	mf->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)mf;
	atomic_init(&mf->frozen, false);
	atomic_init(&mf->arena_bytes, node_bytes(MF_MAX_HEIGHT, 0, 0) + sizeof *mf);
	*out = mf;
	return 0;
}

void ig__memfrag_destroy(ig__memfrag_t *mf)
{
	if (mf == NULL)
		return;
	for (struct mf_chunk *c = mf->chunk, *prev; c != NULL; c = prev) {
		prev = c->prev;
		free(c);
	}
	free(mf->head);
	free(mf);
}

static int node_cmp(const struct ig__mf_node *n, const ig_cell_key_t *key)
{
	ig_cell_key_t k = {
		.row = n->row, .row_len = n->row_len,
		.column = n->col, .column_len = n->col_len,
		.timestamp = n->ts,
	};
	return ig_cell_key_cmp(&k, key);
}

/* Walks down from the top level; preds[i] gets the last node at level i
 * whose key is < key (or the head). Safe for readers and the writer. */
static const struct ig__mf_node *find_ge(const ig__memfrag_t *mf, const ig_cell_key_t *key,
					 struct ig__mf_node **preds)
{
	struct ig__mf_node *x = mf->head, *n = NULL;

	for (int lvl = MF_MAX_HEIGHT - 1; lvl >= 0; lvl--) {
		for (;;) {
			n = atomic_load_explicit(&x->next[lvl], memory_order_acquire);
			if (n == NULL || node_cmp(n, key) >= 0)
				break;
			x = n;
		}
		if (preds != NULL)
			preds[lvl] = x;
	}
	return n;
}

static uint32_t random_height(ig__memfrag_t *mf)
{
	uint32_t h = 1;

	mf->rng ^= mf->rng >> 12;
	mf->rng ^= mf->rng << 25;
	mf->rng ^= mf->rng >> 27;
	uint64_t r = mf->rng * 0x2545f4914f6cdd1dull;
	/* Two bits per level: each level is kept with probability 1/4. */
	while (h < MF_MAX_HEIGHT && (r & 3) == 0) {
		h++;
		r >>= 2;
	}
	return h;
}

static struct mf_val *make_val(ig__memfrag_t *mf, const ig_cell_t *c)
{
	struct mf_val *v = arena_take(mf, val_bytes(c->value_len));

	v->len = c->value_len;
	v->kind = (uint8_t)c->kind;
	if (c->value_len)
		memcpy(v->bytes, c->value, c->value_len);
	return v;
}

/* Inserts a checked cell whose bytes are already reserved in the arena. */
static void insert_reserved(ig__memfrag_t *mf, const ig_cell_t *c)
{
	struct ig__mf_node *preds[MF_MAX_HEIGHT];
	const struct ig__mf_node *ge = find_ge(mf, &c->key, preds);

	if (ge != NULL && node_cmp(ge, &c->key) == 0) {
		struct ig__mf_node *n = (struct ig__mf_node *)ge;
		struct mf_val *old = atomic_load_explicit(&n->val, memory_order_relaxed);

		atomic_store_explicit(&n->val, make_val(mf, c), memory_order_release);
		atomic_fetch_add_explicit(&mf->replaced, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&mf->cell_bytes, (uint64_t)c->value_len - old->len,
					  memory_order_relaxed);
		return;
	}

	uint32_t h = random_height(mf);
	struct ig__mf_node *n = arena_take(mf, node_bytes(h, c->key.row_len, c->key.column_len));
	uint8_t *bytes = (uint8_t *)&n->next[h];

	memcpy(bytes, c->key.row, c->key.row_len);
	memcpy(bytes + c->key.row_len, c->key.column, c->key.column_len);
	n->row = bytes;
	n->col = bytes + c->key.row_len;
	n->row_len = c->key.row_len;
	n->col_len = c->key.column_len;
	n->ts = c->key.timestamp;
	n->height = h;
	atomic_init(&n->val, make_val(mf, c));
	for (uint32_t i = 0; i < h; i++)
		atomic_init(&n->next[i],
			    atomic_load_explicit(&preds[i]->next[i], memory_order_relaxed));
	/* Publish bottom up: once a reader can reach the node at any level,
	 * everything above (key, value, its own links) is visible to it. */
	for (uint32_t i = 0; i < h; i++)
		atomic_store_explicit(&preds[i]->next[i], n, memory_order_release);
	atomic_fetch_add_explicit(&mf->cells, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mf->cell_bytes,
				  (uint64_t)c->key.row_len + c->key.column_len + c->value_len,
				  memory_order_relaxed);
}

int ig__memfrag_insert(ig__memfrag_t *mf, const ig_cell_t *cell)
{
	if (mf == NULL || cell == NULL || ig_cell_check(cell) != 0)
		return IG_EINVAL;
	if (atomic_load_explicit(&mf->frozen, memory_order_relaxed))
		return IG_ESTATE;
	int rc = arena_reserve(mf, cell_reserve(cell));
	if (rc != 0)
		return rc;
	insert_reserved(mf, cell);
	return 0;
}

int ig__memfrag_apply(ig__memfrag_t *mf, const ig_packed_t *block)
{
	uint32_t n = ig_packed_count(block);
	size_t need = 0;
	ig_cell_t c;

	if (atomic_load_explicit(&mf->frozen, memory_order_relaxed))
		return IG_ESTATE;
	/* An opened block holds only valid cells (ig_packed_open checked them),
	 * so only memory can fail, and it is reserved before the first insert. */
	for (uint32_t i = 0; i < n; i++) {
		ig_packed_cell(block, i, &c);
		need += cell_reserve(&c);
	}
	int rc = arena_reserve(mf, need);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		ig_packed_cell(block, i, &c);
		insert_reserved(mf, &c);
	}
	return 0;
}

void ig__memfrag_freeze(ig__memfrag_t *mf)
{
	atomic_store_explicit(&mf->frozen, true, memory_order_release);
}

bool ig__memfrag_frozen(const ig__memfrag_t *mf)
{
	return atomic_load_explicit(&((ig__memfrag_t *)mf)->frozen, memory_order_acquire);
}

void ig__memfrag_stats(const ig__memfrag_t *mf, ig__memfrag_stats_t *out)
{
	ig__memfrag_t *m = (ig__memfrag_t *)mf;

	out->cells = atomic_load_explicit(&m->cells, memory_order_relaxed);
	out->replaced = atomic_load_explicit(&m->replaced, memory_order_relaxed);
	out->cell_bytes = atomic_load_explicit(&m->cell_bytes, memory_order_relaxed);
	out->arena_bytes = atomic_load_explicit(&m->arena_bytes, memory_order_relaxed);
}

void ig__memfrag_iter_init(ig__memfrag_iter_t *it, const ig__memfrag_t *mf)
{
	it->mf = mf;
	it->next = atomic_load_explicit(&mf->head->next[0], memory_order_acquire);
}

void ig__memfrag_iter_seek(ig__memfrag_iter_t *it, const ig_cell_key_t *key)
{
	it->next = find_ge(it->mf, key, NULL);
}

void ig__memfrag_iter_seek_row(ig__memfrag_iter_t *it, const void *row, uint32_t row_len,
			       const void *column, uint32_t column_len)
{
	/* An empty column sorts before every column of the row, and INT64_MAX
	 * before every version of the column. */
	ig_cell_key_t k = {
		.row = row, .row_len = row_len,
		.column = column, .column_len = column ? column_len : 0,
		.timestamp = INT64_MAX,
	};
	ig__memfrag_iter_seek(it, &k);
}

int ig__memfrag_iter_next(ig__memfrag_iter_t *it, ig_cell_t *out)
{
	const struct ig__mf_node *n = it->next;

	if (n == NULL)
		return 0;
	const struct mf_val *v =
		atomic_load_explicit(&((struct ig__mf_node *)n)->val, memory_order_acquire);
	out->key.row = n->row;
	out->key.row_len = n->row_len;
	out->key.column = n->col;
	out->key.column_len = n->col_len;
	out->key.timestamp = n->ts;
	out->value = v->len ? v->bytes : NULL;
	out->value_len = v->len;
	out->kind = (ig_cell_kind_t)v->kind;
	it->next = atomic_load_explicit(&((struct ig__mf_node *)n)->next[0],
					memory_order_acquire);
	return 1;
}
