/* Fault-injection commands of `pgscribe broker` (the mock cluster): parsing
 * of one control line, kept pure so it is testable without a cluster. */
#ifndef PGSCRIBE_BROKER_H
#define PGSCRIBE_BROKER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/* Kafka's own limit on a topic name's length. */
#define PGS_BROKER_TOPIC_MAX 249
/* Upper bound of one `errors` command, so a typo cannot exhaust memory. */
#define PGS_BROKER_ERRORS_MAX 100000

typedef enum {
    PGS_BROKER_CMD_TOPIC,   /* topic NAME PARTITIONS */
    PGS_BROKER_CMD_DOWN,    /* down BROKER_ID */
    PGS_BROKER_CMD_UP,      /* up BROKER_ID */
    PGS_BROKER_CMD_ERRORS,  /* errors API COUNT ERRNAME [BROKER_ID] */
    PGS_BROKER_CMD_CLEAR,   /* clear API */
    PGS_BROKER_CMD_RTT,     /* rtt BROKER_ID MS */
    PGS_BROKER_CMD_LEADER,  /* leader TOPIC PARTITION BROKER_ID */
    PGS_BROKER_CMD_PENDING, /* pending BROKER_ID API */
} pgs_broker_cmd_kind_t;

typedef struct {
    pgs_broker_cmd_kind_t kind;
    char topic[PGS_BROKER_TOPIC_MAX + 1];
    int partitions;    /* topic: partition count; leader: the partition */
    int32_t broker_id; /* -1 = every broker; errors: the whole cluster */
    int16_t api_key;
    int count;
    rd_kafka_resp_err_t err;
    int rtt_ms;
} pgs_broker_cmd_t;

/**
 * @brief Parses one control line (words separated by blanks; API and error
 *        names case-insensitive; error names as Kafka spells them, e.g.
 *        NOT_LEADER_OR_FOLLOWER, or librdkafka's, or a number).
 * @returns 0 with @p cmd filled, 1 for a blank or `#` comment line (nothing to
 *          do), -1 with a reason in @p errstr.
 * @locality any thread
 */
int pgs_broker_cmd_parse(const char *line, pgs_broker_cmd_t *cmd, char *errstr, size_t errstr_size);

#endif
