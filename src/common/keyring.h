/* The keyring: versioned 256-bit keys read from a file only the worker's
 * user may read. Keys are for field encryption (PHI columns, dead-letter
 * values) or for pseudonyms (masked copies); each key protects every clinic
 * or one clinic only, so removing a clinic's keys crypto-shreds it.
 *
 * File format, one key per line, '#' starts a comment:
 *
 *     key <id> <purpose> <scope> <base64 of 32 bytes> [current]
 *
 *   id       decimal 1..4294967295, unique in the file; envelopes name it
 *   purpose  "field" or "pseudonym"
 *   scope    "*" (every clinic) or one clinic id
 *   current  the key new ciphertexts use for that purpose and scope; at most
 *            one per (purpose, scope), and every (purpose, scope) with keys
 *            has one
 *
 * Key material never reaches a log line or an error message. */
#ifndef PGSCRIBE_KEYRING_H
#define PGSCRIBE_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#define PGS_KEY_BYTES        32
#define PGS_KEYRING_MAX_KEYS 4096

typedef enum { PGS_KEY_FIELD = 0, PGS_KEY_PSEUDONYM = 1 } pgs_key_purpose_t;

typedef struct {
    uint32_t id;
    pgs_key_purpose_t purpose;
    char *clinic; /* NULL: every clinic */
    int current;
    unsigned char bytes[PGS_KEY_BYTES];
} PgsKey;

typedef struct {
    PgsKey *keys;
    size_t n;
} PgsKeyring;

/** @brief Reads @p path into a new keyring. Refuses a file that is group- or
 *         world-accessible, a malformed line (named by number, never by its
 *         content), a duplicate id, a (purpose, scope) with keys but no
 *         current key or two current keys. Returns 0, or -1 with @p err set. */
int pgs_keyring_load(const char *path, PgsKeyring **out, char *err, size_t errlen);

/** @brief Parses keyring text (the file's content) without the file checks. */
int pgs_keyring_parse(const char *text, PgsKeyring **out, char *err, size_t errlen);

/** @brief Writes @p ring to @p path atomically (a 0600 temporary file in the
 *         same folder, fsync, rename). Returns 0, or -1 with @p err set. */
int pgs_keyring_save(const PgsKeyring *ring, const char *path, char *err, size_t errlen);

/** @brief Wipes the key material and frees @p ring (NULL is fine). */
void pgs_keyring_free(PgsKeyring *ring);

/** @brief The key new ciphertexts of @p clinic use for @p purpose: the
 *         clinic's own current key if it has keys of that purpose, else the
 *         current key of scope "*"; NULL when there is none. @p clinic may be
 *         NULL (no clinic: only "*" keys). */
const PgsKey *pgs_keyring_current(const PgsKeyring *ring, pgs_key_purpose_t purpose,
                                  const char *clinic);

/** @brief The key with @p id, or NULL. */
const PgsKey *pgs_keyring_find(const PgsKeyring *ring, uint32_t id);

/** @brief Adds a new random key (id = highest id + 1) for @p purpose and
 *         @p clinic (NULL: "*"), makes it current for that scope and the
 *         previous current key of the scope an older one. Returns the new
 *         key's id, or 0 with @p err set (no randomness, table full). */
uint32_t pgs_keyring_rotate(PgsKeyring *ring, pgs_key_purpose_t purpose, const char *clinic,
                            char *err, size_t errlen);

/** @brief "field" or "pseudonym". */
const char *pgs_key_purpose_name(pgs_key_purpose_t purpose);

#endif
