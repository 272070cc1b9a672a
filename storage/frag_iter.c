/* One cursor interface over memory and disk fragments (frag_iter_int.h):
 * the two vtables, each a thin shim over the fragment's own cursor. */
#include "frag_iter_int.h"

/* ---- memory fragments: never fail, own nothing ------------------------- */

static int mem_seek(ig__frag_iter_t *it, const ig_cell_key_t *key)
{
	ig__memfrag_iter_seek(&it->u.mem, key);
	return 0;
}

static int mem_seek_row(ig__frag_iter_t *it, const void *row, uint32_t row_len)
{
	ig__memfrag_iter_seek_row(&it->u.mem, row, row_len, NULL, 0);
	return 0;
}

static int mem_next(ig__frag_iter_t *it, ig_cell_t *out)
{
	return ig__memfrag_iter_next(&it->u.mem, out);
}

static const char *mem_error(const ig__frag_iter_t *it)
{
	(void)it;
	return "";
}

static void mem_fini(ig__frag_iter_t *it)
{
	(void)it;
}

static const ig__frag_iter_ops_t mem_ops = {
	.seek = mem_seek,
	.seek_row = mem_seek_row,
	.next = mem_next,
	.error = mem_error,
	.fini = mem_fini,
};

void ig__frag_iter_init_mem(ig__frag_iter_t *it, const ig__memfrag_t *mf)
{
	it->ops = &mem_ops;
	ig__memfrag_iter_init(&it->u.mem, mf);
}

/* ---- disk fragments: errors stick in the cursor ------------------------ */

static int disk_seek(ig__frag_iter_t *it, const ig_cell_key_t *key)
{
	return ig__diskfrag_iter_seek(&it->u.disk, key);
}

static int disk_seek_row(ig__frag_iter_t *it, const void *row, uint32_t row_len)
{
	return ig__diskfrag_iter_seek_row(&it->u.disk, row, row_len);
}

static int disk_next(ig__frag_iter_t *it, ig_cell_t *out)
{
	return ig__diskfrag_iter_next(&it->u.disk, out);
}

static const char *disk_error(const ig__frag_iter_t *it)
{
	return ig__diskfrag_iter_error(&it->u.disk);
}

static void disk_fini(ig__frag_iter_t *it)
{
	ig__diskfrag_iter_fini(&it->u.disk);
}

static const ig__frag_iter_ops_t disk_ops = {
	.seek = disk_seek,
	.seek_row = disk_seek_row,
	.next = disk_next,
	.error = disk_error,
	.fini = disk_fini,
};

void ig__frag_iter_init_disk(ig__frag_iter_t *it, ig__diskfrag_t *df)
{
	it->ops = &disk_ops;
	ig__diskfrag_iter_init(&it->u.disk, df);
}
