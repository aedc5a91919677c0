// kafkajs (its own protocol code, in JavaScript) against a broker the test
// started: creates a topic, produces with an idempotent producer (acks=all,
// a producer id from InitProducerId, sequenced batches), and reads every
// message back in a consumer group. Run by tests/node_clients.rs; exits
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
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  }
);
