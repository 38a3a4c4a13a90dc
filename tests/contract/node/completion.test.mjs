// The completion routes complete.test.mjs leaves out, through the official Node SDK: the
// stateless complete (JSON and JSONL, grounded by an inline datasetId), send streamed, entities,
// and a turn that continues without new text.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChatBotKit } from '@chatbotkit/sdk'

const baseUrl = process.env.OBK_URL
const a = new ChatBotKit({ secret: process.env.OBK_TOKEN_A, baseUrl, retries: 0 })
const b = new ChatBotKit({ secret: process.env.OBK_TOKEN_B, baseUrl, retries: 0 })

const FACT = 'The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.'
const QUESTION = 'What is the maximum payload of the Zephyr-9 robot?'
const MODEL = 'smollm2/maxTokens=40/temperature=0'

async function stateless() {
  const { id: datasetId } = await a.dataset.create({ name: 'zephyr' })
  await a.dataset.record.create(datasetId, { text: FACT })
  return {
    messages: [{ type: 'user', text: QUESTION }],
    model: MODEL,
    backstory: 'Answer briefly from the facts given.',
    datasetId,
  }
}

test('stateless complete answers from an inline dataset, with no id', async () => {
  const out = await a.conversation.complete(null, await stateless())
  assert.match(out.text, /42/)
  assert.equal(out.id, undefined)
  assert.equal(out.end.reason, 'stop')
  assert.ok(out.usage.token > 0)
})

test('stateless complete streams tokens, usage and one result', async () => {
  const types = []
  let text = ''
  let result
  for await (const event of a.conversation.complete(null, await stateless()).stream()) {
    types.push(event.type)
    if (event.type === 'token') text += event.data.token
    if (event.type === 'result') result = event.data
  }
  assert.deepEqual(types.slice(0, 2), ['completeBegin', 'token'])
  assert.deepEqual(types.slice(-3), ['usage', 'completeEnd', 'result'])
  assert.match(result.text, /42/)
  assert.equal(text.trim(), result.text)
  assert.equal(result.id, undefined)
})

test('stateless complete with another account dataset is not found', async () => {
  const request = await stateless()
  await assert.rejects(b.conversation.complete(null, request), (err) => err.code === 'NOT_FOUND')
})

test('send streams one result with the stored message id and its entities', async () => {
  const { id } = await a.conversation.create({ model: 'smollm2/maxTokens=4' })
  const entities = [{ type: 'name', begin: 11, end: 16, text: 'Alice' }]
  const events = []
  for await (const event of a.conversation.send(id, { text: 'My name is Alice.', entities }).stream()) {
    events.push(event)
  }
  assert.deepEqual(events.map((e) => e.type), ['result'])
  assert.deepEqual(events[0].data.entities, entities)
  const message = await a.conversation.message.fetch(id, events[0].data.id)
  assert.equal(message.text, 'My name is Alice.')
})

test('complete stores the entities of the user message, then continues without text', async () => {
  const { id } = await a.conversation.create({ model: 'smollm2/maxTokens=4' })
  const entities = [{ type: 'name', begin: 11, end: 16, text: 'Alice' }]
  await a.conversation.complete(id, { text: 'My name is Alice.', entities })
  const again = await a.conversation.complete(id, {})
  assert.equal(typeof again.text, 'string')
  const messages = (await a.conversation.message.list(id)).items
  assert.deepEqual(messages.map((m) => m.type), ['user', 'bot', 'bot'])
  assert.deepEqual(messages[0].entities, entities)
})
