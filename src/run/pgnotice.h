/* libpq notices and warnings into pgscribe's log, without their text. */
#ifndef PGSCRIBE_PGNOTICE_H
#define PGSCRIBE_PGNOTICE_H

#include <libpq-fe.h>

/**
 * @brief Routes @p pg's notices (NOTICE, WARNING, ...) to the log writer as
 *        module=postgres lines with severity= and sqlstate= only: a notice's
 *        text can quote column values, so it is dropped. A NULL @p pg is a
 *        no-op.
 * @locality the thread that uses @p pg
 */
void pgs_pgnotice_attach(PGconn *pg);

#endif
