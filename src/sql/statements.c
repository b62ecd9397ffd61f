/* Statement registry: shapes → SQL text, prepared names and latency, found
 * through a hash index (thousands of shapes are normal for partial updates). */
#include "sql/statements.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

struct pgs_stmts_s {
    char *schema;
    pgs_stmt_t *v;
    size_t n, cap;
    int32_t *index; /* open addressing: statement id + 1, 0 = empty */
    size_t index_cap;
};

pgs_stmts_t *pgs_statements_new(const char *schema)
{
    pgs_stmts_t *st = pgs_xalloc_calloc(1, sizeof(*st));
    st->schema = pgs_xalloc_strdup(schema);
    st->index_cap = 256;
    st->index = pgs_xalloc_calloc(st->index_cap, sizeof(*st->index));
    return st;
}

void pgs_statements_free(pgs_stmts_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free(st->v[i].sql);
    free(st->v);
    free(st->index);
    free(st->schema);
    free(st);
}

static uint64_t key_hash(int batch, const pgs_bshape_t *bs)
{
    return bs->shape.hash * 31u + (uint64_t)batch;
}

static int same(const pgs_stmt_t *s, int batch, const pgs_bshape_t *bs)
{
    if (s->batch != batch)
        return 0;
    return batch ? pgs_sqlbatch_shape_equal(&s->bs, bs)
                 : pgs_sqlgen_shape_equal(&s->bs.shape, &bs->shape);
}

static void index_put(pgs_stmts_t *st, size_t id)
{
    size_t mask = st->index_cap - 1;
    size_t i = key_hash(st->v[id].batch, &st->v[id].bs) & mask;
    while (st->index[i])
        i = (i + 1) & mask;
    st->index[i] = (int32_t)id + 1;
}

static int lookup(pgs_stmts_t *st, int batch, const pgs_bshape_t *bs)
{
    size_t mask = st->index_cap - 1;
    for (size_t i = key_hash(batch, bs) & mask; st->index[i]; i = (i + 1) & mask) {
        int id = st->index[i] - 1;
        if (same(&st->v[id], batch, bs))
            return id;
    }
    if (2 * (st->n + 1) > st->index_cap) {
        free(st->index);
        st->index_cap *= 2;
        st->index = pgs_xalloc_calloc(st->index_cap, sizeof(*st->index));
        for (size_t k = 0; k < st->n; k++)
            index_put(st, k);
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->v = pgs_xalloc_realloc(st->v, st->cap * sizeof(*st->v));
    }
    pgs_stmt_t *s = &st->v[st->n];
    memset(s, 0, sizeof(*s));
    s->batch = batch;
    s->bs = *bs;
    s->sql = batch ? pgs_sqlbatch_statement(st->schema, bs)
                   : pgs_sqlgen_statement(st->schema, &bs->shape);
    snprintf(s->name, sizeof(s->name), "pgs_%c%zu", batch ? 'b' : 's', st->n);
    pgs_latency_init(&s->latency);
    pgs_debug("apply", "new %s statement %s for %s op=%s", batch ? "multi-row" : "single", s->name,
              bs->shape.ent->name, pgs_command_op_name(bs->shape.op));
    index_put(st, st->n);
    return (int)st->n++;
}

int pgs_statements_single(pgs_stmts_t *st, const pgs_shape_t *shape)
{
    pgs_bshape_t bs = {.shape = *shape, .mask = 0};
    return lookup(st, 0, &bs);
}

int pgs_statements_batch(pgs_stmts_t *st, const pgs_bshape_t *bs)
{
    return lookup(st, 1, bs);
}

pgs_stmt_t *pgs_statements_get(pgs_stmts_t *st, int id)
{
    return &st->v[id];
}

size_t pgs_statements_count(const pgs_stmts_t *st)
{
    return st->n;
}
