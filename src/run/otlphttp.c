/* OTLP/HTTP sender: a bounded queue of JSON trace batches, emptied by one
 * thread of its own with libcurl. The main loop only ever appends (or drops
 * and counts when the queue is full); the POSTs block this thread alone. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/clock.h"
#include "common/log.h"
#include "run/otlphttp.h"

typedef struct {
    char *body;
    size_t nspans;
} batch_t;

struct pgs_otlphttp_s {
    char *endpoint;
    long timeout_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t *queue; /* ring of queue_max */
    size_t queue_max, head, count;
    int stop;
    int64_t stop_deadline_us; /* once stopping: what is still queued after it is dropped */
    atomic_llong dropped, sent;
    long failures; /* (sender thread only) */
};

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* @locality sender thread */
static void post_one(pgs_otlphttp_t *h, CURL *curl, struct curl_slist *hdrs, batch_t *b)
{
    curl_easy_setopt(curl, CURLOPT_URL, h->endpoint);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, b->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b->body));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        atomic_fetch_add(&h->sent, (long long)b->nspans);
    } else {
        atomic_fetch_add(&h->dropped, (long long)b->nspans);
        /* the endpoint only: a failed export is logged, never a span; an
         * endpoint that stays down is logged at failures 1, 2, 4, 8, ... */
        h->failures++;
        if ((h->failures & (h->failures - 1)) != 0)
            return;
        if (rc != CURLE_OK)
            pgs_warn("trace", "OTLP/HTTP export of %zu span(s) failed (failure %ld): %s", b->nspans,
                     h->failures, curl_easy_strerror(rc));
        else
            pgs_warn("trace", "OTLP/HTTP endpoint refused %zu span(s) (failure %ld): HTTP %ld",
                     b->nspans, h->failures, status);
    }
}

/* @locality sender thread */
static void *sender_main(void *arg)
{
    pgs_otlphttp_t *h = arg;
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->count == 0 && !h->stop)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->count == 0)
            break;
        batch_t b = h->queue[h->head];
        h->head = (h->head + 1) % h->queue_max;
        h->count--;
        int late = h->stop && pgs_clock_now_us() > h->stop_deadline_us;
        pthread_mutex_unlock(&h->mu);
        if (late || !curl)
            atomic_fetch_add(&h->dropped, (long long)b.nspans);
        else
            post_one(h, curl, hdrs, &b);
        free(b.body);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    curl_slist_free_all(hdrs);
    if (curl)
        curl_easy_cleanup(curl);
    return NULL;
}

pgs_otlphttp_t *pgs_otlphttp_new(const char *endpoint, size_t queue_max, long timeout_ms,
                                 char *errstr, size_t errstr_size)
{
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) {
        snprintf(errstr, errstr_size, "trace.otlp_endpoint must be an http:// or https:// URL");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(errstr, errstr_size, "cannot initialise libcurl");
        return NULL;
    }
    pgs_otlphttp_t *h = calloc(1, sizeof(*h));
    h->endpoint = strdup(endpoint);
    h->timeout_ms = timeout_ms;
    h->queue_max = queue_max ? queue_max : 1;
    h->queue = calloc(h->queue_max, sizeof(*h->queue));
    if (!h->endpoint || !h->queue)
        abort();
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, sender_main, h) != 0) {
        snprintf(errstr, errstr_size, "cannot start the OTLP/HTTP sender thread");
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h->queue);
        free(h->endpoint);
        free(h);
        return NULL;
    }
    return h;
}

int pgs_otlphttp_post(pgs_otlphttp_t *h, char *body, size_t nspans)
{
    pthread_mutex_lock(&h->mu);
    if (h->count == h->queue_max || h->stop) {
        pthread_mutex_unlock(&h->mu);
        atomic_fetch_add(&h->dropped, (long long)nspans);
        free(body);
        return -1;
    }
    h->queue[(h->head + h->count) % h->queue_max] = (batch_t){body, nspans};
    h->count++;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

int64_t pgs_otlphttp_dropped(const pgs_otlphttp_t *h)
{
    return h ? atomic_load(&((pgs_otlphttp_t *)h)->dropped) : 0;
}

int64_t pgs_otlphttp_sent(const pgs_otlphttp_t *h)
{
    return h ? atomic_load(&((pgs_otlphttp_t *)h)->sent) : 0;
}

void pgs_otlphttp_free(pgs_otlphttp_t *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    h->stop_deadline_us = pgs_clock_now_us() + (int64_t)h->timeout_ms * 1000;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h->queue);
    free(h->endpoint);
    free(h);
    curl_global_cleanup();
}
