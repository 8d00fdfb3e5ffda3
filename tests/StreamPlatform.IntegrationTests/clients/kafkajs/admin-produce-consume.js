// What a KafkaJS user does against a cluster, step by step: admin topic and config calls,
// producing (gzip and uncompressed, acks -1 and 1, sendBatch), offsets by time, a consumer group
// (eachMessage, then eachBatch after a reset), the group admin calls, deleting records, the group
// and the topic. Each step's result goes into one JSON object printed on stdout; the C# test
// (KafkaJsTests) asserts on the values. A step that throws records { error } and the run goes on,
// so one run shows every difference.
//
// Usage: node admin-produce-consume.js <bootstrap> <topic> <groupId>
'use strict'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = require('kafkajs')

const [bootstrap, topic, groupId] = process.argv.slice(2)
if (!bootstrap || !topic || !groupId) {
  console.error('usage: node admin-produce-consume.js <bootstrap> <topic> <groupId>')
  process.exit(2)
}

const kafka = new Kafka({
  clientId: 'kafkajs-it',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  retry: { retries: 8 },
  connectionTimeout: 10000,
  requestTimeout: 30000,
})

const results = {}
const failures = []

async function step(name, fn) {
  try {
    results[name] = await fn()
  } catch (e) {
    failures.push(name)
    results[name] = { error: `${e.name}: ${e.message}`, type: e.type, cause: e.cause && String(e.cause) }
  }
}

// Resolves when `predicate` holds, polling; rejects after `timeoutMs`.
async function until(what, predicate, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 100))
  }
}

const pick = (obj, keys) => Object.fromEntries(keys.map(k => [k, obj[k]]))
const configMap = resource =>
  Object.fromEntries(resource.configEntries.map(e => [e.configName, e.configValue]))

async function main() {
  const admin = kafka.admin()
  await admin.connect()

  await step('createTopics', () =>
    admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '86400000' }] }],
    })
  )
  // KafkaJS answers false (no error) for a topic that exists already.
  await step('createTopicsAgain', () => admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] }))
  await step('listTopicsHasTopic', async () => (await admin.listTopics()).includes(topic))

  await step('fetchTopicMetadata', async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    return topics.map(t => ({
      name: t.name,
      partitions: t.partitions
        .map(p => pick(p, ['partitionErrorCode', 'partitionId', 'leader', 'replicas', 'isr']))
        .sort((a, b) => a.partitionId - b.partitionId),
    }))
  })

  await step('describeCluster', () => admin.describeCluster())
  const brokerId = results.describeCluster.brokers ? results.describeCluster.brokers[0].nodeId : 1

  await step('describeTopicConfigs', async () => {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }],
    })
    return resources.map(r => ({ ...pick(r, ['errorCode', 'resourceName', 'resourceType']), configs: configMap(r) }))
  })

  await step('describeBrokerConfigs', async () => {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.BROKER, name: String(brokerId) }],
    })
    return resources.map(r => ({
      ...pick(r, ['errorCode', 'resourceName', 'resourceType']),
      configCount: r.configEntries.length,
      configs: pick(configMap(r), ['num.partitions', 'log.retention.hours', 'message.max.bytes']),
    }))
  })

  // AlterConfigs (not incremental) replaces the topic's whole config: retention.ms, set at
  // creation and not listed here, goes back to its default.
  await step('alterConfigs', async () => {
    const answer = await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'max.message.bytes', value: '2000000' }] }],
    })
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes', 'retention.ms'] }],
    })
    return {
      answer: answer.resources.map(r => pick(r, ['errorCode', 'errorMessage', 'resourceName', 'resourceType'])),
      after: configMap(resources[0]),
    }
  })

  const beforeProduce = Date.now() - 1000
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const messages = (prefix, n) =>
    Array.from({ length: n }, (_, i) => ({ key: `${prefix}-k${i}`, value: `${prefix}-v${i}`, headers: { h: `${prefix}-${i}` } }))
  const summary = records =>
    records
      .map(r => pick(r, ['topicName', 'partition', 'errorCode', 'baseOffset', 'logAppendTime', 'logStartOffset']))
      .sort((a, b) => a.partition - b.partition)

  await step('sendGzipAcksAll', async () =>
    summary(await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: messages('gzip', 30) }))
  )
  await step('sendNoneAcksLeader', async () =>
    summary(await producer.send({ topic, acks: 1, compression: CompressionTypes.None, messages: messages('plain', 30) }))
  )
  await step('sendBatch', async () =>
    summary(
      await producer.sendBatch({
        acks: -1,
        compression: CompressionTypes.GZIP,
        topicMessages: [
          { topic, messages: messages('batchA', 20) },
          { topic, messages: messages('batchB', 20) },
        ],
      })
    )
  )
  await producer.disconnect()
  const produced = 100

  await step('fetchTopicOffsets', async () =>
    (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition)
  )
  await step('fetchTopicOffsetsByTimestampBefore', async () =>
    (await admin.fetchTopicOffsetsByTimestamp(topic, beforeProduce)).sort((a, b) => a.partition - b.partition)
  )
  await step('fetchTopicOffsetsByTimestampAfter', async () =>
    (await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() + 3600000)).sort((a, b) => a.partition - b.partition)
  )

  // A group consuming from the beginning with eachMessage; described and listed while it runs.
  await step('consumeEachMessage', async () => {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 30000, heartbeatInterval: 1000 })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    const seen = new Map()
    let headersOk = true
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const key = message.key.toString()
        seen.set(key, { value: message.value.toString(), partition, offset: message.offset })
        const expected = key.replace('-k', '-')
        if (!message.headers || !message.headers.h || message.headers.h.toString() !== expected) headersOk = false
      },
    })
    let described, listed
    try {
      await until('all messages through eachMessage', () => seen.size >= produced)
      described = await admin.describeGroups([groupId])
      listed = await admin.listGroups()
    } finally {
      await consumer.disconnect()
    }
    const valuesOk = [...seen.entries()].every(([k, v]) => v.value === k.replace('-k', '-v'))
    return {
      count: seen.size,
      valuesOk,
      headersOk,
      describe: described.groups.map(g => ({
        ...pick(g, ['errorCode', 'groupId', 'protocol', 'protocolType', 'state']),
        members: g.members.map(m => ({
          ...pick(m, ['clientHost', 'clientId']),
          memberIdPrefix: m.memberId.startsWith('kafkajs-it-'),
          hasAssignment: m.memberAssignment.length > 0,
          hasMetadata: m.memberMetadata.length > 0,
        })),
      })),
      listed: listed.groups.filter(g => g.groupId === groupId),
    }
  })

  await step('describeGroupsEmpty', async () =>
    (await admin.describeGroups([groupId])).groups.map(g => ({ ...pick(g, ['errorCode', 'groupId', 'state', 'protocolType']), members: g.members.length }))
  )
  await step('fetchOffsetsCommitted', async () => {
    const answer = await admin.fetchOffsets({ groupId, topics: [topic] })
    return answer.map(t => ({ topic: t.topic, partitions: t.partitions.map(p => pick(p, ['partition', 'offset'])).sort((a, b) => a.partition - b.partition) }))
  })
  await step('setOffsets', async () => {
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }, { partition: 1, offset: '2' }] })
    const answer = await admin.fetchOffsets({ groupId, topics: [topic] })
    return answer[0].partitions.map(p => pick(p, ['partition', 'offset'])).sort((a, b) => a.partition - b.partition)
  })
  await step('resetOffsetsEarliest', async () => {
    await admin.resetOffsets({ groupId, topic, earliest: true })
    const answer = await admin.fetchOffsets({ groupId, topics: [topic] })
    return answer[0].partitions.map(p => pick(p, ['partition', 'offset'])).sort((a, b) => a.partition - b.partition)
  })

  // The same group again, after the reset: everything once more, through eachBatch. KafkaJS
  // treats the committed -2 as no offset and starts where fromBeginning says.
  await step('consumeEachBatch', async () => {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 30000, heartbeatInterval: 1000 })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    const keys = new Set()
    let batches = 0
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        batches++
        for (const message of batch.messages) {
          keys.add(message.key.toString())
          resolveOffset(message.offset)
        }
        await heartbeat()
      },
    })
    try {
      await until('all messages through eachBatch', () => keys.size >= produced)
    } finally {
      await consumer.disconnect()
    }
    return { count: keys.size, batchesAtLeastOne: batches > 0 }
  })

  await step('deleteTopicRecords', async () => {
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '2' }] })
    return (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition)
  })

  await step('deleteGroups', () => admin.deleteGroups([groupId]))
  await step('describeGroupsAfterDelete', async () =>
    (await admin.describeGroups([groupId])).groups.map(g => pick(g, ['errorCode', 'groupId', 'state']))
  )
  await step('listGroupsAfterDelete', async () => (await admin.listGroups()).groups.some(g => g.groupId === groupId))

  await step('deleteTopics', async () => {
    await admin.deleteTopics({ topics: [topic], timeout: 30000 })
    await until('the topic to leave listTopics', async () => !(await admin.listTopics()).includes(topic), 30000)
    return true
  })

  await admin.disconnect()
}

main()
  .then(() => {
    console.log(JSON.stringify({ failures, results }, null, 2))
    process.exit(0)
  })
  .catch(e => {
    console.log(JSON.stringify({ failures: [...failures, 'main'], results, main: `${e.name}: ${e.message}` }, null, 2))
    process.exit(1)
  })
