// The official Node SDK against `obk serve`: every engine action, errors, two accounts' isolation.
// Run by tests/contract/test_node_sdk.py with OBK_URL, OBK_TOKEN_A and OBK_TOKEN_B set.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChatBotKit } from '@chatbotkit/sdk'

const baseUrl = process.env.OBK_URL
const a = new ChatBotKit({ secret: process.env.OBK_TOKEN_A, baseUrl, retries: 0 })
const b = new ChatBotKit({ secret: process.env.OBK_TOKEN_B, baseUrl, retries: 0 })

async function rejects(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    return true
  })
}

test('bots: create, fetch, update, list with meta filter and cursor, delete', async () => {
  const run = `run-${Date.now()}`
  const ids = []
  for (let i = 0; i < 3; i++) {
    const { id } = await a.bot.create({ name: `bot ${i}`, backstory: 'Be brief.', model: 'gpt-4o', meta: { run } })
    ids.push(id)
  }
  await a.bot.create({ name: 'other', meta: { run: 'elsewhere' } })
  const fetched = await a.bot.fetch(ids[0])
  assert.equal(fetched.name, 'bot 0')
  assert.equal(typeof fetched.createdAt, 'number')
  await a.bot.update(ids[0], { description: 'updated' })
  assert.equal((await a.bot.fetch(ids[0])).description, 'updated')

  const first = await a.bot.list({ take: 2, meta: { run } })
  assert.equal(first.items.length, 2)
  assert.equal(typeof first.cursor, 'string')
  const second = await a.bot.list({ take: 2, meta: { run }, cursor: first.cursor })
  const seen = [...first.items, ...second.items].map((x) => x.id)
  assert.deepEqual(seen.sort(), [...ids].sort())
  assert.equal(second.cursor, '')

  const streamed = []
  for await (const item of a.bot.list({ meta: { run } }).stream()) {
    assert.equal(item.type, 'item')
    streamed.push(item.data.id)
  }
  assert.deepEqual(streamed.sort(), [...ids].sort())

  assert.deepEqual(await a.bot.delete(ids[2]), { id: ids[2] })
  await rejects(a.bot.fetch(ids[2]), 'NOT_FOUND')
})

test('datasets and records', async () => {
  const { id: dsId } = await a.dataset.create({ name: 'KB', searchMaxRecords: 4, store: 'x' })
  const ds = await a.dataset.fetch(dsId)
  assert.equal(ds.searchMaxRecords, 4)
  assert.equal(typeof ds.store, 'string')
  await a.dataset.update(dsId, { description: 'facts' })
  assert.ok((await a.dataset.list({})).items.some((d) => d.id === dsId))
  const { id: recId } = await a.dataset.record.create(dsId, { text: 'Paris is the capital of France.', meta: { lang: 'en' } })
  assert.equal((await a.dataset.record.fetch(dsId, recId)).text, 'Paris is the capital of France.')
  await a.dataset.record.update(dsId, recId, { text: 'Lyon is in France.' })
  const records = await a.dataset.record.list(dsId, { take: 10 })
  assert.deepEqual(records.items.map((r) => r.text), ['Lyon is in France.'])
  await a.dataset.record.delete(dsId, recId)
  assert.equal((await a.dataset.record.list(dsId)).items.length, 0)
  await rejects(a.dataset.record.create(dsId, { text: '   ' }), 'BAD_REQUEST')
  await a.dataset.delete(dsId)
  await rejects(a.dataset.fetch(dsId), 'NOT_FOUND')
})

test('conversations and messages', async () => {
  const { id: botId } = await a.bot.create({ name: 'talker' })
  const { id: convId } = await a.conversation.create({ botId, messages: [{ type: 'user', text: 'hi' }] })
  assert.equal((await a.conversation.fetch(convId)).botId, botId)
  await a.conversation.update(convId, { name: 'renamed' })
  assert.equal((await a.conversation.fetch(convId)).name, 'renamed')
  const created = await a.conversation.message.create(convId, { type: 'bot', text: 'hello there' })
  assert.deepEqual(created.entities, [])
  const listed = await a.conversation.message.list(convId)
  assert.deepEqual(listed.items.map((m) => m.text), ['hi', 'hello there'])
  const msg = await a.conversation.message.fetch(convId, created.id)
  assert.equal(msg.type, 'bot')
  await a.conversation.message.update(convId, created.id, { text: 'edited' })
  assert.equal((await a.conversation.message.fetch(convId, created.id)).text, 'edited')
  await a.conversation.message.delete(convId, created.id)
  assert.ok((await a.conversation.list({})).items.some((c) => c.id === convId))
  await a.conversation.delete(convId)
  await rejects(a.conversation.fetch(convId), 'NOT_FOUND')
})

test('files metadata and usage', async () => {
  const { id: fileId } = await a.file.create({ name: 'notes.md', meta: { kind: 'notes' } })
  assert.equal((await a.file.fetch(fileId)).name, 'notes.md')
  await a.file.update(fileId, { description: 'my notes' })
  const files = await a.file.list({ meta: { kind: 'notes' } })
  assert.deepEqual(files.items.map((f) => f.id), [fileId])
  await a.file.delete(fileId)
  const usage = await a.usage.fetch()
  for (const key of ['tokens', 'conversations', 'messages']) assert.equal(typeof usage[key], 'number')
  for (const key of ['datasets', 'records', 'skillsets', 'abilities', 'files', 'users']) {
    assert.equal(typeof usage.database[key], 'number')
  }
})

test('errors: bad input names the field, unknown ids, bad secrets', async () => {
  await assert.rejects(a.bot.create({ name: 5 }), (err) => {
    assert.equal(err.code, 'BAD_REQUEST')
    assert.match(err.message, /name/)
    return true
  })
  await rejects(a.bot.create({ unknownField: 1 }), 'BAD_REQUEST')
  await rejects(a.bot.fetch('no-such-bot'), 'NOT_FOUND')
  const stranger = new ChatBotKit({ secret: 'not-a-secret', baseUrl, retries: 0 })
  await rejects(stranger.bot.list(), 'NOT_AUTHENTICATED')
})

test('account B never reaches account A data', async () => {
  const { id: botId } = await a.bot.create({ name: 'private to A' })
  const { id: dsId } = await a.dataset.create({ name: 'A data' })
  await rejects(b.bot.fetch(botId), 'NOT_FOUND')
  await rejects(b.bot.update(botId, { name: 'taken' }), 'NOT_FOUND')
  await rejects(b.bot.delete(botId), 'NOT_FOUND')
  await rejects(b.dataset.record.create(dsId, { text: 'x' }), 'NOT_FOUND')
  assert.ok(!(await b.bot.list()).items.some((x) => x.id === botId))
  assert.equal((await a.bot.fetch(botId)).name, 'private to A')
})

test('dataset search finds a paraphrase first', async () => {
  const { id: dsId } = await a.dataset.create({ name: 'robots' })
  await a.dataset.record.create(dsId, { text: 'The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.' })
  await a.dataset.record.create(dsId, { text: 'Our office is open Monday to Friday.' })
  await a.dataset.record.create(dsId, { text: 'Paris is the capital of France.' })
  const result = await a.dataset.search(dsId, 'How much weight can the Zephyr-9 carry?')
  assert.equal(result.id, dsId)
  assert.match(result.records[0].text, /Zephyr-9 warehouse robot/)
  for (const r of result.records) assert.ok(r.score >= 0 && r.score <= 1)
  assert.ok(result.records.length <= 3)
  await rejects(b.dataset.search(dsId, 'robot'), 'NOT_FOUND')
})
