/* libpq notices routed into the log writer: severity and SQLSTATE only. A
 * notice's message or detail may quote a row (a trigger's RAISE NOTICE, a
 * constraint's detail), and logs never carry values. */
#include "run/pgnotice.h"

#include <string.h>

#include "common/log.h"

static void notice_receiver(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!sev)
        sev = "NOTICE";
    pgs_log_level_t lvl = PGS_LOG_INFO;
    if (strcmp(sev, "DEBUG") == 0)
        lvl = PGS_LOG_DEBUG;
    else if (strcmp(sev, "WARNING") == 0)
        lvl = PGS_LOG_WARN;
    else if (strcmp(sev, "NOTICE") != 0 && strcmp(sev, "INFO") != 0 && strcmp(sev, "LOG") != 0)
        lvl = PGS_LOG_ERROR;
    const char *kv[] = {"severity", sev, "sqlstate", state ? state : "-", NULL};
    pgs_log_kv(lvl, "postgres", kv, "server notice (text not logged)");
}

void pgs_pgnotice_attach(PGconn *pg)
{
    if (pg)
        PQsetNoticeReceiver(pg, notice_receiver, NULL);
}
