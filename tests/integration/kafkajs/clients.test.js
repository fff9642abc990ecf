// The service seen through kafkajs, the client the Node.js original used: what kafkajs produces
// is processed (and deduplicated), and what the service publishes reads back in kafkajs exactly
// as the original's consumers expect it: JSON values keyed by userId, partitioned alike.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { Kafka, logLevel, Partitioners } = require('kafkajs');

const binary = process.env.UAS_BINARY;
const topic = 'user-activity-events';

// Starts the service on a free port with its embedded broker; resolves once it listens.
function startService() {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env: { ...process.env, PORT: '0', KAFKA_BROKERS: 'embedded' } });
    const lines = [];
    let broker, port, pending = '';
    const timer = setTimeout(() => reject(new Error('service did not start:\n' + lines.join('\n'))), 20000);
    child.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        lines.push(line);
        broker ??= line.match(/Embedded Kafka broker started: address=([^,]+)/)?.[1];
        port ??= line.match(/HTTP server listening: port=(\d+)/)?.[1];
        if (broker && port && line.includes('HTTP server listening')) {
          clearTimeout(timer);
          resolve({ child, broker, url: `http://127.0.0.1:${port}`, lines });
        }
      }
    });
  });
}

// Generous: under a parallel test run, kafkajs's group join alone can take several seconds.
async function waitFor(check, ms = 45000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const processed = async (service) => (await fetch(`${service.url}/events/processed`)).json();

test('kafkajs and the service', async (t) => {
  const service = await startService();
  let finished = 0; // subtests that ran to their end: a failure shows the service's log
  const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [service.broker], logLevel: logLevel.NOTHING });
  try {
    await t.test('an event kafkajs produces twice is stored once; poison goes to the dead-letter topic as sent', async () => {
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      const event = {
        eventId: '7d1c2a7e-1111-4a2b-8c3d-000000000001', userId: 'js-user', eventType: 'LOGOUT',
        timestamp: new Date().toISOString(), payload: { from: 'kafkajs' },
      };
      await producer.send({
        topic,
        messages: [
          { key: 'js-user', value: JSON.stringify(event) },
          { key: 'js-user', value: '{"eventId": "broken', headers: { origin: 'kafkajs' } },
          { key: 'js-user', value: JSON.stringify(event) },
          { key: 'js-user', value: null },
          { key: 'js-user', value: JSON.stringify({ ...event, eventId: '7d1c2a7e-1111-4a2b-8c3d-000000000002' }),
            headers: { 'schema-version': '2' } },
        ],
      });
      await producer.disconnect();
      // The duplicate's line is written once the store has answered for its batch, so a read
      // that starts after the line has the event (one that started before might not).
      const events = await waitFor(async () =>
        service.lines.some((l) => l.includes(`Duplicate event ignored: eventId=${event.eventId}`))
        && processed(service));
      assert.ok(events, 'the duplicate was never reported');
      assert.deepEqual(events.filter((e) => e.eventId === event.eventId), [event]);
      // The poison is on the dead-letter topic, as kafkajs sent it, with where it came from and why.
      const letters = [];
      const reader = kafka.consumer({ groupId: 'kafkajs-dlq-reader' });
      await reader.connect();
      await reader.subscribe({ topic: `${topic}.dlq`, fromBeginning: true });
      await reader.run({ eachMessage: async ({ message }) => { letters.push(message); } });
      await waitFor(() => letters.length >= 3);
      await reader.disconnect();
      const text = (b) => (b === null ? null : b.toString());
      assert.equal(letters.length, 3);
      assert.deepEqual(letters.map((m) => text(m.headers['dlq.reason'])).sort(),
        ['malformed', 'malformed', 'unknown-schema']);
      const broken = letters.find((m) => text(m.value) === '{"eventId": "broken');
      assert.ok(broken, 'the broken JSON is not on the dead-letter topic');
      assert.equal(text(broken.key), 'js-user');
      assert.equal(text(broken.headers.origin), 'kafkajs');
      assert.equal(text(broken.headers['dlq.original.topic']), topic);
      assert.equal(text(broken.headers['dlq.consumer.group']), 'user-activity-consumer-group');
      assert.ok(letters.some((m) => m.value === null && text(m.headers['dlq.reason']) === 'malformed'));
      const versioned = letters.find((m) => text(m.headers['dlq.reason']) === 'unknown-schema');
      assert.equal(text(versioned.headers['schema-version']), '2');
      assert.equal(service.lines.filter((l) => l.includes('Skipped message')).length, 3);
      finished++;
    });

    await t.test('POSTed events read back in kafkajs, keyed by userId, on the partition kafkajs would pick', async () => {
      const posted = new Map();
      for (const userId of ['ann', 'ben', 'cat', 'dan', 'eve', 'fay']) {
        const res = await fetch(`${service.url}/events/generate`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ userId, eventType: 'PRODUCT_VIEW', payload: { sku: userId.toUpperCase() } }),
        });
        assert.equal(res.status, 201);
        posted.set((await res.json()).eventId, userId);
      }
      const consumer = kafka.consumer({ groupId: 'kafkajs-reader' });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen = new Map();
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          let value;
          try {
            value = JSON.parse(message.value.toString());
          } catch {
            return; // the poison of the test before
          }
          if (posted.has(value.eventId)) seen.set(value.eventId, { partition, key: message.key.toString(), value });
        },
      });
      await waitFor(() => seen.size === posted.size);
      await consumer.disconnect();
      assert.equal(seen.size, posted.size);
      for (const [eventId, userId] of posted) {
        const { partition, key, value } = seen.get(eventId);
        assert.equal(key, userId);
        assert.deepEqual(Object.keys(value).sort(), ['eventId', 'eventType', 'payload', 'timestamp', 'userId']);
        assert.equal(value.payload.sku, userId.toUpperCase());
        const expected = Partitioners.DefaultPartitioner()({
          topic,
          partitionMetadata: [0, 1, 2].map((p) => ({ partitionId: p, leader: 1 })),
          message: { key: userId },
        });
        assert.equal(partition, expected, `partition of ${userId}`);
      }
      finished++;
    });
  } finally {
    if (finished < 2) console.error('service log:\n' + service.lines.slice(-40).join('\n'));
    service.child.kill('SIGTERM');
    await new Promise((r) => service.child.on('exit', r));
  }
});
