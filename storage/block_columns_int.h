/* Internal to storage/: the columnar coding a disk fragment applies to a
 * packed block before zstd (docs/formats.md, "Block frame", codec 2).
 *
 * A packed block interleaves fixed-width entries with each cell's row and
 * value, so zstd spends a match on every row's prefix and several bytes a
 * cell on offsets that step evenly from cell to cell. The coding stores
 * instead: the header; the entries with their offsets replaced by what
 * cannot be derived (the row's shared prefix with the previous row,
 * whether the column repeats), plane by plane (word k of every entry
 * together) so equal fields become runs; the sizes of the first two
 * streams; the streams: the rows' new suffixes, the new columns and the
 * values, each in cell order; the block's trailer. Decoding rebuilds the
 * builder's canonical arrangement
 * (docs/formats.md, "What the builder writes"), so only blocks in that
 * arrangement are coded; the encoder says when a block is not. */
#ifndef INGOT_STORAGE_BLOCK_COLUMNS_INT_H
#define INGOT_STORAGE_BLOCK_COLUMNS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The two stream sizes (rows, columns) after the planes: a coding is at
 * most this much longer than its block. */
#define IG__COLUMNS_SIZES 8u

/** Codes the packed block blk[0, len) into out (room for len +
 *  IG__COLUMNS_SIZES bytes) and sets *out_len (at most that). blk is
 *  trusted to be a block the builder finished. Returns false, with out unspecified, if its pool is
 *  not in the canonical arrangement (then it must be stored otherwise). */
bool ig__columns_encode(const uint8_t *blk, size_t len, uint8_t *out, size_t *out_len);

/** Rebuilds the packed block of raw_len bytes from the untrusted coding
 *  in[0, len) into out (raw_len bytes). Returns 0, or IG_ECORRUPT with
 *  *err_offset set to the byte of `in` where the coding went wrong. Every
 *  entry check of ig_packed_open is made on the way (kinds, lengths,
 *  families, key order in a sorted block), so the result needs only its
 *  header checked (ig__packed_open_entries_checked). */
int ig__columns_decode(const uint8_t *in, size_t len, uint8_t *out, size_t raw_len,
		       size_t *err_offset);

#endif
