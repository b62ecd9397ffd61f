/* Topic readiness: metadata with leaders, then a watermark query per
 * partition, retried every 100 ms until a deadline. */
#include "common/topicready.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "common/clock.h"

/* @returns 1 when every partition of @p topic is ready, 0 if not (the
 *          reason in @p err), with the partition count in @p *cnt. */
static int topic_ready_once(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic, int *cnt,
                            char *err, size_t err_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    if (e) {
        snprintf(err, err_size, "metadata: %s", rd_kafka_err2str(e));
        return 0;
    }
    int ready = 0;
    const struct rd_kafka_metadata_topic *t = md->topic_cnt == 1 ? &md->topics[0] : NULL;
    if (!t || t->err) {
        snprintf(err, err_size, "metadata: %s",
                 t ? rd_kafka_err2str(t->err) : "topic missing from the answer");
    } else if (t->partition_cnt <= 0) {
        snprintf(err, err_size, "metadata: no partitions yet");
    } else {
        ready = 1;
        *cnt = t->partition_cnt;
        for (int i = 0; ready && i < t->partition_cnt; i++) {
            const struct rd_kafka_metadata_partition *p = &t->partitions[i];
            if (p->err || p->leader < 0) {
                snprintf(err, err_size, "partition %d: %s", (int)p->id,
                         p->err ? rd_kafka_err2str(p->err) : "no leader yet");
                ready = 0;
            }
        }
        for (int i = 0; ready && i < t->partition_cnt; i++) {
            int64_t lo = 0, hi = 0;
            e = rd_kafka_query_watermark_offsets(rk, topic, t->partitions[i].id, &lo, &hi, 5000);
            if (e) {
                snprintf(err, err_size, "partition %d: %s", (int)t->partitions[i].id,
                         rd_kafka_err2str(e));
                ready = 0;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    return ready;
}

int pgs_topicready_wait(rd_kafka_t *rk, const char *topic, int timeout_ms, int *partitions,
                        char *err, size_t err_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        snprintf(err, err_size, "%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    int64_t deadline = pgs_clock_now_us() + (int64_t)timeout_ms * 1000;
    int cnt = 0, ready;
    char why[256] = "not asked";
    while (!(ready = topic_ready_once(rk, rkt, topic, &cnt, why, sizeof(why))) &&
           pgs_clock_now_us() < deadline) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rd_kafka_topic_destroy(rkt);
    if (!ready) {
        snprintf(err, err_size, "topic %s not ready within %d ms (%s)", topic, timeout_ms, why);
        return -1;
    }
    if (partitions)
        *partitions = cnt;
    return 0;
}
