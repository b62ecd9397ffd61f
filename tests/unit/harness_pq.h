/* Scripted libpq for unit tests: the libpq functions the apply pool calls,
 * defined in the test executable so they take precedence over libpq.so, and
 * answering from a script the test writes. Each connection's socket is a
 * real eventfd, readable while answers wait, so epoll works as with a
 * server. Pipeline mode is modelled: after an error, the statements up to
 * the next sync are answered PGRES_PIPELINE_ABORTED. */
#ifndef PGSCRIBE_HARNESS_PQ_H
#define PGSCRIBE_HARNESS_PQ_H

/** @brief Forgets the script, the log and the connect failures. */
void harness_pq_reset(void);

/**
 * @brief Appends answers, separated by spaces, consumed one by one by the
 *        statements sent (BEGIN, PREPARE, EXECUTE, COMMIT, ROLLBACK), in
 *        order, on any connection; aborted statements and syncs take none:
 *   ok               COMMAND_OK for BEGIN/PREPARE/COMMIT/ROLLBACK, one row
 *                    "1" (applied) for a statement
 *   row=V            one row with value V ("0": a duplicate; a count for a
 *                    multi-row statement)
 *   err=STATE[:CON]  an error with SQLSTATE STATE (and constraint CON)
 *   lost             the connection breaks before this answer
 * Once the script is used up, every statement is answered "ok". The setup
 * PREPAREs of a non-blocking connect (those before its first sync) take
 * none either: they are logged "SETUP PREPARE name" and answered ok, as the
 * blocking PQprepare of a first connection is.
 */
void harness_pq_script(const char *answers);

/** @brief The database identity ("SYSID/TIMELINE") the setup of each later
 *         connection reads (pgscribe.db_identity()); NULL or "": the query
 *         fails, as on a database without migration 0013. Not logged, and
 *         takes no answer of the script. */
void harness_pq_identity(const char *identity);
/** @returns how many times a connection's setup asked the identity. */
int harness_pq_identity_asked(void);

/** @returns how many answers of the script are left. */
int harness_pq_left(void);

/** @brief The next @p n connection attempts fail: a blocking connect at
 *         once, a non-blocking one (PQconnectStartParams) at its last poll. */
void harness_pq_fail_connects(int n);

/** @brief Each later non-blocking connect asks for @p n polls (alternately
 *         reading and writing, its socket ready each time) before it is made. */
void harness_pq_connect_polls(int n);

/** @brief The next @p n non-blocking connects not failing stall: every poll asks to read
 *         and the socket never becomes readable (a silent server). */
void harness_pq_stall_connects(int n);

/** @returns non-blocking connects started and PQconnectPoll calls so far. */
int harness_pq_connects_started(void);
int harness_pq_polls(void);

/** @returns how many statements sent so far start with @p prefix; the log
 *           names them "BEGIN", "COMMIT", "ROLLBACK", "PREPARE pgs_s1",
 *           "EXEC pgs_s1", "EXEC pgs_txn_setup", "SYNC". */
int harness_pq_count(const char *prefix);

/** @returns every statement sent so far, one a line. */
const char *harness_pq_log(void);

#endif
