// Conversation sessions through the official Node SDK (conversation.session.create) against
// `obk serve` (run by tests/contract/test_node_sdk.py): a token for one conversation alone.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChatBotKit } from '@chatbotkit/sdk'

const baseUrl = process.env.OBK_URL
const a = new ChatBotKit({ secret: process.env.OBK_TOKEN_A, baseUrl, retries: 0 })

test('conversation.session.create gives a token that reaches that conversation alone', async () => {
  const { id: botId } = await a.bot.create({ backstory: 'Operator instructions.' })
  const { id } = await a.conversation.create({ botId })
  const { id: other } = await a.conversation.create({ botId })
  const before = Date.now()
  const session = await a.conversation.session.create(id, { durationInSeconds: 600 })
  assert.equal(typeof session.token, 'string')
  assert.ok(session.expiresAt > before + 590000 && session.expiresAt <= Date.now() + 600000)

  const visitor = new ChatBotKit({ secret: session.token, baseUrl, retries: 0 })
  await visitor.conversation.message.create(id, { type: 'user', text: 'Hello' })
  const messages = (await visitor.conversation.message.list(id)).items
  assert.deepEqual(messages.map((m) => m.text), ['Hello'])
  const fetched = await visitor.conversation.fetch(id)
  assert.equal(fetched.id, id)
  assert.equal(fetched.backstory, undefined)

  const refused = (err) => err.code === 'SCOPE_MISSING'
  await assert.rejects(visitor.conversation.fetch(other), refused)
  await assert.rejects(visitor.conversation.message.list(other), refused)
  await assert.rejects(visitor.conversation.list(), refused)
  await assert.rejects(visitor.bot.fetch(botId), refused)
  await assert.rejects(visitor.conversation.create({ botId }), refused)
  await assert.rejects(visitor.conversation.session.create(id, {}), refused)
  await assert.rejects(visitor.conversation.delete(id), refused)
})
