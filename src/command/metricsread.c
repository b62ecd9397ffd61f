/* WorkerMetrics reader (see metricsread.h). */
#include "command/metricsread.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "common/kafkaconf.h"
#include "common/xalloc.h"

struct pgs_metricsread_s {
    rd_kafka_t *rk;
    pgs_codec_t *codec;
    int nparts;
};

pgs_metricsread_t *pgs_metricsread_open(const pgs_config_t *cfg, const char *brokers,
                                        pgs_metricsread_from_t from, char *errstr,
                                        size_t errstr_size)
{
    pgs_metricsread_t *r = pgs_xalloc_calloc(1, sizeof(*r));
    r->codec = pgs_codec_new(errstr, errstr_size);
    if (!r->codec) {
        free(r);
        return NULL;
    }
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_CONSUMER, NULL, brokers, errstr, errstr_size);
    if (conf) {
        /* assign-only reader: the group id is never used to commit */
        char group[64];
        snprintf(group, sizeof(group), "pgscribe-metrics-reader-%ld", (long)time(NULL));
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        /* a tail longer than the partition starts at its beginning */
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
        r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    }
    if (!r->rk) {
        pgs_metricsread_close(r);
        return NULL;
    }
    const char *topic = pgs_config_str(cfg, "topic.metrics");
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, topic, NULL);
    if (rd_kafka_metadata(r->rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(errstr, errstr_size, "topic %s not found", topic);
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        pgs_metricsread_close(r);
        return NULL;
    }
    int64_t start = from == PGS_METRICSREAD_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING
                    : from == PGS_METRICSREAD_END
                        ? RD_KAFKA_OFFSET_END
                        : RD_KAFKA_OFFSET_TAIL(PGS_METRICSREAD_TAIL_RECORDS);
    r->nparts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(r->nparts);
    for (int i = 0; i < r->nparts; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            start;
    rd_kafka_assign(r->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return r;
}

void pgs_metricsread_close(pgs_metricsread_t *r)
{
    if (!r)
        return;
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    pgs_codec_free(r->codec);
    free(r);
}

int pgs_metricsread_partitions(const pgs_metricsread_t *r)
{
    return r->nparts;
}

pgs_metricsread_ev_t pgs_metricsread_next(pgs_metricsread_t *r, int timeout_ms, char **json)
{
    *json = NULL;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, timeout_ms);
    if (!m)
        return PGS_METRICSREAD_NONE;
    pgs_metricsread_ev_t ev = PGS_METRICSREAD_NONE;
    char errstr[512];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        ev = PGS_METRICSREAD_EOF;
    } else if (m->err) {
        fprintf(stderr, "pgscribe: metrics topic: %s\n", rd_kafka_message_errstr(m));
    } else if (pgs_codec_metrics_to_json(r->codec, m->payload, m->len, json, errstr,
                                         sizeof(errstr)) == PGS_OK) {
        ev = PGS_METRICSREAD_RECORD;
    } else {
        fprintf(stderr, "pgscribe: metrics topic: partition %d offset %lld: %s\n",
                (int)m->partition, (long long)m->offset, errstr);
    }
    rd_kafka_message_destroy(m);
    return ev;
}

int pgs_metricsread_keep_newest(json_t *newest, json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "worker_id"));
    if (!id) {
        json_decref(rec);
        return 0;
    }
    json_t *old = json_object_get(newest, id);
    if (old && json_integer_value(json_object_get(old, "interval_end")) >
                   json_integer_value(json_object_get(rec, "interval_end"))) {
        json_decref(rec);
        return 0;
    }
    json_object_set_new(newest, id, rec);
    return 1;
}
