/* Internal to storage/: a table's tablets by row range. The tablets cover
 * every row exactly once: sorted by first row, each one's last row is the
 * next one's first, the first starts unbounded and the last ends so.
 *
 * Published like tablet chains (tablet_int.h): the sorted array is an
 * immutable view swapped with a release store under a writer mutex;
 * readers load it inside an RCU read-side section and take references on
 * the tablets they return; a replaced view and the map's references on the
 * tablets it held are dropped after synchronize_rcu. Readers must be
 * registered with liburcu (urcu_memb_register_thread); writers must not be
 * inside a read-side section.
 */
#ifndef INGOT_STORAGE_RANGE_MAP_INT_H
#define INGOT_STORAGE_RANGE_MAP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "tablet_int.h"

typedef struct ig__range_map ig__range_map_t;

/** Creates a map holding one tablet for every row, with ngroups locality
 *  groups. Ownership: ig__range_map_destroy. Returns 0, IG_EINVAL,
 *  IG_ENOMEM. */
int ig__range_map_create(size_t ngroups, ig__range_map_t **out);

/** Frees the map and drops its tablet references (any thread, once no
 *  other thread uses the map). NULL is ignored. */
void ig__range_map_destroy(ig__range_map_t *m);

/** Returns the number of tablets now. */
size_t ig__range_map_count(ig__range_map_t *m);

/** Finds the tablet holding row. Ownership: *out carries a reference
 *  (ig__tablet_unref). Returns 0 (every row has a tablet) or IG_EINVAL
 *  (row_len 0). */
int ig__range_map_find(ig__range_map_t *m, const void *row, uint32_t row_len,
		       ig__tablet_t **out);

/** The tablets a scan of rows [start, end) reads, in row order (len 0:
 *  unbounded). Ownership: *out is a malloc'd array of *n referenced
 *  tablets; unref each and free the array. Returns 0, IG_ENOMEM. */
int ig__range_map_range(ig__range_map_t *m, const void *start, uint32_t start_len,
			const void *end, uint32_t end_len, ig__tablet_t ***out, size_t *n);

/** Replaces every tablet by v[0..n) (sorted, covering every row once:
 *  recovery rebuilds a map from its configs). Takes references of its own.
 *  Returns 0, IG_EINVAL (a gap or overlap), IG_ENOMEM. */
int ig__range_map_load(ig__range_map_t *m, ig__tablet_t *const *v, size_t n);

/** Splits the tablet holding row at row (ig__tablet_split), swapping the
 *  two halves in. Returns 0, IG_EINVAL (row is already a tablet's first
 *  row), IG_ENOMEM. Scans already open on the old tablet go on reading it. */
int ig__range_map_split(ig__range_map_t *m, const void *row, uint32_t row_len);

/** Joins the tablet holding row with its right neighbour
 *  (ig__tablet_join). Returns 0, IG_ENOTFOUND (it is the last tablet),
 *  IG_ENOMEM. */
int ig__range_map_join(ig__range_map_t *m, const void *row, uint32_t row_len);

#endif
