/* The k-way merge of fragment cursors: newest source wins an identical
 * key; the erasure rule hides what a winning erasure covers (merge_int.h
 * states both rules). */
#include <stdlib.h>
#include <string.h>

#include "cell_int.h"
#include "merge_int.h"

typedef struct ig__merge_src {
	ig__merge_input_t in;
	ig_cell_t head;   /* the source's current cell, when live */
	bool live;        /* head holds a cell */
	bool pending;     /* head was consumed: pull before comparing again */
} ig__merge_src_t;

int ig__merge_init(ig__merge_t *m, const ig__merge_input_t *in, size_t n, unsigned flags)
{
	memset(m, 0, sizeof *m);
	if (n > 0) {
		m->src = calloc(n, sizeof *m->src);
		if (m->src == NULL)
			return IG_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		m->src[i].in = in[i];
		m->src[i].pending = true;
	}
	m->n = n;
	m->flags = flags;
	m->why = "";
	return 0;
}

void ig__merge_fini(ig__merge_t *m)
{
	free(m->src);
	free(m->ebuf);
	m->src = NULL;
	m->ebuf = NULL;
}

static void fail(ig__merge_t *m, ig__merge_src_t *s, int err)
{
	m->err = err;
	m->why = ig__frag_iter_error(s->in.it);
}

int ig__merge_seek(ig__merge_t *m, const ig_cell_key_t *key)
{
	if (m->err)
		return m->err;
	m->erased = false;
	for (size_t i = 0; i < m->n; i++) {
		ig__merge_src_t *s = &m->src[i];
		ig_cell_key_t k = *key;
		/* Below the clip: start at the clip's first row instead. */
		if (s->in.lo != NULL &&
		    ig__bytes_cmp(k.row, k.row_len, s->in.lo, s->in.lo_len) < 0) {
			k.row = s->in.lo;
			k.row_len = s->in.lo_len;
			k.column = NULL;
			k.column_len = 0;
			k.timestamp = INT64_MAX;
		}
		int rc = ig__frag_iter_seek(s->in.it, &k);
		if (rc < 0) {
			fail(m, s, rc);
			return rc;
		}
		s->live = false;
		s->pending = true;
	}
	return 0;
}

/* Refills a consumed head: the source's next cell inside its clip. */
static int pull(ig__merge_t *m, ig__merge_src_t *s)
{
	s->pending = false;
	for (;;) {
		int rc = ig__frag_iter_next(s->in.it, &s->head);
		if (rc < 0) {
			s->live = false;
			fail(m, s, rc);
			return rc;
		}
		s->live = rc == 1;
		if (!s->live)
			return 0;
		const ig_cell_key_t *k = &s->head.key;
		if (s->in.hi != NULL &&
		    ig__bytes_cmp(k->row, k->row_len, s->in.hi, s->in.hi_len) >= 0) {
			s->live = false;  /* past the clip: this source is done */
			return 0;
		}
		/* Only before a seek (init) can a source stand below its clip. */
		if (s->in.lo != NULL &&
		    ig__bytes_cmp(k->row, k->row_len, s->in.lo, s->in.lo_len) < 0)
			continue;
		return 0;
	}
}

/* Remembers the (row, column) a winning erasure covers; its bytes live in
 * a source that moves on, so they are copied. */
static int note_erasure(ig__merge_t *m, const ig_cell_t *c)
{
	size_t need = (size_t)c->key.row_len + c->key.column_len;
	if (need > m->ecap) {
		uint8_t *nb = realloc(m->ebuf, need);
		if (nb == NULL)
			return IG_ENOMEM;
		m->ebuf = nb;
		m->ecap = need;
	}
	memcpy(m->ebuf, c->key.row, c->key.row_len);
	if (c->key.column_len)
		memcpy(m->ebuf + c->key.row_len, c->key.column, c->key.column_len);
	m->erow_len = c->key.row_len;
	m->ecol_len = c->key.column_len;
	m->erased = true;
	return 0;
}

static bool covered(const ig__merge_t *m, const ig_cell_t *c)
{
	return m->erased && ig__bytes_eq(c->key.row, c->key.row_len, m->ebuf, m->erow_len) &&
	       ig__bytes_eq(c->key.column, c->key.column_len, m->ebuf + m->erow_len, m->ecol_len);
}

int ig__merge_next(ig__merge_t *m, ig_cell_t *out)
{
	for (;;) {
		if (m->err)
			return m->err;
		/* Pull lazily: a returned head must stay valid until this call. */
		for (size_t i = 0; i < m->n; i++) {
			if (m->src[i].pending) {
				int rc = pull(m, &m->src[i]);
				if (rc < 0)
					return rc;
			}
		}
		ig__merge_src_t *best = NULL;
		for (size_t i = 0; i < m->n; i++) {
			ig__merge_src_t *s = &m->src[i];
			/* Strictly smaller only: on a tie the earlier (newer) source stays. */
			if (s->live && (best == NULL || ig_cell_key_cmp(&s->head.key, &best->head.key) < 0))
				best = s;
		}
		if (best == NULL)
			return 0;
		/* The winner and every older holder of the same key move on. */
		for (size_t i = 0; i < m->n; i++) {
			ig__merge_src_t *s = &m->src[i];
			if (s == best || (s->live && ig_cell_key_cmp(&s->head.key, &best->head.key) == 0))
				s->pending = true;
		}
		const ig_cell_t *c = &best->head;
		if (m->flags & IG__MERGE_HIDE) {
			if (covered(m, c))
				continue;
			m->erased = false;
			if (c->kind == IG_CELL_ERASURE) {
				int rc = note_erasure(m, c);
				if (rc < 0) {
					m->err = rc;
					m->why = "out of memory";
					return rc;
				}
				continue;
			}
		}
		*out = *c;
		return 1;
	}
}

const char *ig__merge_error(const ig__merge_t *m)
{
	return m->why ? m->why : "";
}
