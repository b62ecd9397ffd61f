/* Schema wait (see schemawait.h): the registry client, the codec's
 * resolver, and the messages held per partition while the registry cannot
 * be asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/schemareg.h"
#include "run/complete.h"
#include "run/intake.h"
#include "run/schemawait.h"
#include "run/worker.h"

/* How often held messages are offered again: the client's own backoff
 * (100 ms doubling to schema_registry.retry_max_ms) decides when a request
 * is really made, so a retry in between costs nothing. */
#define SCHEMAWAIT_RETRY_US 100000

static int resolve(void *opaque, int32_t id, const char **schema, char *errstr, size_t errstr_size)
{
    pgs_schemareg_rc_t rc = pgs_schemareg_get(opaque, id, schema, errstr, errstr_size);
    return rc == PGS_SCHEMAREG_OK ? 0 : rc == PGS_SCHEMAREG_NOT_FOUND ? 1 : -1;
}

int pgs_schemawait_init(pgs_worker_t *w, char *errstr, size_t errstr_size)
{
    const char *url = pgs_config_str(w->cfg, "schema_registry.url");
    if (!url || !*url)
        return 0;
    pgs_schemareg_opts_t o = {
        .url = url,
        .user = pgs_config_str(w->cfg, "schema_registry.basic_auth_user"),
        .password = pgs_config_str(w->cfg, "schema_registry.basic_auth_password"),
        .ca_location = pgs_config_str(w->cfg, "schema_registry.ca_location"),
        .tls_verify = pgs_config_bool(w->cfg, "schema_registry.tls_verify"),
        .timeout_ms = (int)pgs_config_int(w->cfg, "schema_registry.timeout_ms"),
        .backoff_min_ms = 100,
        .backoff_max_ms = (int)pgs_config_int(w->cfg, "schema_registry.retry_max_ms"),
    };
    w->registry = pgs_schemareg_new(&o, errstr, errstr_size);
    if (!w->registry)
        return -1;
    pgs_codec_set_resolver(w->codec, resolve, w->registry);
    /* the URL may carry user:password@: only its scheme is logged */
    pgs_info("worker", "schema registry: Avro schema ids resolved through the %s registry",
             strncmp(url, "https://", 8) == 0 ? "https" : "http");
    return 0;
}

void pgs_schemawait_free(pgs_worker_t *w)
{
    pgs_schemareg_free(w->registry);
    w->registry = NULL;
}

int pgs_schemawait_holding(const pgs_partition_t *p)
{
    return p->held_head != NULL;
}

void pgs_schemawait_hold(pgs_worker_t *w, pgs_work_t *work, const char *why)
{
    pgs_partition_t *p = work->part;
    work->held_next = NULL;
    if (p->held_tail)
        p->held_tail->held_next = work;
    else
        p->held_head = work;
    p->held_tail = work;
    p->held_cnt++;
    w->schema_held++;
    if (why && !w->schema_wait_logged) {
        w->schema_wait_logged = 1;
        w->schema_wait_since_us = pgs_clock_now_us();
        pgs_warn("schema",
                 "%s: messages of uncached schema ids wait (partition=%d offset=%lld holds "
                 "its partition), none is dead-lettered",
                 why, (int)p->partition, (long long)work->offset);
    }
    if (!w->schema_retry_at_us)
        w->schema_retry_at_us = pgs_clock_now_us() + SCHEMAWAIT_RETRY_US;
}

/* Unlinks the held list of @p p and hands it back. */
static pgs_work_t *detach(pgs_worker_t *w, pgs_partition_t *p)
{
    pgs_work_t *list = p->held_head;
    w->schema_held -= p->held_cnt;
    p->held_head = p->held_tail = NULL;
    p->held_cnt = 0;
    return list;
}

void pgs_schemawait_tick(pgs_worker_t *w)
{
    if (!w->schema_held || pgs_clock_now_us() < w->schema_retry_at_us)
        return;
    w->schema_retry_at_us = 0;
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        pgs_stream_t *st = &w->streams[s];
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            pgs_partition_t *p = st->parts[i];
            if (!p || !p->held_head || p->revoking)
                continue;
            /* in order: the first that must wait again holds the rest */
            for (pgs_work_t *wk = detach(w, p), *next; wk; wk = next) {
                next = wk->held_next;
                wk->held_next = NULL;
                if (p->held_head) {
                    pgs_schemawait_hold(w, wk, NULL);
                } else {
                    pgs_intake_retry(w, wk);
                }
            }
        }
    }
    if (!w->schema_held && w->schema_wait_logged) {
        w->schema_wait_logged = 0;
        pgs_info("schema", "schema registry answers again: held messages taken in after %lld ms",
                 (long long)((pgs_clock_now_us() - w->schema_wait_since_us) / 1000));
    }
}

size_t pgs_schemawait_release(pgs_worker_t *w, int (*pred)(const pgs_work_t *))
{
    size_t n = 0;
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        pgs_stream_t *st = &w->streams[s];
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            pgs_partition_t *p = st->parts[i];
            if (!p || !p->held_head || (pred && !pred(p->held_head)))
                continue;
            for (pgs_work_t *wk = detach(w, p), *next; wk; wk = next) {
                next = wk->held_next;
                pgs_complete_work_free(w, wk); /* offset left undone: read again */
                n++;
            }
        }
    }
    return n;
}

size_t pgs_schemawait_held(const pgs_worker_t *w, int (*pred)(const pgs_work_t *))
{
    size_t n = 0;
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        const pgs_stream_t *st = &w->streams[s];
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            const pgs_partition_t *p = st->parts[i];
            if (p && p->held_head && (!pred || pred(p->held_head)))
                n += p->held_cnt;
        }
    }
    return n;
}
