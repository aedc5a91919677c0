"""Consumer-group admin APIs through confluent-kafka (librdkafka's Python
client): ListConsumerGroupOffsets (OffsetFetch), AlterConsumerGroupOffsets
(OffsetCommit), ListGroups, DescribeGroups and DeleteGroups. Run by
tests/group_admin_clients.rs against a broker it started; exits non-zero on
the first failed check."""

import sys
import time

from confluent_kafka import Consumer, ConsumerGroupState, Producer, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions as Group
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
TOPIC = "py-offsets"

for f in admin.create_topics([NewTopic(TOPIC, 2, 1)]).values():
    f.result(20)
p = Producer({"bootstrap.servers": bootstrap})
for i in range(20):
    p.produce(TOPIC, key=str(i), value=b"v")
p.flush(20)


def committed(group):
    r = admin.list_consumer_group_offsets([Group(group)])[group].result(20)
    return {tp.partition: tp.offset for tp in r.topic_partitions}


# A standalone commit (no membership), read back through the admin API.
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-group", "enable.auto.commit": False})
c.commit(offsets=[TopicPartition(TOPIC, 0, 7), TopicPartition(TOPIC, 1, 3)], asynchronous=False)
c.close()
got = committed("py-group")
assert got == {0: 7, 1: 3}, got

listed = admin.list_consumer_groups().result(20)
assert any(g.group_id == "py-group" for g in listed.valid), listed.valid
described = admin.describe_consumer_groups(["py-group"])["py-group"].result(20)
assert described.state == ConsumerGroupState.EMPTY, described.state

# AlterConsumerGroupOffsets (an OffsetCommit by the admin) on the empty group.
admin.alter_consumer_group_offsets([Group("py-group", [TopicPartition(TOPIC, 0, 11)])])["py-group"].result(20)
got = committed("py-group")
assert got == {0: 11, 1: 3}, got

# A member consuming the topic: the group is Stable with one member.
live = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-live", "session.timeout.ms": 6000,
                 "auto.offset.reset": "earliest"})
live.subscribe([TOPIC])
deadline = time.time() + 30
while not live.assignment():
    assert time.time() < deadline, "py-live never got an assignment"
    live.poll(0.1)
described = admin.describe_consumer_groups(["py-live"])["py-live"].result(20)
assert described.state == ConsumerGroupState.STABLE and len(described.members) == 1, described
live.close()

admin.delete_consumer_groups(["py-group"])["py-group"].result(20)
assert committed("py-group") in ({}, {0: -1001, 1: -1001}), committed("py-group")
print("ok")
