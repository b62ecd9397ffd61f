/* Field sealing: the values a command writes to field-encrypted columns
 * (pgs_column_t.sealed) become AES-256-GCM envelopes (common/fieldcrypt.h)
 * at intake, before the command reaches a lane, so no plaintext of such a
 * column is ever bound to a statement.
 *
 * CANONICAL ROW KEY (a contract: `pgscribe show`, `pgscribe rekey`,
 * `pgscribe keys protect` and every reader that decrypts rebuild it the same
 * way; see docs/keys.md): the row's primary-key column values other than
 * clinic_id (the clinic is a part of the context of its own), in
 * primary-key order, each in PostgreSQL's text output form, joined by the
 * byte 0x1F. A command's key values are canonicalised first
 * (catalog/keyform.h: a uuid lower-cased with hyphens, an integer without
 * leading zeros or sign, a boolean "t"/"f"); values of other types are taken
 * as sent, so they must be sent in their output form. In SQL:
 * concat_ws(E'\x1f', pk1::text, pk2::text, ...).
 *
 * The plaintext sealed is the value's canonical text: a string's bytes, a
 * number's or boolean's PostgreSQL input spelling (codec/value.h), a bytes
 * value's raw bytes. Reading back casts that text to the column's clear type
 * (column_policy.plain_type). */
#ifndef PGSCRIBE_FIELDSEAL_H
#define PGSCRIBE_FIELDSEAL_H

#include <stddef.h>

#include "catalog/catalog.h"
#include "codec/command.h"
#include "common/keyring.h"
#include "common/sbuf.h"
#include "policy/error.h"

/** Byte between the primary-key values of a canonical row key. */
#define PGS_ROW_KEY_SEP '\x1f'

/**
 * @brief Writes @p cmd's canonical row key for @p ent to @p out (replacing
 *        its content).
 * @returns 0, or -1 when a key value has no canonical text for its column
 *          or is missing (nothing useful in @p out).
 */
int pgs_fieldseal_row_key(const pgs_entity_t *ent, const pgs_command_t *cmd, pgs_sbuf_t *out);

/**
 * @brief The plaintext sealed for value @p v: its text (in @p buf, room for
 *        PGS_VALUE_TEXT_MAX, or the value's own bytes) and length.
 * @returns NULL for a null value (a null stays null: it is not sealed).
 */
const void *pgs_fieldseal_plain(const pgs_value_t *v, char *buf, size_t *len);

/**
 * @brief Seals every non-null data value of @p cmd that goes to a sealed
 *        column of @p ent (of @p schema: the context's entity is
 *        "schema.table"), under @p ring's current field key for the
 *        command's clinic (its own, else "*"), in place: the value becomes a
 *        bytes value holding the envelope (in the command's arena). The
 *        content digest is taken first from the plaintext (cmd->digest), so
 *        a reused id with other content is still told from a re-delivery.
 *        A command writing no sealed column is left as it is.
 * @returns PGS_OK, PGS_E_VALIDATE_NO_FIELD_KEY (no keyring, no current field
 *          key for the clinic) or PGS_E_VALIDATE_KEY_FORM, with @p errstr
 *          naming the entity and column, never a value or key material.
 *          On an error nothing of @p cmd was sealed.
 */
pgs_err_t pgs_fieldseal_command(const PgsKeyring *ring, const char *schema, const pgs_entity_t *ent,
                                pgs_command_t *cmd, char *errstr, size_t errstr_size);

#endif
