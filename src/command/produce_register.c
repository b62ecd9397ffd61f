/* produce --register (see produce_register.h). */
#include "command/produce_register.h"

#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "common/schemareg.h"

int pgs_produce_register(const pgs_config_t *cfg, const char *topic, int audit,
                         pgs_produce_ids_t *ids)
{
    static const int commands[] = {PGS_SCHEMA_ID_WRITE_COMMAND_V1, PGS_SCHEMA_ID_WRITE_COMMAND_V2,
                                   0};
    static const int events[] = {PGS_SCHEMA_ID_AUDIT_EVENT_V1, PGS_SCHEMA_ID_AUDIT_EVENT_V2, 0};
    char errstr[512];
    memset(ids, 0, sizeof(*ids));
    const char *url = pgs_config_str(cfg, "schema_registry.url");
    if (!url || !*url) {
        fprintf(stderr, "produce: --register needs schema_registry.url\n");
        return -1;
    }
    pgs_schemareg_opts_t o = {
        .url = url,
        .user = pgs_config_str(cfg, "schema_registry.basic_auth_user"),
        .password = pgs_config_str(cfg, "schema_registry.basic_auth_password"),
        .ca_location = pgs_config_str(cfg, "schema_registry.ca_location"),
        .tls_verify = pgs_config_bool(cfg, "schema_registry.tls_verify"),
        .timeout_ms = (int)pgs_config_int(cfg, "schema_registry.timeout_ms"),
    };
    pgs_schemareg_t *reg = pgs_schemareg_new(&o, errstr, sizeof(errstr));
    if (!reg) {
        fprintf(stderr, "produce: %s\n", errstr);
        return -1;
    }
    char subject[300];
    snprintf(subject, sizeof(subject), "%s-value", topic);
    int rc = 0;
    for (const int *s = audit ? events : commands; *s && rc == 0; s++) {
        const char *text = pgs_codec_schema_text(*s);
        int32_t id = 0;
        if (!text || pgs_schemareg_register(reg, subject, text, &id, errstr, sizeof(errstr))) {
            fprintf(stderr, "produce: --register: %s\n", text ? errstr : "schema not compiled in");
            rc = -1;
            break;
        }
        ids->id[*s] = id;
        fprintf(stderr, "produce: shipped schema id %d registered as %s id %d\n", *s, subject,
                (int)id);
    }
    pgs_schemareg_free(reg);
    return rc;
}

void pgs_produce_reframe(const pgs_produce_ids_t *ids, char *buf, size_t len)
{
    if (len < 5 || buf[0] != 0)
        return;
    const unsigned char *b = (const unsigned char *)buf;
    uint32_t shipped = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
    if (shipped < sizeof(ids->id) / sizeof(ids->id[0]) && ids->id[shipped])
        pgs_codec_set_frame_id(buf, len, ids->id[shipped]);
}
