/* Tuple encoding: each part is a tag byte, a 4-byte big-endian length and its
 * bytes. Lane keys and command digests are built so: a separator inside a
 * part (a clinic id holding 0x1f, say) can never end it early. */
#include "common/tuple.h"

#include <stdint.h>

size_t pgs_tuple_open(pgs_sbuf_t *sb, char tag)
{
    char hdr[PGS_TUPLE_HEADER_SIZE] = {tag, 0, 0, 0, 0};
    pgs_sbuf_putn(sb, hdr, sizeof(hdr));
    return sb->len;
}

void pgs_tuple_close(pgs_sbuf_t *sb, size_t start)
{
    uint32_t n = (uint32_t)(sb->len - start);
    unsigned char *p = (unsigned char *)sb->buf + start - 4;
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

void pgs_tuple_put(pgs_sbuf_t *sb, char tag, const char *s, size_t len)
{
    size_t start = pgs_tuple_open(sb, tag);
    pgs_sbuf_putn(sb, s, len);
    pgs_tuple_close(sb, start);
}
