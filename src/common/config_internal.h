/* Internals shared by the config loader, its settings table and its printers. */
#ifndef PGSCRIBE_CONFIG_INTERNAL_H
#define PGSCRIBE_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

typedef enum { CT_STRING, CT_INT, CT_DOUBLE, CT_BOOL, CT_ENUM } cfg_type_t;

#define CF_RELOAD 0x1 /* applied by a reload without restart */

typedef struct {
    const char *name;
    cfg_type_t type;
    const char *def;    /* default, as it would be written in the file */
    double min, max;    /* bounds of int and double keys */
    const char *values; /* enum: allowed values separated by '|' */
    unsigned flags;
    const char *env; /* environment variable that overrides the file, or NULL */
    const char *help;
} cfg_def_t;

/* clang-format off */
#define CF_STR(n, d, fl, h)          {n, CT_STRING, d, 0, 0, NULL, fl, NULL, h}
#define CF_STR_ENV(n, d, fl, env, h) {n, CT_STRING, d, 0, 0, NULL, fl, env, h}
#define CF_INT(n, d, lo, hi, fl, h)  {n, CT_INT, d, lo, hi, NULL, fl, NULL, h}
#define CF_DBL(n, d, lo, hi, fl, h)  {n, CT_DOUBLE, d, lo, hi, NULL, fl, NULL, h}
#define CF_BOOL(n, d, fl, h)         {n, CT_BOOL, d, 0, 0, NULL, fl, NULL, h}
#define CF_ENUM(n, d, vals, fl, h)   {n, CT_ENUM, d, 0, 0, vals, fl, NULL, h}
/* clang-format on */

#define KAFKA_PREFIX "kafka."
#define MASK         "*****"

/** The settings table (config_table.c) and its length. */
extern const cfg_def_t pgs_config_table[];
extern const size_t pgs_config_table_len;

/** @returns the table index of key @p name, or -1. */
int pgs_config_table_find(const char *name);
/** @brief "lo..hi" of an int or double key. */
void pgs_config_table_range(const cfg_def_t *def, char *buf, size_t size);
/** @returns "string", "int", "double", "bool" or "enum". */
const char *pgs_config_table_type_name(cfg_type_t type);

typedef struct {
    char *text; /* canonical text, owned; also the value of string and enum keys */
    int64_t i;
    double d;
} cfg_value_t;

typedef struct {
    char *name; /* without the kafka. prefix */
    char *value;
} cfg_kafka_t;

struct pgs_config_s {
    cfg_value_t *vals;  /* one per table key */
    cfg_kafka_t *kafka; /* in file order */
    size_t nkafka, kafka_cap;
};

#endif
