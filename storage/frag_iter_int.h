/* Internal to storage/: one cursor interface over memory and disk
 * fragments, so the merge never asks which kind it reads.
 *
 * A small vtable (seek, seek_row, next, error, fini) in front of the two
 * cursors; the cursor itself is embedded in a union, so opening one never
 * allocates. One thread at a time per cursor.
 */
#ifndef INGOT_STORAGE_FRAG_ITER_INT_H
#define INGOT_STORAGE_FRAG_ITER_INT_H

#include <stdint.h>

#include <ingot/storage.h>

#include "diskfrag_int.h"
#include "memfrag_int.h"

typedef struct ig__frag_iter ig__frag_iter_t;

/** What each kind of fragment cursor provides. Errors as the fragment's
 *  own cursor; a memory cursor never fails. */
typedef struct ig__frag_iter_ops {
	/* Before the first cell whose key is >= key. */
	int (*seek)(ig__frag_iter_t *it, const ig_cell_key_t *key);
	/* Before the first cell of row (its newest version of its first column). */
	int (*seek_row)(ig__frag_iter_t *it, const void *row, uint32_t row_len);
	/* 1 and *out, 0 at the end, or a negative error that sticks. */
	int (*next)(ig__frag_iter_t *it, ig_cell_t *out);
	/* The text of the last error, "" if none. */
	const char *(*error)(const ig__frag_iter_t *it);
	/* Frees buffers, drops references. */
	void (*fini)(ig__frag_iter_t *it);
} ig__frag_iter_ops_t;

struct ig__frag_iter {
	const ig__frag_iter_ops_t *ops;
	union {
		ig__memfrag_iter_t mem;
		ig__diskfrag_iter_t disk;
	} u;
};

/** Opens a cursor before the first cell of a memory fragment. The
 *  fragment is borrowed: the caller keeps it alive (a pinned tablet view
 *  does) until fini. Cells returned stay valid as long as the fragment. */
void ig__frag_iter_init_mem(ig__frag_iter_t *it, const ig__memfrag_t *mf);

/** Opens a cursor before the first cell of a disk fragment; takes its own
 *  reference on df (dropped by fini). Cells returned are valid until the
 *  next call on the cursor. */
void ig__frag_iter_init_disk(ig__frag_iter_t *it, ig__diskfrag_t *df);

static inline int ig__frag_iter_seek(ig__frag_iter_t *it, const ig_cell_key_t *key)
{
	return it->ops->seek(it, key);
}

static inline int ig__frag_iter_seek_row(ig__frag_iter_t *it, const void *row, uint32_t row_len)
{
	return it->ops->seek_row(it, row, row_len);
}

static inline int ig__frag_iter_next(ig__frag_iter_t *it, ig_cell_t *out)
{
	return it->ops->next(it, out);
}

static inline const char *ig__frag_iter_error(const ig__frag_iter_t *it)
{
	return it->ops->error(it);
}

/** Releases what the cursor holds; the cursor may then be re-initialised. */
static inline void ig__frag_iter_fini(ig__frag_iter_t *it)
{
	it->ops->fini(it);
}

#endif
