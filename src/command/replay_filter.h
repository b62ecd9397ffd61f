/* Replay filters: which dead letters a `pgscribe replay` run selects, and
 * how one is listed (identifiers and error headers, never the value). */
#ifndef PGSCRIBE_REPLAY_FILTER_H
#define PGSCRIBE_REPLAY_FILTER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

/** The options of one replay run. */
typedef struct {
    const char *path;
    const char *brokers;
    const char *dlq;
    const char **classes, **codes, **clinics; /* point into argv */
    int nclasses, ncodes, nclinics;
    int has_since, has_until;
    int64_t since_ms, until_ms;
    int list;
    int dry_run;
    long timeout_ms;
} pgs_replay_opts_t;

/** @brief Parses an RFC 3339 timestamp into ms since the epoch. @returns 0 or -1. */
int pgs_replay_filter_parse_time(const char *s, size_t len, int64_t *out_ms);
/** @returns 1 if @p name is a dead-letter class name. */
int pgs_replay_filter_class_known(const char *name);
/** @returns header @p name's value copied into @p buf, or NULL if absent or too long. */
const char *pgs_replay_filter_header(rd_kafka_headers_t *hdrs, const char *name, char *buf,
                                     size_t size);
/** @returns 1 if the dead letter passes every filter of @p o. */
int pgs_replay_filter_matches(const pgs_replay_opts_t *o, pgs_codec_t *codec,
                              const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs);
/** @brief Prints one JSON line for a dead letter, without its value. @returns 0 or -1. */
int pgs_replay_filter_print(const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs);

#endif
