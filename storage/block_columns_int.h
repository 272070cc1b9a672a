/* Internal to storage/: the columnar coding a disk fragment applies to a
 * packed block before zstd (docs/formats.md, "Block frame", codec 2).
 *
 * A packed block interleaves fixed-width entries with each cell's row and
 * value, so zstd spends a match on every row's prefix and several bytes a
 * cell on offsets that step evenly from cell to cell. The coding stores
 * instead: the header; the entries with their offsets replaced by what cannot be
 * derived (the row's shared prefix with the previous row, whether the
 * column repeats), stored plane by plane (byte b of every entry's word k
 * together), so equal fields become runs; then the rows' new suffixes,
 * the new columns and the values, each stream in cell order; then the
 * block's trailer. Decoding rebuilds the builder's canonical arrangement
 * (docs/formats.md, "What the builder writes"), so only blocks in that
 * arrangement are coded; the encoder says when a block is not. */
#ifndef INGOT_STORAGE_BLOCK_COLUMNS_INT_H
#define INGOT_STORAGE_BLOCK_COLUMNS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Codes the packed block blk[0, len) into out (room for len bytes) and
 *  sets *out_len (never more than len). blk is trusted to be a block the
 *  builder finished. Returns false, with out unspecified, if its pool is
 *  not in the canonical arrangement (then it must be stored otherwise). */
bool ig__columns_encode(const uint8_t *blk, size_t len, uint8_t *out, size_t *out_len);

/** Rebuilds the packed block of raw_len bytes from the untrusted coding
 *  in[0, len) into out (raw_len bytes). Returns 0, or IG_ECORRUPT with
 *  *err_offset set to the byte of `in` where the coding went wrong. The
 *  result still needs the packed block's own checks. */
int ig__columns_decode(const uint8_t *in, size_t len, uint8_t *out, size_t raw_len,
		       size_t *err_offset);

#endif
