// The neighbour actions the other suites leave out: send/receive and one dataset file's sync,
// through the official Node SDK against `obk serve` (run by tests/contract/test_node_sdk.py).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChatBotKit } from '@chatbotkit/sdk'

const baseUrl = process.env.OBK_URL
const a = new ChatBotKit({ secret: process.env.OBK_TOKEN_A, baseUrl, retries: 0 })
const b = new ChatBotKit({ secret: process.env.OBK_TOKEN_B, baseUrl, retries: 0 })

test('send stores the user message, receive answers it (JSON and JSONL)', async () => {
  const { id } = await a.conversation.create({ model: 'smollm2/maxTokens=6/temperature=0' })
  const sent = await a.conversation.send(id, { text: 'Say hello.' })
  assert.equal(typeof sent.id, 'string')
  const received = await a.conversation.receive(id, {})
  assert.equal(typeof received.text, 'string')
  assert.ok(received.usage.token > 0)
  const messages = (await a.conversation.message.list(id)).items
  assert.deepEqual(messages.map((m) => m.type), ['user', 'bot'])
  assert.equal(messages[1].text, received.text)

  await a.conversation.send(id, { text: 'Again.' })
  const types = []
  for await (const event of a.conversation.receive(id, {}).stream()) types.push(event.type)
  assert.equal(types.at(-1), 'result')
  assert.equal(types.filter((t) => t === 'result').length, 1)
  await assert.rejects(b.conversation.send(id, { text: 'intruder' }), (err) => err.code === 'NOT_FOUND')
})

test('dataset.file.sync imports one attached file into that dataset', async () => {
  const { id: fileId } = await a.file.create({ name: 'hours.txt' })
  await a.file.upload(fileId, { data: 'The shop opens at 9am on weekdays.', type: 'text/plain', name: 'hours.txt' })
  const { id: dsId } = await a.dataset.create({ name: 'hours' })
  await a.dataset.file.attach(dsId, fileId, { type: 'source' })
  const synced = await a.dataset.file.sync(dsId, fileId, {})
  assert.equal(synced.id, fileId)
  const deadline = Date.now() + 120000
  let items = []
  while (Date.now() < deadline && !items.length) {
    items = (await a.dataset.record.list(dsId)).items
    if (!items.length) await new Promise((r) => setTimeout(r, 300))
  }
  assert.deepEqual(items.map((r) => r.text), ['The shop opens at 9am on weekdays.'])
  await assert.rejects(b.dataset.file.sync(dsId, fileId, {}), (err) => err.code === 'NOT_FOUND')
})
