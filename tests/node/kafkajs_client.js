// kafkajs (its own protocol code, in JavaScript) against a broker the test
// started: creates a topic, produces with an idempotent producer (acks=all,
// a producer id from InitProducerId, sequenced batches), and reads every
// message back in a consumer group; then a transactional producer commits
// one transaction (messages and a group's offsets) and aborts another. Run by tests/node_clients.rs; exits
// non-zero on the first failed check.

const { Kafka, logLevel } = require("kafkajs");

const broker = process.argv[2];
const TOPIC = "kjs-topic";
const N = 300;

async function main() {
  const kafka = new Kafka({
    clientId: "strom-test",
    brokers: [broker],
    logLevel: logLevel.WARN,
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }] });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const offsets = new Set();
  for (let i = 0; i < N; i += 50) {
    const messages = [];
    for (let j = i; j < i + 50; j++) {
      messages.push({ key: `k${j % 7}`, value: `v${j}` });
    }
    const sent = await producer.send({ topic: TOPIC, acks: -1, messages });
    for (const r of sent) {
      if (r.errorCode !== 0) throw new Error(`produce error ${r.errorCode}`);
      offsets.add(`${r.partition}:${r.baseOffset}`);
    }
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: "kjs-group" });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const seen = new Set();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.size} of ${N} consumed`)), 60000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          seen.add(message.value.toString());
          if (seen.size === N) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  for (let i = 0; i < N; i++) {
    if (!seen.has(`v${i}`)) throw new Error(`v${i} was not consumed`);
  }
  console.log(`kafkajs: ${N} idempotent messages produced and consumed`);
  await transactions(kafka);
  console.log("kafkajs: transactions committed and aborted as read back");
}

// A transactional producer: one transaction commits messages and a
// group's offsets, the next is aborted; a read_committed consumer sees
// only the committed messages and the group only the committed offsets.
async function transactions(kafka) {
  const TXN_TOPIC = "kjs-txn";
  const GROUP = "kjs-txn-group";
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TXN_TOPIC, numPartitions: 3 }] });
  const producer = kafka.producer({
    transactionalId: "kjs-txn-id",
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const committed = await producer.transaction();
  const values = (tag) => Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 5}`, value: `${tag}${i}` }));
  await committed.send({ topic: TXN_TOPIC, messages: values("c") });
  await committed.sendOffsets({
    consumerGroupId: GROUP,
    topics: [{ topic: TOPIC, partitions: [{ partition: 0, offset: "5" }] }],
  });
  await committed.commit();
  const aborted = await producer.transaction();
  await aborted.send({ topic: TXN_TOPIC, messages: values("a") });
  await aborted.sendOffsets({
    consumerGroupId: GROUP,
    topics: [{ topic: TOPIC, partitions: [{ partition: 0, offset: "9" }] }],
  });
  await aborted.abort();
  await producer.disconnect();

  const fetched = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  const p0 = fetched[0].partitions.find((p) => p.partition === 0);
  if (!p0 || p0.offset !== "5") throw new Error(`group offset ${JSON.stringify(fetched)}, not 5`);
  await admin.disconnect();

  const consumer = kafka.consumer({ groupId: "kjs-txn-reader", readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: TXN_TOPIC, fromBeginning: true });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} of 30 consumed: ${seen}`)), 60000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          seen.push(message.value.toString());
          if (seen.length >= 30) {
            clearTimeout(timer);
            // Anything aborted would have come with or before the rest.
            setTimeout(resolve, 1000);
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  const want = values("c").map((m) => m.value).sort();
  const got = [...seen].sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`read_committed consumer saw ${got}`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  }
);
