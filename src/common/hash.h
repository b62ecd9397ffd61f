/* FNV-1a 64-bit hashing, for in-process hash tables and shape keys. */
#ifndef PGSCRIBE_HASH_H
#define PGSCRIBE_HASH_H

#include <stddef.h>
#include <stdint.h>

/** FNV-1a 64 offset basis: the @p h to start a chain of pgs_hash_fnv1a64 with. */
#define PGS_HASH_FNV1A64_INIT 0xcbf29ce484222325ULL

/** @brief Folds @p len bytes at @p data into the FNV-1a 64 hash @p h; start
 *         with PGS_HASH_FNV1A64_INIT and chain calls to hash several parts.
 *         Not for anything an attacker must not be able to collide. */
uint64_t pgs_hash_fnv1a64(uint64_t h, const void *data, size_t len);

#endif
