#!/usr/bin/python3
"""Produces traced commands and checks the spans pgscribe exports.

Usage: traces_check.py produce BROKERS TOPIC PLAN.json
       traces_check.py receive PORT_FILE BODIES.jsonl
       traces_check.py check BROKERS TRACES_TOPIC PLAN.json PB_DIR [BODIES.jsonl]

produce writes PLAN.json (what was sent: command ids, traceparents, which
should be traced) and produces the commands as JSON with their headers.
receive is an OTLP/HTTP endpoint stand-in: it answers POST /v1/traces
with 200, appends each body (and its content type) to BODIES.jsonl and
writes its port to PORT_FILE.
check reads every message of the traces topic, decodes each with protobuf's
JSON mapping into an ExportTraceServiceRequest (PB_DIR holds the protoc
output of tests/integration/otlp) and asserts the spans against the plan.
"""
import base64
import json
import os
import sys
import uuid

from confluent_kafka import Consumer, Producer

MARKER = "PHI-MARKER"


def cmd(cid, clinic, entity, key, data):
    return {
        "command_id": cid,
        "clinic_id": clinic,
        "actor": "user:42",
        "entity": entity,
        "op": "INSERT",
        "key": key,
        "data": data,
        "expected_version": None,
        "issued_at": 1700000000123,
    }


def produce(brokers, topic, plan_path):
    plan = []

    def add(kind, clinic, tp, poison=False, again=None):
        i = len(plan)
        cid = str(uuid.UUID(int=0x5EED0000 + i, version=4))
        rid = str(uuid.UUID(int=0xA0000000 + i, version=4))
        if poison:
            # quantity 5000 violates the prescriptions CHECK: a dead letter
            body = cmd(cid, clinic, "prescriptions", {"id": rid},
                       {"patient_id": str(uuid.UUID(int=7, version=4)),
                        "drug_code": "RX-10001", "drug_name": "%s-poison" % MARKER,
                        "quantity": 5000, "refills": 0, "status": "active"})
            key = "%s/prescriptions/%s" % (clinic, rid)
        else:
            body = cmd(cid, clinic, "patients", {"id": rid},
                       {"given_name": "%s-%d" % (MARKER, i)})
            key = "%s/patients/%s" % (clinic, rid)
        if again is not None:
            # the same command once more (a re-delivery), in a trace of its own
            cid, key, body = plan[again]["command_id"], plan[again]["key"], plan[again]["body"]
        plan.append({"kind": kind, "command_id": cid, "traceparent": tp,
                     "traced": kind in ("sampled", "poison", "duplicate"), "key": key,
                     "body": body})

    def tp(i, flags):
        return "00-%032x-%016x-%s" % (0x4BF92F3577B34DA6A3CE000000000000 + i,
                                      0x00F067AA0BA90000 + i, flags)

    for i in range(6):
        add("sampled", "clinic-7", tp(i + 1, "01"))
    for i in range(4):
        add("unsampled", "clinic-7", tp(i + 100, "00"))
    for _ in range(3):
        add("no_header", "clinic-7", None)
    add("invalid_header", "clinic-7", "00-" + "0" * 32 + "-00f067aa0ba902b7-01")
    add("poison", "clinic-9", tp(200, "01"), poison=True)
    add("duplicate", "clinic-7", tp(300, "01"), again=0)

    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
    for c in plan:
        headers = [("content-type", b"application/json")]
        if c["traceparent"]:
            headers.append(("traceparent", c["traceparent"].encode()))
        p.produce(topic, json.dumps(c["body"]).encode(), key=c["key"].encode(),
                  headers=headers)
    if p.flush(30) != 0:
        sys.exit("not every command was delivered")
    with open(plan_path, "w") as f:
        json.dump(plan, f)
    print("produced %d commands" % len(plan))


def receive(port_file, bodies_path):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n).decode()
            with open(bodies_path, "a") as f:
                f.write(json.dumps({"path": self.path,
                                    "type": self.headers.get("Content-Type"),
                                    "body": body}) + "\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


def span_count(doc):
    return sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])


def attrs(kvs):
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which)
    return out


def check(brokers, topic, plan_path, pb_dir, bodies_path=None):
    sys.path.insert(0, pb_dir)
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    plan = json.load(open(plan_path))
    commands_topic = topic[: -len(".traces")] + ".commands"
    c = Consumer({"bootstrap.servers": brokers, "group.id": "traces-check-%d" % os.getpid(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    raw, idle = [], 0
    while idle < 8:
        m = c.poll(1.0)
        if m is None:
            idle += 1 if raw else 0.25
            continue
        if m.error():
            continue
        idle = 0
        raw.append(m.value().decode())
    c.close()
    if not raw:
        sys.exit("no message on %s" % topic)

    spans, resources = [], []
    for text in raw:
        if MARKER in text:
            sys.exit("a PHI marker value appears in the traces topic")
        doc = json.loads(text)
        # the JSON mapping's OTLP exception: ids are hex, not base64
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    assert len(s["traceId"]) == 32 and len(s["spanId"]) == 16, s
                    assert isinstance(s["startTimeUnixNano"], str), s
                    assert isinstance(s["kind"], int), s
        # OTLP/JSON ids are hex; protobuf's own mapping reads bytes as
        # base64, so the ids are swapped for their base64 form first, and
        # the rest of the document goes through json_format.Parse as is
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in s:
                            s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
        req = json_format.Parse(json.dumps(doc), trace_service_pb2.ExportTraceServiceRequest())
        for rs in req.resource_spans:
            resources.append(attrs(rs.resource.attributes))
            for ss in rs.scope_spans:
                spans.extend(ss.spans)
    print("%d messages, %d spans" % (len(raw), len(spans)))
    for r in resources:
        assert r.get("service.name") == "pgscribe", r
        assert r.get("service.version"), r
        assert r.get("service.instance.id") == "traces-worker", r

    by_id = {s.span_id.hex(): s for s in spans}
    K = trace_pb2.Span.SpanKind
    errors = []

    def expect(cond, what):
        if not cond:
            errors.append(what)

    traced_ids = set()
    for c in plan:
        tid = c["traceparent"][3:35] if c["traceparent"] else None
        mine = [s for s in spans if tid and s.trace_id.hex() == tid]
        if not c["traced"]:
            expect(not mine, "%s command %s has spans" % (c["kind"], c["command_id"]))
            continue
        traced_ids.add(tid)
        parent = c["traceparent"][36:52]
        proc = [s for s in mine if s.kind == K.SPAN_KIND_CONSUMER]
        expect(len(proc) == 1, "%s: %d process spans" % (c["command_id"], len(proc)))
        if len(proc) != 1:
            continue
        p = proc[0]
        a = attrs(p.attributes)
        expect(a.get("messaging.destination.name") == commands_topic, "destination %r"
               % a.get("messaging.destination.name"))
        expect(p.name == "process " + commands_topic, "process span name %r" % p.name)
        expect(p.parent_span_id.hex() == parent, "process span parent %s, want %s"
               % (p.parent_span_id.hex(), parent))
        expect(p.end_time_unix_nano > p.start_time_unix_nano > 0, "process span times")
        for k, v in (("messaging.system", "kafka"), ("messaging.operation.type", "process"),
                     ("messaging.operation.name", "process"),
                     ("pgscribe.command_id", c["command_id"]),
                     ("pgscribe.clinic_id", c["body"]["clinic_id"])):
            expect(a.get(k) == v, "process attribute %s = %r, want %r" % (k, a.get(k), v))
        expect(isinstance(a.get("messaging.destination.partition.id"), str),
               "partition id not a string")
        expect(isinstance(a.get("messaging.kafka.offset"), int), "offset not an int")
        expect(a.get("messaging.consumer.group.name", "").startswith("traces-"), "group name")
        expect(a.get("messaging.batch.message_count", 0) >= 1, "batch message count")
        expect("messaging.kafka.message.key" not in a, "message key exported")
        txns = [s for s in mine if s.kind == K.SPAN_KIND_CLIENT]
        expect(txns, "%s: no transaction span" % c["command_id"])
        for t in txns:
            ta = attrs(t.attributes)
            expect(t.parent_span_id == p.span_id, "transaction span's parent is not the "
                   "process span")
            expect(ta.get("db.system.name") == "postgresql", "db.system.name %r" % ta)
            expect(ta.get("db.namespace", "").startswith("pgs_t_traces"), "db.namespace %r"
                   % ta.get("db.namespace"))
            expect(ta.get("db.operation.name") == "INSERT", "db.operation.name")
            entity = c["body"]["entity"]
            expect(ta.get("db.collection.name") == "clinic." + entity, "db.collection.name %r"
                   % ta.get("db.collection.name"))
            expect(ta.get("db.query.summary") == "INSERT clinic." + entity, "db.query.summary")
            expect(t.name == ta.get("db.query.summary"), "transaction span name %r" % t.name)
            expect(p.start_time_unix_nano <= t.start_time_unix_nano <= t.end_time_unix_nano
                   <= p.end_time_unix_nano, "transaction span outside its process span")
        sends = [s for s in mine if s.kind == K.SPAN_KIND_PRODUCER]
        if c["kind"] == "poison":
            expect(a.get("pgscribe.outcome") == "dead_letter", "poison outcome %r"
                   % a.get("pgscribe.outcome"))
            expect(p.status.code == trace_pb2.Status.STATUS_CODE_ERROR, "poison status")
            expect(any(t.status.code == trace_pb2.Status.STATUS_CODE_ERROR and
                       attrs(t.attributes).get("db.response.status_code") == "23514"
                       for t in txns), "poison has no failed transaction span (23514)")
            expect(len(sends) == 1, "poison: %d send spans" % len(sends))
            for s in sends:
                sa = attrs(s.attributes)
                expect(s.parent_span_id == p.span_id, "send span's parent")
                expect(s.name == "send " + sa.get("messaging.destination.name", "?"),
                       "send span name %r" % s.name)
                expect(sa.get("messaging.destination.name", "").endswith(".commands.dlq"),
                       "send destination %r" % sa.get("messaging.destination.name"))
                expect(sa.get("messaging.operation.type") == "send", "send operation type")
                expect(sa.get("pgscribe.error.class") == "db-permanent", "error class %r"
                       % sa.get("pgscribe.error.class"))
                expect(sa.get("pgscribe.error.code") == "23514", "error code %r"
                       % sa.get("pgscribe.error.code"))
        else:
            dup = c["kind"] == "duplicate"
            want = "duplicate" if dup else "applied"
            expect(a.get("pgscribe.outcome") == want, "%s outcome %r, want %r"
                   % (c["kind"], a.get("pgscribe.outcome"), want))
            expect(not sends, "applied command has a send span")
            expect(any(t.status.code == trace_pb2.Status.STATUS_CODE_UNSET and
                       attrs(t.attributes).get("pgscribe.rows") == (0 if dup else 1)
                       for t in txns),
                   "%s: no committed transaction span with pgscribe.rows %d"
                   % (c["kind"], 0 if dup else 1))
    stray = [s for s in spans if s.trace_id.hex() not in traced_ids]
    expect(not stray, "%d spans of traces nobody sampled" % len(stray))
    for s in spans:
        expect(len(s.span_id) == 8 and any(s.span_id), "span id")
        if s.kind != K.SPAN_KIND_CONSUMER:
            expect(s.parent_span_id.hex() in by_id, "span %s has no exported parent" % s.name)
    if bodies_path:
        posts = [json.loads(l) for l in open(bodies_path) if l.strip()]
        expect(all(p["path"] == "/v1/traces" and p["type"] == "application/json"
                   for p in posts), "OTLP/HTTP path or content type")
        expect(not any(MARKER in p["body"] for p in posts), "a PHI marker value was POSTed")
        got = sorted(p["body"] for p in posts)
        expect(got == sorted(raw), "OTLP/HTTP received %d batches (%d spans), the topic %d (%d)"
               % (len(got), sum(span_count(json.loads(b)) for b in got), len(raw), len(spans)))
    if errors:
        sys.exit("\n".join(errors[:20]))
    print("ok: %d traced commands, %d spans, every assertion held" % (len(traced_ids), len(spans)))


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(*sys.argv[2:5])
    elif sys.argv[1] == "receive":
        receive(*sys.argv[2:4])
    else:
        check(*sys.argv[2:7])
