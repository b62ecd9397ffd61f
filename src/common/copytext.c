/* COPY text format fields (see copytext.h). */
#include "common/copytext.h"

void pgs_copytext_field(pgs_sbuf_t *sb, const char *v, size_t len)
{
    if (!v) {
        pgs_sbuf_putn(sb, "\\N", 2);
        return;
    }
    pgs_sbuf_reserve(sb, len + 1);
    size_t run = 0; /* bytes copied as they are, flushed before an escape */
    for (size_t i = 0; i < len; i++) {
        char esc = 0;
        switch (v[i]) {
        case '\\':
            esc = '\\';
            break;
        case '\t':
            esc = 't';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\b':
            esc = 'b';
            break;
        case '\f':
            esc = 'f';
            break;
        case '\v':
            esc = 'v';
            break;
        default:
            run++;
            continue;
        }
        pgs_sbuf_putn(sb, v + i - run, run);
        run = 0;
        char e[2] = {'\\', esc};
        pgs_sbuf_putn(sb, e, 2);
    }
    pgs_sbuf_putn(sb, v + len - run, run);
}
