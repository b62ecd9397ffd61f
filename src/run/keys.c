/* The worker's keyring: loading, SIGHUP reload (see keys.h). */
#include "run/keys.h"

#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "run/worker.h"

/* "field 3, pseudonym 2" style summary of the current "*"-scope key ids and
 * the number of clinics with keys of their own: ids, never material */
static void describe(const PgsKeyring *ring, char *buf, size_t len)
{
    const PgsKey *f = pgs_keyring_current(ring, PGS_KEY_FIELD, NULL);
    const PgsKey *p = pgs_keyring_current(ring, PGS_KEY_PSEUDONYM, NULL);
    size_t scoped = 0;
    for (size_t i = 0; i < ring->n; i++)
        if (ring->keys[i].clinic && ring->keys[i].current)
            scoped++;
    snprintf(buf, len,
             "%zu key(s), current field key %u, current pseudonym key %u, %zu clinic key(s)",
             ring->n, f ? f->id : 0u, p ? p->id : 0u, scoped);
}

static int load(const char *path, PgsKeyring **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path)
        return 0;
    return pgs_keyring_load(path, out, err, errlen);
}

int pgs_keys_start(pgs_worker_t *w, char *err, size_t errlen)
{
    const char *path = pgs_config_str(w->cfg, "crypto.keyring");
    PgsKeyring *ring = NULL;
    char why[512] = "";
    if (load(path, &ring, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "crypto.keyring %s: %s", path, why);
        return -1;
    }
    w->keyring = ring;
    if (ring) {
        char d[256];
        describe(ring, d, sizeof(d));
        pgs_info("keys", "keyring loaded from %s: %s", path, d);
    } else {
        pgs_info("keys", "no keyring (crypto.keyring is empty): PHI columns cannot be written, "
                         "dead letters are stored in clear");
    }
    return 0;
}

void pgs_keys_reload(pgs_worker_t *w)
{
    const char *path = pgs_config_str(w->cfg, "crypto.keyring");
    PgsKeyring *ring = NULL;
    char why[512] = "";
    if (load(path, &ring, why, sizeof(why)) != 0) {
        pgs_error("keys", "SIGHUP: keyring %s is invalid, keeping the old one: %s", path, why);
        return;
    }
    pgs_keyring_free(w->keyring);
    w->keyring = ring;
    if (ring) {
        char d[256];
        describe(ring, d, sizeof(d));
        pgs_info("keys", "SIGHUP: keyring reloaded from %s: %s", path, d);
    } else {
        pgs_info("keys", "SIGHUP: no keyring configured");
    }
}

const PgsKeyring *pgs_keys_ring(const pgs_worker_t *w)
{
    return w->keyring;
}

void pgs_keys_stop(pgs_worker_t *w)
{
    pgs_keyring_free(w->keyring);
    w->keyring = NULL;
}
