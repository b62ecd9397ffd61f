/* Consumer lag of the commands stream from cached watermarks and the
 * committed offsets learnt at assignment (ListConsumerGroupOffsets on a queue
 * of its own, polled without waiting): a partition just assigned reports its
 * real lag, not the distance from its low watermark. */
#include <stdint.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "run/consume.h"
#include "run/lag.h"
#include "run/worker.h"

void pgs_lag_request(pgs_worker_t *w, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
    if (!w->lag_queue)
        w->lag_queue = rd_kafka_queue_new(rk);
    rd_kafka_ListConsumerGroupOffsets_t *req =
        rd_kafka_ListConsumerGroupOffsets_new(pgs_config_str(w->cfg, "consumer.group"), parts);
    rd_kafka_AdminOptions_t *opt =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_AdminOptions_set_request_timeout(opt, 10000, NULL, 0);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opt, w->lag_queue);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
}

static void lag_record(pgs_worker_t *w, const rd_kafka_topic_partition_list_t *pl)
{
    for (int i = 0; pl && i < pl->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &pl->elems[i];
        pgs_stream_t *st = pgs_consume_stream_of_topic(w, tp->topic);
        if (!st || tp->err || tp->partition < 0 || tp->partition >= st->parts_cnt)
            continue;
        pgs_partition_t *p = st->parts[tp->partition];
        if (p && p->assigned && p->committed == PGS_LAG_COMMITTED_UNKNOWN)
            p->committed = tp->offset >= 0 ? tp->offset : PGS_LAG_COMMITTED_NONE;
    }
}

void pgs_lag_serve(pgs_worker_t *w)
{
    rd_kafka_event_t *ev;
    while (w->lag_queue && (ev = rd_kafka_queue_poll(w->lag_queue, 0)) != NULL) {
        const rd_kafka_ListConsumerGroupOffsets_result_t *res =
            rd_kafka_event_ListConsumerGroupOffsets_result(ev);
        if (rd_kafka_event_error(ev) || !res) {
            /* the lag of those partitions stays 0 until a message arrives */
            pgs_debug("metrics", "committed offsets for the lag not known: %s",
                      rd_kafka_event_error_string(ev));
        } else {
            size_t n = 0;
            const rd_kafka_group_result_t **groups =
                rd_kafka_ListConsumerGroupOffsets_result_groups(res, &n);
            for (size_t g = 0; g < n; g++)
                lag_record(w, rd_kafka_group_result_partitions(groups[g]));
        }
        rd_kafka_event_destroy(ev);
    }
}

int64_t pgs_lag_partition(pgs_worker_t *w, const pgs_stream_t *st, const pgs_partition_t *p)
{
    if (!p || !p->assigned || !w->consumer)
        return -1;
    int64_t lo = 0, hi = 0;
    if (rd_kafka_get_watermark_offsets(w->consumer, st->topic, p->partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0)
        return -1;
    int64_t pos = p->offsets ? pgs_offsets_position(p->offsets) : -1;
    if (pos < 0) {
        if (p->committed == PGS_LAG_COMMITTED_UNKNOWN)
            return 0;
        pos = p->committed >= 0 ? p->committed : lo;
    }
    return hi > pos ? hi - pos : 0;
}

int64_t pgs_lag_commands(pgs_worker_t *w)
{
    pgs_lag_serve(w);
    int64_t lag = 0;
    pgs_stream_t *st = &w->streams[PGS_STREAM_COMMANDS];
    for (int32_t i = 0; i < st->parts_cnt; i++) {
        int64_t l = pgs_lag_partition(w, st, st->parts[i]);
        if (l > 0)
            lag += l;
    }
    return lag;
}
