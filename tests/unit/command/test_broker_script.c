/* Unit tests for the control-line parser of `pgscribe broker`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "command/broker.h"

static int parse(const char *line, pgs_broker_cmd_t *cmd)
{
    char errstr[256];
    return pgs_broker_cmd_parse(line, cmd, errstr, sizeof(errstr));
}

static void test_topic(void **state)
{
    pgs_broker_cmd_t cmd;
    (void)state;

    assert_int_equal(parse("topic run-1.commands 12", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_TOPIC);
    assert_string_equal(cmd.topic, "run-1.commands");
    assert_int_equal(cmd.partitions, 12);
    assert_int_equal(parse("  topic\tt 1\r\n", &cmd), 0);
    assert_string_equal(cmd.topic, "t");
    assert_int_equal(parse("topic t 0", &cmd), -1);
    assert_int_equal(parse("topic t", &cmd), -1);
    assert_int_equal(parse("topic t 3 extra", &cmd), -1);
    assert_int_equal(parse("topic t 12x", &cmd), -1);
}

static void test_topic_name_length(void **state)
{
    pgs_broker_cmd_t cmd;
    char line[400], name[PGS_BROKER_TOPIC_MAX + 2];
    (void)state;

    memset(name, 'a', PGS_BROKER_TOPIC_MAX);
    name[PGS_BROKER_TOPIC_MAX] = '\0';
    snprintf(line, sizeof(line), "topic %s 1", name);
    assert_int_equal(parse(line, &cmd), 0);
    assert_int_equal(strlen(cmd.topic), PGS_BROKER_TOPIC_MAX);
    name[PGS_BROKER_TOPIC_MAX] = 'a';
    name[PGS_BROKER_TOPIC_MAX + 1] = '\0';
    snprintf(line, sizeof(line), "topic %s 1", name);
    assert_int_equal(parse(line, &cmd), -1);
}

static void test_down_up_rtt(void **state)
{
    pgs_broker_cmd_t cmd;
    (void)state;

    assert_int_equal(parse("down 2", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_DOWN);
    assert_int_equal(cmd.broker_id, 2);
    assert_int_equal(parse("up -1", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_UP);
    assert_int_equal(cmd.broker_id, -1);
    assert_int_equal(parse("down -2", &cmd), -1);
    assert_int_equal(parse("up", &cmd), -1);
    assert_int_equal(parse("rtt 3 250", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_RTT);
    assert_int_equal(cmd.broker_id, 3);
    assert_int_equal(cmd.rtt_ms, 250);
    assert_int_equal(parse("rtt 3 -5", &cmd), -1);
}

static void test_errors(void **state)
{
    pgs_broker_cmd_t cmd;
    (void)state;

    assert_int_equal(parse("errors Fetch 20 NOT_LEADER_OR_FOLLOWER", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_ERRORS);
    assert_int_equal(cmd.api_key, 1);
    assert_int_equal(cmd.count, 20);
    assert_int_equal(cmd.err, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);

    assert_int_equal(parse("errors offsetcommit 10 coordinator_not_available", &cmd), 0);
    assert_int_equal(cmd.api_key, 8);
    assert_int_equal(cmd.err, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(parse("errors SyncGroup 1 NOT_COORDINATOR", &cmd), 0);
    assert_int_equal(cmd.api_key, 14);
    assert_int_equal(cmd.err, RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    assert_int_equal(parse("errors Produce 3 RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT", &cmd), 0);
    assert_int_equal(cmd.api_key, 0);
    assert_int_equal(cmd.err, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    assert_int_equal(parse("errors InitProducerId 1 _TRANSPORT", &cmd), 0);
    assert_int_equal(cmd.api_key, 22);
    assert_int_equal(cmd.err, RD_KAFKA_RESP_ERR__TRANSPORT);
    assert_int_equal(parse("errors Metadata 2 5", &cmd), 0);
    assert_int_equal(cmd.api_key, 3);
    assert_int_equal(cmd.err, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    assert_int_equal(parse("errors 18 1 UNKNOWN_TOPIC_OR_PARTITION", &cmd), 0);
    assert_int_equal(cmd.api_key, 18);
    assert_int_equal(cmd.err, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);

    assert_int_equal(cmd.broker_id, -1);
    assert_int_equal(parse("errors Produce 10 NOT_LEADER_OR_FOLLOWER 3", &cmd), 0);
    assert_int_equal(cmd.api_key, 0);
    assert_int_equal(cmd.count, 10);
    assert_int_equal(cmd.broker_id, 3);
    assert_int_equal(parse("errors Produce 10 NOT_LEADER_OR_FOLLOWER 0", &cmd), -1);
    assert_int_equal(parse("errors Produce 10 NOT_LEADER_OR_FOLLOWER -1", &cmd), -1);
    assert_int_equal(parse("errors Produce 10 NOT_LEADER_OR_FOLLOWER 3 4", &cmd), -1);

    assert_int_equal(parse("errors Fetch 1 NO_ERROR", &cmd), -1);
    assert_int_equal(parse("errors Fetch 1 0", &cmd), -1);
    assert_int_equal(parse("errors Fetch 1 NOT_A_KAFKA_ERROR", &cmd), -1);
    assert_int_equal(parse("errors Fetch 1 31999", &cmd), -1);
    assert_int_equal(parse("errors Fetchh 1 REQUEST_TIMED_OUT", &cmd), -1);
    assert_int_equal(parse("errors Fetch 0 REQUEST_TIMED_OUT", &cmd), -1);
    assert_int_equal(parse("errors Fetch 100001 REQUEST_TIMED_OUT", &cmd), -1);
    assert_int_equal(parse("errors Fetch REQUEST_TIMED_OUT", &cmd), -1);
}

static void test_clear(void **state)
{
    pgs_broker_cmd_t cmd;
    (void)state;

    assert_int_equal(parse("clear Produce", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_CLEAR);
    assert_int_equal(cmd.api_key, 0);
    assert_int_equal(parse("clear Nothing", &cmd), -1);
}

static void test_leader_pending(void **state)
{
    pgs_broker_cmd_t cmd;
    (void)state;

    assert_int_equal(parse("leader run.commands.dlq 11 3", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_LEADER);
    assert_string_equal(cmd.topic, "run.commands.dlq");
    assert_int_equal(cmd.partitions, 11);
    assert_int_equal(cmd.broker_id, 3);
    assert_int_equal(parse("leader t 0 -1", &cmd), 0);
    assert_int_equal(cmd.broker_id, -1);
    assert_int_equal(parse("leader t -1 1", &cmd), -1);
    assert_int_equal(parse("leader t 0", &cmd), -1);

    assert_int_equal(parse("pending 3 Produce", &cmd), 0);
    assert_int_equal(cmd.kind, PGS_BROKER_CMD_PENDING);
    assert_int_equal(cmd.broker_id, 3);
    assert_int_equal(cmd.api_key, 0);
    assert_int_equal(parse("pending -1 Produce", &cmd), -1);
    assert_int_equal(parse("pending 3 Nope", &cmd), -1);
}

static void test_blank_comment_unknown(void **state)
{
    pgs_broker_cmd_t cmd;
    char errstr[256], line[700];
    (void)state;

    assert_int_equal(parse("", &cmd), 1);
    assert_int_equal(parse("   \t\r\n", &cmd), 1);
    assert_int_equal(parse("# down 1", &cmd), 1);
    assert_int_equal(pgs_broker_cmd_parse("reboot 1", &cmd, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "reboot"));
    assert_int_equal(pgs_broker_cmd_parse("topic t 1 2 3 4 5", &cmd, errstr, sizeof(errstr)), -1);
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    assert_int_equal(pgs_broker_cmd_parse(line, &cmd, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "longer"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic),
        cmocka_unit_test(test_topic_name_length),
        cmocka_unit_test(test_down_up_rtt),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_leader_pending),
        cmocka_unit_test(test_blank_comment_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
