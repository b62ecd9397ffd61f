/* Prometheus text exposition: the few rules of the format in one place, so
 * every series of /metrics is escaped and numbered alike. */
#include "common/promtext.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void put_escaped(pgs_sbuf_t *sb, const char *s, int quote)
{
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\\')
            pgs_sbuf_puts(sb, "\\\\");
        else if (*p == '\n')
            pgs_sbuf_puts(sb, "\\n");
        else if (quote && *p == '"')
            pgs_sbuf_puts(sb, "\\\"");
        else
            pgs_sbuf_putn(sb, p, 1);
    }
}

void pgs_promtext_family(pgs_sbuf_t *sb, const char *name, const char *type, const char *help)
{
    pgs_sbuf_printf(sb, "# HELP %s ", name);
    put_escaped(sb, help, 0);
    pgs_sbuf_printf(sb, "\n# TYPE %s %s\n", name, type);
}

void pgs_promtext_sample(pgs_sbuf_t *sb, const char *name, const char *const *labels, int nlabels,
                         double value)
{
    pgs_sbuf_puts(sb, name);
    if (nlabels > 0) {
        pgs_sbuf_puts(sb, "{");
        for (int i = 0; i < nlabels; i++) {
            pgs_sbuf_printf(sb, "%s%s=\"", i ? "," : "", labels[2 * i]);
            put_escaped(sb, labels[2 * i + 1], 1);
            pgs_sbuf_puts(sb, "\"");
        }
        pgs_sbuf_puts(sb, "}");
    }
    if (isinf(value))
        pgs_sbuf_puts(sb, value > 0 ? " +Inf\n" : " -Inf\n");
    else if (isnan(value))
        pgs_sbuf_puts(sb, " NaN\n");
    else if (value == floor(value) && fabs(value) < 9.007199254740992e15)
        pgs_sbuf_printf(sb, " %lld\n", (long long)value);
    else
        pgs_sbuf_printf(sb, " %.17g\n", value);
}
