/* Internal to storage/: the portable CRC32C path, exported so the tests can
 * check the instruction path of ig_crc32c against it. */
#ifndef INGOT_STORAGE_CRC32C_INT_H
#define INGOT_STORAGE_CRC32C_INT_H

#include <stddef.h>
#include <stdint.h>

/** ig_crc32c computed with the byte table, never the CPU instruction. */
uint32_t ig__crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
