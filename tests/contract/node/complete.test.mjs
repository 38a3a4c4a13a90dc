// Completion through the official Node SDK: JSON and JSONL streams, grounded in a dataset.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChatBotKit } from '@chatbotkit/sdk'

const baseUrl = process.env.OBK_URL
const a = new ChatBotKit({ secret: process.env.OBK_TOKEN_A, baseUrl, retries: 0 })

async function groundedConversation() {
  const { id: datasetId } = await a.dataset.create({ name: 'zephyr' })
  const { id: recordId } = await a.dataset.record.create(datasetId, {
    text: 'The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.',
  })
  const { id: botId } = await a.bot.create({
    model: 'smollm2/maxTokens=40/temperature=0',
    backstory: 'Answer briefly from the facts given.',
    datasetId,
  })
  const { id } = await a.conversation.create({ botId })
  return { id, recordId }
}

const QUESTION = 'What is the maximum payload of the Zephyr-9 robot?'

test('complete answers with 42 and names its source', async () => {
  const { id, recordId } = await groundedConversation()
  const out = await a.conversation.complete(id, { text: QUESTION })
  assert.match(out.text, /42/)
  assert.equal(out.end.reason, 'stop')
  assert.equal(typeof out.usage.token, 'number')
  const message = await a.conversation.message.fetch(id, out.id)
  assert.ok(message.meta.sources.includes(recordId))
  // Citations: in the answer's meta and the stored message's, each quote verbatim in its record.
  assert.deepEqual(out.meta, message.meta)
  assert.ok(out.meta.citations.length > 0)
  const record = await a.dataset.record.fetch(out.meta.citations[0].datasetId, recordId)
  for (const c of out.meta.citations) {
    assert.equal(c.recordId, recordId)
    assert.ok(record.text.includes(c.quote))
    assert.ok(out.text.slice(c.start, c.end).length > 0)
  }
  assert.ok(out.meta.grounding > 0 && out.meta.grounding <= 1)
  const checked = await a.clientFetch(`/api/v1/conversation/${id}/message/${out.id}/verify`, { record: {} })
  assert.equal(checked.ok, true)
})

test('evaluate_dataset measures the search on labelled queries', async () => {
  const { id: datasetId } = await a.dataset.create({ name: 'eval' })
  const { id: alpha } = await a.dataset.record.create(datasetId, { text: 'alpha' })
  await a.dataset.record.create(datasetId, { text: 'charlie delta' })
  await a.dataset.record.create(datasetId, { text: 'delta echo', meta: { docId: 'e' } })
  const queries = [
    { query: 'alpha', relevant: [alpha] },
    { query: 'charlie delta', relevant: [{ meta: { docId: 'e' } }] },
  ]
  const out = await a.clientFetch(`/api/v1/dataset/${datasetId}/evaluate`, {
    record: { queries, modes: ['lexical'] },
  })
  assert.deepEqual(Object.keys(out.modes), ['lexical'])
  assert.deepEqual(out.modes.lexical.queries.map((q) => q.ranks), [[1], [2]])
  assert.equal(out.modes.lexical.mrr, 0.75)
  assert.ok(Math.abs(out.modes.lexical.ndcg - (1 + 1 / Math.log2(3)) / 2) < 1e-6)
})

test('evaluate_bot asks each question through the bot and scores the answers', async () => {
  const { id: datasetId } = await a.dataset.create({ name: 'qa' })
  await a.dataset.record.create(datasetId, {
    text: 'The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.',
  })
  const { id: botId } = await a.bot.create({ model: 'smollm2/maxTokens=32/temperature=0', datasetId })
  const questions = [
    { id: 'q1', question: QUESTION, answers: ['42'] },
    { id: 'q2', question: 'What colour is the Zephyr-9 robot?', unanswerable: true },
  ]
  const out = await a.clientFetch(`/api/v1/bot/${botId}/evaluate`, { record: { questions } })
  assert.equal(out.id, botId)
  assert.deepEqual(out.questions.map((q) => [q.id, q.answerable]), [['q1', true], ['q2', false]])
  assert.deepEqual([out.answerable.count, out.unanswerable.count], [1, 1])
  for (const q of out.questions) assert.ok(['right', 'refused', 'wrong'].includes(q.verdict))
  const { items } = await a.conversation.list({})
  assert.ok(!items.some((c) => c.botId === botId)) // the evaluation's conversations are gone
})

test('complete streams tokens, usage and one result', async () => {
  const { id } = await groundedConversation()
  const types = []
  let text = ''
  let result
  for await (const event of a.conversation.complete(id, { text: QUESTION }).stream()) {
    types.push(event.type)
    if (event.type === 'token') text += event.data.token
    if (event.type === 'result') result = event.data
  }
  assert.equal(types.filter((t) => t === 'result').length, 1)
  assert.equal(types.at(-1), 'result')
  assert.ok(types.includes('token') && types.includes('usage'))
  assert.match(result.text, /42/)
  assert.equal(text.trim(), result.text)
  const usage = await a.usage.fetch()
  assert.ok(usage.tokens > 0 && usage.messages > 0)
})

test('an unknown model is a clear provider error', async () => {
  const { id } = await a.conversation.create({ model: 'no-such-model' })
  await assert.rejects(a.conversation.complete(id, { text: 'hi' }), (err) => {
    assert.equal(err.code, 'BAD_GATEWAY')
    assert.match(err.message, /OBK_MODELS_FILE/)
    return true
  })
})
