/* Schema wait: a message whose schema id the registry cannot be asked about
 * now (unreachable, a time-out, a 5xx) is neither decoded nor dead-lettered.
 * It waits, holding its partition: every later message of that partition
 * waits behind it in consumption order (none is decoded ahead of it, so key
 * order holds), the partition is paused, and the held messages are taken in
 * again, in order, once the registry answers. Their offsets stay tracked
 * and undone meanwhile, so nothing is committed past them. */
#ifndef PGSCRIBE_SCHEMAWAIT_H
#define PGSCRIBE_SCHEMAWAIT_H

#include <stddef.h>

#include "run/work.h"

typedef struct pgs_worker_s pgs_worker_t;

/** @brief Makes the registry client of schema_registry.* (none when the
 *         url is empty) and gives the codec its resolver.
 *  @returns 0, or -1 with @p errstr. */
int pgs_schemawait_init(pgs_worker_t *w, char *errstr, size_t errstr_size);
void pgs_schemawait_free(pgs_worker_t *w);
/** @returns 1 while @p p holds messages for the registry. */
int pgs_schemawait_holding(const pgs_partition_t *p);
/** @brief Holds @p work at the end of its partition's waiting messages;
 *         @p why (PHI-free) is logged once per spell. */
void pgs_schemawait_hold(pgs_worker_t *w, pgs_work_t *work, const char *why);
/** @brief Takes the held messages in again when their retry is due. */
void pgs_schemawait_tick(pgs_worker_t *w);
/** @brief Frees the held messages of partitions @p pred names (revoked:
 *         the next owner reads them again). @returns how many. */
size_t pgs_schemawait_release(pgs_worker_t *w, int (*pred)(const pgs_work_t *));
/** @returns the held messages of partitions @p pred names (all for NULL). */
size_t pgs_schemawait_held(const pgs_worker_t *w, int (*pred)(const pgs_work_t *));

#endif
