/* Offset watermark of one partition: only the contiguous completed prefix
 * may be stored. Pure code. */
#ifndef PGSCRIBE_OFFSETS_H
#define PGSCRIBE_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgs_offsets_s pgs_offsets_t;

/* @locality any thread: every function here is pure. They are
 * called from the rebalance callback (new, free, position, committable) and
 * the producer's delivery-report callback (done). */
pgs_offsets_t *pgs_offsets_new(void);
void pgs_offsets_free(pgs_offsets_t *o);

/** @brief Records a consumed offset; offsets arrive in increasing order
 *         (gaps allowed). @returns -1 if not greater than the last tracked. */
int pgs_offsets_track(pgs_offsets_t *o, int64_t offset);
/** @brief Marks a tracked offset done. @returns -1 if it is not tracked. */
int pgs_offsets_done(pgs_offsets_t *o, int64_t offset);
/**
 * @brief The offset to store (last contiguous done offset + 1) if it moved
 *        since the previous call, else -1.
 */
int64_t pgs_offsets_committable(pgs_offsets_t *o);
/** @brief Next offset to store regardless of movement (-1 if none yet). */
int64_t pgs_offsets_position(const pgs_offsets_t *o);
/** @brief Tracked offsets not yet popped off the prefix (window size). */
size_t pgs_offsets_pending(const pgs_offsets_t *o);
/** @brief Offsets tracked and not done. */
size_t pgs_offsets_incomplete(const pgs_offsets_t *o);

#endif
