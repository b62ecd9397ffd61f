/* The keyring file: parse, check, save, rotate. See keyring.h for the format. */
#include "common/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define KEYRING_MAX_FILE (1 << 20)

const char *pgs_key_purpose_name(pgs_key_purpose_t purpose)
{
    return purpose == PGS_KEY_PSEUDONYM ? "pseudonym" : "field";
}

static int same_scope(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

void pgs_keyring_free(PgsKeyring *ring)
{
    if (!ring)
        return;
    for (size_t i = 0; i < ring->n; i++) {
        OPENSSL_cleanse(ring->keys[i].bytes, sizeof ring->keys[i].bytes);
        free(ring->keys[i].clinic);
    }
    free(ring->keys);
    free(ring);
}

/* Decodes standard base64 of exactly PGS_KEY_BYTES bytes. */
static int decode_key(const char *b64, unsigned char out[PGS_KEY_BYTES])
{
    size_t len = strlen(b64);
    if (len != 44 || b64[43] != '=' || b64[42] == '=')
        return -1;
    unsigned char buf[33];
    if (EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len) != 33)
        return -1;
    memcpy(out, buf, PGS_KEY_BYTES);
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

static int check_currents(const PgsKeyring *ring, char *err, size_t errlen)
{
    for (size_t i = 0; i < ring->n; i++) {
        int currents = 0;
        for (size_t j = 0; j < ring->n; j++)
            if (ring->keys[j].purpose == ring->keys[i].purpose &&
                same_scope(ring->keys[j].clinic, ring->keys[i].clinic) && ring->keys[j].current)
                currents++;
        if (currents != 1) {
            snprintf(err, errlen,
                     "keyring: %s keys of scope %s have %d current keys (need exactly 1)",
                     pgs_key_purpose_name(ring->keys[i].purpose),
                     ring->keys[i].clinic ? ring->keys[i].clinic : "*", currents);
            return -1;
        }
    }
    return 0;
}

/* Parses one "key ..." line into @p k; -1 with a reason (no key material). */
static int parse_line(char *line, PgsKey *k, const char **why)
{
    char *save = NULL;
    char *word = strtok_r(line, " \t", &save);
    char *id = strtok_r(NULL, " \t", &save);
    char *purpose = strtok_r(NULL, " \t", &save);
    char *scope = strtok_r(NULL, " \t", &save);
    char *material = strtok_r(NULL, " \t", &save);
    char *flag = strtok_r(NULL, " \t", &save);
    char *extra = strtok_r(NULL, " \t", &save);
    if (!word || strcmp(word, "key") != 0 || !material || extra) {
        *why = "expected: key <id> <purpose> <scope> <base64> [current]";
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(id, &end, 10);
    if (errno || *end || id[0] == '-' || v == 0 || v > UINT32_MAX) {
        *why = "id must be 1..4294967295";
        return -1;
    }
    k->id = (uint32_t)v;
    if (strcmp(purpose, "field") == 0)
        k->purpose = PGS_KEY_FIELD;
    else if (strcmp(purpose, "pseudonym") == 0)
        k->purpose = PGS_KEY_PSEUDONYM;
    else {
        *why = "purpose must be field or pseudonym";
        return -1;
    }
    if (decode_key(material, k->bytes) != 0) {
        *why = "key material must be base64 of 32 bytes";
        return -1;
    }
    if (flag && strcmp(flag, "current") != 0) {
        *why = "the last word may only be current";
        return -1;
    }
    k->current = flag != NULL;
    k->clinic = strcmp(scope, "*") == 0 ? NULL : strdup(scope);
    if (strcmp(scope, "*") != 0 && !k->clinic) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

int pgs_keyring_parse(const char *text, PgsKeyring **out, char *err, size_t errlen)
{
    *out = NULL;
    PgsKeyring *ring = calloc(1, sizeof *ring);
    char *copy = strdup(text);
    if (!ring || !copy) {
        free(ring);
        free(copy);
        snprintf(err, errlen, "keyring: out of memory");
        return -1;
    }
    size_t cap = 0, lineno = 0;
    int rc = 0;
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        size_t len = strlen(line);
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
            line[--len] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line)
            continue;
        if (ring->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            PgsKey *nk =
                ncap <= PGS_KEYRING_MAX_KEYS ? realloc(ring->keys, ncap * sizeof *nk) : NULL;
            if (!nk) {
                snprintf(err, errlen, "keyring: more than %d keys", PGS_KEYRING_MAX_KEYS);
                rc = -1;
                break;
            }
            ring->keys = nk;
            cap = ncap;
        }
        PgsKey *k = &ring->keys[ring->n];
        memset(k, 0, sizeof *k);
        const char *why = NULL;
        if (parse_line(line, k, &why) != 0) {
            OPENSSL_cleanse(k->bytes, sizeof k->bytes);
            snprintf(err, errlen, "keyring: line %zu: %s", lineno, why);
            rc = -1;
            break;
        }
        if (pgs_keyring_find(ring, k->id)) {
            snprintf(err, errlen, "keyring: line %zu: key id %u appears twice", lineno, k->id);
            OPENSSL_cleanse(k->bytes, sizeof k->bytes);
            free(k->clinic);
            rc = -1;
            break;
        }
        ring->n++;
    }
    OPENSSL_cleanse(copy, strlen(text));
    free(copy);
    if (rc == 0)
        rc = check_currents(ring, err, errlen);
    if (rc != 0) {
        pgs_keyring_free(ring);
        return -1;
    }
    *out = ring;
    return 0;
}

int pgs_keyring_load(const char *path, PgsKeyring **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "keyring %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "keyring %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "keyring %s: mode %04o lets group or others read it; chmod 600 (refused)", path,
                 (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (st.st_size > KEYRING_MAX_FILE) {
        snprintf(err, errlen, "keyring %s: larger than %d bytes", path, KEYRING_MAX_FILE);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *text = malloc(size + 1);
    if (!text) {
        close(fd);
        snprintf(err, errlen, "keyring: out of memory");
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, text + got, size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    text[got] = '\0';
    int rc = got == size ? pgs_keyring_parse(text, out, err, errlen) : -1;
    if (got != size)
        snprintf(err, errlen, "keyring %s: short read", path);
    else if (rc != 0) {
        /* Prefix the path; the parser's reason never holds key material. */
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s (%s)", why, path);
    }
    OPENSSL_cleanse(text, got);
    free(text);
    return rc;
}

int pgs_keyring_save(const PgsKeyring *ring, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errlen, "keyring: path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "keyring %s: %s", tmp, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        snprintf(err, errlen, "keyring %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "# pgscribe keyring: key <id> <purpose> <scope> <base64> [current]\n");
    for (size_t i = 0; i < ring->n; i++) {
        const PgsKey *k = &ring->keys[i];
        char b64[64];
        EVP_EncodeBlock((unsigned char *)b64, k->bytes, PGS_KEY_BYTES);
        fprintf(f, "key %u %s %s %s%s\n", k->id, pgs_key_purpose_name(k->purpose),
                k->clinic ? k->clinic : "*", b64, k->current ? " current" : "");
        OPENSSL_cleanse(b64, sizeof b64);
    }
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "keyring %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

const PgsKey *pgs_keyring_find(const PgsKeyring *ring, uint32_t id)
{
    for (size_t i = 0; ring && i < ring->n; i++)
        if (ring->keys[i].id == id)
            return &ring->keys[i];
    return NULL;
}

const PgsKey *pgs_keyring_current(const PgsKeyring *ring, pgs_key_purpose_t purpose,
                                  const char *clinic)
{
    const PgsKey *shared = NULL;
    for (size_t i = 0; ring && i < ring->n; i++) {
        const PgsKey *k = &ring->keys[i];
        if (k->purpose != purpose || !k->current)
            continue;
        if (!k->clinic)
            shared = k;
        else if (clinic && strcmp(k->clinic, clinic) == 0)
            return k;
    }
    return shared;
}

uint32_t pgs_keyring_rotate(PgsKeyring *ring, pgs_key_purpose_t purpose, const char *clinic,
                            char *err, size_t errlen)
{
    uint32_t top = 0;
    for (size_t i = 0; i < ring->n; i++)
        if (ring->keys[i].id > top)
            top = ring->keys[i].id;
    if (top == UINT32_MAX || ring->n >= PGS_KEYRING_MAX_KEYS) {
        snprintf(err, errlen, "keyring: no key id left");
        return 0;
    }
    PgsKey *nk = realloc(ring->keys, (ring->n + 1) * sizeof *nk);
    if (!nk) {
        snprintf(err, errlen, "keyring: out of memory");
        return 0;
    }
    ring->keys = nk;
    PgsKey *k = &ring->keys[ring->n];
    memset(k, 0, sizeof *k);
    if (RAND_bytes(k->bytes, PGS_KEY_BYTES) != 1) {
        snprintf(err, errlen, "keyring: no randomness for a new key");
        return 0;
    }
    k->clinic = clinic ? strdup(clinic) : NULL;
    if (clinic && !k->clinic) {
        OPENSSL_cleanse(k->bytes, sizeof k->bytes);
        snprintf(err, errlen, "keyring: out of memory");
        return 0;
    }
    for (size_t i = 0; i < ring->n; i++)
        if (ring->keys[i].purpose == purpose && same_scope(ring->keys[i].clinic, clinic))
            ring->keys[i].current = 0;
    k->id = top + 1;
    k->purpose = purpose;
    k->current = 1;
    ring->n++;
    return k->id;
}
