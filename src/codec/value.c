/* A command's typed value as text: PostgreSQL input spellings, shared by every writer of values. */
#include "codec/value.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/numtext.h"

const char *pgs_value_double_special(double d)
{
    if (isnan(d))
        return "NaN";
    if (isinf(d))
        return d > 0 ? "Infinity" : "-Infinity";
    return NULL;
}

const char *pgs_value_text(const pgs_value_t *v, char *buf, size_t *len)
{
    switch (v->type) {
    case PGS_VAL_BOOL:
        *len = v->u.b ? 4 : 5;
        return v->u.b ? "true" : "false";
    case PGS_VAL_LONG:
        *len = pgs_numtext_i64(v->u.l, buf); /* PGS_VALUE_TEXT_MAX > PGS_NUMTEXT_MAX */
        return buf;
    case PGS_VAL_DOUBLE: {
        const char *special = pgs_value_double_special(v->u.d);
        if (special) {
            *len = strlen(special);
            return special;
        }
        *len = (size_t)snprintf(buf, PGS_VALUE_TEXT_MAX, "%.17g", v->u.d);
        return buf;
    }
    case PGS_VAL_STRING:
        *len = v->u.s.len;
        return v->u.s.ptr;
    default:
        *len = 0;
        return NULL;
    }
}
