/* The size-tiered compaction policy: which contiguous run of a chain's
 * fragments to merge next, and the compaction debt as a number.
 *
 * Tiers. New fragments arrive at the newest end with about the same size
 * S (a serialized memory fragment). When min_merge fragments of similar
 * size (largest < factor x smallest) sit next to each other, they merge
 * into one about min_merge times larger, which lands in the next tier; the
 * chain therefore stays sorted by size, small and new to large and old,
 * and the picker only ever needs contiguous runs.
 *
 * Write amplification bound. A byte is written once when ingested and then
 * once per tier it climbs: merging moves it to a fragment at least
 * min_merge times larger (factor must be <= min_merge for the tiers to be
 * distinct), so after T total bytes it has been rewritten at most
 * about log_min_merge(T / S) times: W = bytes written / bytes ingested
 * <= 1 + log_min_merge(T / S) (plus one tier of slack where a run straddles
 * two tiers). The price is space and read fan-in: up to min_merge - 1
 * fragments wait in each tier, so the chain holds at most about
 * (min_merge - 1) x (1 + log_min_merge(T / S)) fragments — logarithmic in
 * the data, which keeps the merge's linear pick cheap.
 *
 * Sorted runs. The sizes the policy sees are those of sorted runs, not of
 * single fragments (ig__sorted_runs): adjacent fragments with disjoint
 * rows count as one. Merging them would copy bytes without combining a
 * single key, so a sequential load, whose every flush lies past the last,
 * is written once and never compacted; an overlapping flush starts a new
 * run and the tiers work as above. Reads pay nothing for it: a point read
 * skips a fragment whose rows do not hold its row before the bloom filter.
 *
 * Debt. ig__compact_debt replays the policy on a copy of the sizes and
 * sums the bytes it would rewrite before it has nothing left to pick: the
 * backlog that grows when compaction falls behind ingestion and shrinks by
 * each run's bytes as the compactor works it off.
 */
#include <stdlib.h>
#include <string.h>

#include "cell_int.h"
#include "compact_int.h"

static bool opts_valid(const ig__tier_opts_t *o)
{
	return o && o->factor >= 2 && o->min_merge >= 2 && o->max_merge >= o->min_merge;
}

/* The longest run of similar sizes starting at i (at most max_merge). A
 * zero size counts as 1 so an empty fragment still joins the smallest
 * tier. A fragment smaller than every one so far (a short flush, or what
 * a purge shrank) rides along without changing the run's tier: otherwise
 * it would split its tier into runs too short to merge and stay forever,
 * and the chain would grow without bound. */
static size_t similar_run(const uint64_t *sizes, size_t n, size_t i, const ig__tier_opts_t *o)
{
	uint64_t lo = sizes[i] ? sizes[i] : 1;
	size_t j = i + 1;
	for (; j < n && j - i < o->max_merge; j++) {
		uint64_t s = sizes[j] ? sizes[j] : 1;
		/* A larger one must be within factor of the run's first, the
		 * smallest of its tier (s < factor * lo, without overflow). */
		if (s >= lo && s / o->factor >= lo)
			break;
	}
	return j - i;
}

static uint64_t run_bytes(const uint64_t *sizes, size_t first, size_t count)
{
	uint64_t sum = 0;
	for (size_t k = first; k < first + count; k++)
		sum += sizes[k];
	return sum;
}

/* Is run (b, bn) better than (a, an)? Smaller mean first (merge the lowest
 * tier first, so bytes climb one tier at a time), then longer. Means are
 * compared by cross-multiplying in double to stay clear of overflow. */
static bool better(const uint64_t *sizes, size_t a, size_t an, size_t b, size_t bn)
{
	double ma = (double)run_bytes(sizes, a, an) * (double)bn;
	double mb = (double)run_bytes(sizes, b, bn) * (double)an;
	if (mb != ma)
		return mb < ma;
	return bn > an;
}

int ig__compact_pick(const uint64_t *sizes, size_t n, const ig__tier_opts_t *o,
		     size_t *first, size_t *count)
{
	if (!opts_valid(o) || (n && !sizes))
		return IG_EINVAL;
	size_t best = 0, best_n = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = similar_run(sizes, n, i, o);
		if (len < o->min_merge)
			continue;
		if (best_n == 0 || better(sizes, best, best_n, i, len)) {
			best = i;
			best_n = len;
		}
	}
	if (best_n == 0)
		return 0;
	*first = best;
	*count = best_n;
	return 1;
}

int ig__compact_debt(const uint64_t *sizes, size_t n, const ig__tier_opts_t *o,
		     uint64_t *out_bytes, size_t *out_merges)
{
	if (!opts_valid(o) || (n && !sizes))
		return IG_EINVAL;
	uint64_t *s = malloc((n ? n : 1) * sizeof *s);
	if (!s)
		return IG_ENOMEM;
	if (n)
		memcpy(s, sizes, n * sizeof *s);
	uint64_t bytes = 0;
	size_t merges = 0, first, count;
	/* Each merge removes at least one fragment, so this ends in < n steps. */
	while (ig__compact_pick(s, n, o, &first, &count) == 1) {
		uint64_t sum = run_bytes(s, first, count);
		bytes += sum;
		merges++;
		s[first] = sum;
		memmove(&s[first + 1], &s[first + count], (n - first - count) * sizeof *s);
		n -= count - 1;
	}
	free(s);
	*out_bytes = bytes;
	if (out_merges)
		*out_merges = merges;
	return 0;
}

/* ---- sorted runs ------------------------------------------------------------------ */

static bool span_below(const ig__row_span_t *a, const ig__row_span_t *b)
{
	return ig__bytes_cmp(a->last, a->last_len, b->first, b->first_len) < 0;
}

static bool disjoint(const ig__row_span_t *a, const ig__row_span_t *b)
{
	return span_below(a, b) || span_below(b, a);
}

/* Whether spans[k] is disjoint from every span of the run [from, k). The
 * run's lowest and highest rows decide most cases at once: a sequential
 * load's next span lies above them all. */
static bool joins_run(const ig__row_span_t *spans, size_t from, size_t k, size_t lo, size_t hi)
{
	if (span_below(&spans[k], &spans[lo]) || span_below(&spans[hi], &spans[k]))
		return true;
	for (size_t j = from; j < k; j++)
		if (!disjoint(&spans[j], &spans[k]))
			return false;
	return true;
}

size_t ig__sorted_runs(const ig__row_span_t *spans, size_t n, size_t *counts)
{
	size_t runs = 0, from = 0, lo = 0, hi = 0;

	for (size_t k = 0; k < n; k++) {
		bool known = spans[k].first != NULL;

		if (k > from && known && spans[from].first != NULL &&
		    joins_run(spans, from, k, lo, hi)) {
			if (span_below(&spans[k], &spans[lo]))
				lo = k;
			if (span_below(&spans[hi], &spans[k]))
				hi = k;
			counts[runs - 1]++;
			continue;
		}
		counts[runs++] = 1;
		from = lo = hi = k;
	}
	return runs;
}
