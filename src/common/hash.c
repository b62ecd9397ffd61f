/* FNV-1a 64-bit hashing, for in-process hash tables and shape keys. */
#include "common/hash.h"

uint64_t pgs_hash_fnv1a64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
