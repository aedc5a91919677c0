"""kafka-python (a pure-Python client with its own protocol code and API
version choices): creates a topic, produces acks=all with gzip, consumes in
a group and commits, and reads the group back through its admin client. Run
by tests/group_admin_clients.rs against a broker it started; exits non-zero
on the first failed check.

The producer keeps kafka-python 3.x's defaults, idempotence on: it asks
for a producer id (InitProducerId) and sends sequenced batches. Then a
transactional producer commits one transaction and aborts another, and a
read_committed consumer reads only the committed one."""

import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap = sys.argv[1]
TOPIC, GROUP, N = "kp-topic", "kp-group", 300

admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic(TOPIC, 3, 1)])

producer = KafkaProducer(
    bootstrap_servers=bootstrap,
    acks="all",
    compression_type="gzip",
)
assert producer.config["enable_idempotence"], "kafka-python's default is idempotent"
sent = [
    producer.send(TOPIC, key=b"k%d" % (i % 7), value=b"v%d" % i) for i in range(N)
]
producer.flush()
acked = [f.get(timeout=20) for f in sent]
assert len({(m.partition, m.offset) for m in acked}) == N, "one offset per message"
producer.close()

consumer = KafkaConsumer(
    TOPIC,
    bootstrap_servers=bootstrap,
    group_id=GROUP,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    consumer_timeout_ms=20000,
)
seen, last = [], {}
for m in consumer:
    assert m.offset > last.get(m.partition, -1), "in order per partition"
    last[m.partition] = m.offset
    seen.append(m.value)
    if len(seen) == N:
        break
assert sorted(seen) == sorted(b"v%d" % i for i in range(N)), "each message once"
consumer.commit()
positions = {tp.partition: consumer.position(tp) for tp in consumer.assignment()}
consumer.close()

committed = admin.list_group_offsets(GROUP)
got = {tp.partition: m.offset for tp, m in committed[GROUP].items() if tp.topic == TOPIC}
assert got == positions, (got, positions)
assert sum(got.values()) == N, got
groups = admin.list_groups()
assert {"group_id": GROUP, "protocol_type": "consumer", "group_state": "Empty"} in groups, groups
described = admin.describe_groups([GROUP])[GROUP]
assert described["group_state"] == "Empty" and described["members"] == [], described

# A transactional producer (kafka-python's own transaction code): one
# transaction commits, the next aborts; read_committed sees the first only.
TXN_TOPIC = "kp-txn"
admin.create_topics([NewTopic(TXN_TOPIC, 2, 1)])
txn = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-txn-id")
txn.init_transactions()
txn.begin_transaction()
for i in range(20):
    txn.send(TXN_TOPIC, key=b"k%d" % i, value=b"c%d" % i)
txn.commit_transaction()
txn.begin_transaction()
for i in range(20):
    txn.send(TXN_TOPIC, key=b"k%d" % i, value=b"a%d" % i)
txn.flush()
txn.abort_transaction()
txn.close()
reader = KafkaConsumer(
    TXN_TOPIC,
    bootstrap_servers=bootstrap,
    auto_offset_reset="earliest",
    isolation_level="read_committed",
    enable_auto_commit=False,
    consumer_timeout_ms=5000,
)
read = sorted(m.value for m in reader)
reader.close()
assert read == sorted(b"c%d" % i for i in range(20)), read
admin.close()
print("ok")
