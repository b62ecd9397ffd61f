/* Resume floors (migration 0015, docs/dr.md): the setting a command
 * transaction passes so that each of its idempotency records carries its
 * partition's floor, the offset below which every message of the partition
 * was final when the transaction began. A rewind never starts above the
 * highest floor the database kept, so a command that committed after a
 * later one of its partition is never skipped. */
#ifndef PGSCRIBE_FLOORS_H
#define PGSCRIBE_FLOORS_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Writes "IDENTITY,P:FLOOR,P:FLOOR," into @p out: the identity the
 *        worker last checked (pgscribe.resume_floors_checked honours the
 *        floors only on that database) and each distinct partition of
 *        @p parts with its floor from @p floors (negative: unknown, left
 *        out; the first floor given for a partition wins).
 * @returns 0, or -1 (and "" in @p out) when @p identity is empty or the
 *          text does not fit: no floor is then recorded, never a wrong one.
 */
int pgs_floors_format(const char *identity, const int32_t *parts, const int64_t *floors, int n,
                      char *out, size_t out_size);

#endif
