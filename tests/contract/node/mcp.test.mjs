// The official MCP client (@modelcontextprotocol/sdk) against `obk serve`'s /mcp over
// Streamable HTTP: list the tools, call them, and see errors as tool results.
// Run by tests/contract/test_node_sdk.py.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'

const url = new URL('/mcp', process.env.OBK_URL)

async function connect (token) {
  const client = new Client({ name: 'obk-contract', version: '1.0.0' })
  const headers = token ? { Authorization: `Bearer ${token}` } : {}
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }))
  return client
}

test('lists every action as a tool with its schemas and annotations', async () => {
  const client = await connect(process.env.OBK_TOKEN_A)
  try {
    const { tools } = await client.listTools()
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]))
    for (const name of ['create_bot', 'search_dataset', 'complete_conversation', 'delete_dataset']) {
      assert.ok(byName[name], `tool ${name} is listed`)
      assert.equal(byName[name].inputSchema.type, 'object')
      assert.equal(byName[name].outputSchema.type, 'object')
    }
    assert.deepEqual(byName.fetch_bot.annotations, {
      readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false
    })
    assert.deepEqual(byName.delete_bot.annotations, {
      readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false
    })
    assert.equal(byName.upload_file.inputSchema.properties.path, undefined, 'no local path over HTTP')
  } finally {
    await client.close()
  }
})

test('calls tools: structured results, errors as results, one account each', async () => {
  const a = await connect(process.env.OBK_TOKEN_A)
  const b = await connect(process.env.OBK_TOKEN_B)
  try {
    const created = await a.callTool({ name: 'create_bot', arguments: { name: 'Node MCP bot' } })
    assert.equal(created.isError, false)
    const id = created.structuredContent.id
    assert.equal(typeof id, 'string')
    assert.deepEqual(JSON.parse(created.content[0].text), created.structuredContent)

    const fetched = await a.callTool({ name: 'fetch_bot', arguments: { botId: id } })
    assert.equal(fetched.structuredContent.name, 'Node MCP bot')

    const other = await b.callTool({ name: 'fetch_bot', arguments: { botId: id } })
    assert.equal(other.isError, true)
    assert.match(other.content[0].text, /^not_found: /)
    assert.equal(other.structuredContent, undefined)
    assert.equal(JSON.parse(other.content[1].text).error.code, 'not_found')

    const bad = await a.callTool({ name: 'create_bot', arguments: { name: 7 } })
    assert.equal(bad.isError, true)
    assert.match(bad.content[0].text, /^invalid_input: .*\/name/)

    const deleted = await a.callTool({ name: 'delete_bot', arguments: { botId: id } })
    assert.deepEqual(deleted.structuredContent, { id })
  } finally {
    await a.close()
    await b.close()
  }
})

test('complete_conversation reports its tokens as progress, then the final message', async () => {
  const client = await connect(process.env.OBK_TOKEN_A)
  try {
    const created = await client.callTool({
      name: 'create_conversation',
      arguments: { model: 'smollm2/maxTokens=8/temperature=0' }
    })
    const conversationId = created.structuredContent.id
    const progress = []
    const done = await client.callTool(
      { name: 'complete_conversation', arguments: { conversationId, text: 'Say hello.' } },
      undefined,
      { onprogress: (p) => progress.push(p), timeout: 300000 }
    )
    assert.equal(done.isError, false)
    assert.equal(typeof done.structuredContent.id, 'string')
    assert.ok(done.structuredContent.usage.token > 0)
    assert.ok(progress.length > 0)
    assert.deepEqual(progress.map((p) => p.progress), progress.map((_, i) => i + 1))
    assert.equal(progress.at(-1).message.trim(), done.structuredContent.text)
  } finally {
    await client.close()
  }
})

test('without a secret the server answers 401', async () => {
  await assert.rejects(connect(undefined), (err) => err.code === 401 && /NOT_AUTHENTICATED/.test(err.message))
})

test('an error is a tool result even once the client checks output schemas', async () => {
  // After listTools the client validates structuredContent against each tool's outputSchema:
  // an error object there would make every failed call throw -32602 instead.
  const client = await connect(process.env.OBK_TOKEN_A)
  try {
    await client.listTools()
    const missing = await client.callTool({ name: 'fetch_bot', arguments: { botId: 'no-such-bot' } })
    assert.equal(missing.isError, true)
    assert.match(missing.content[0].text, /^not_found: /)
    const bad = await client.callTool({ name: 'create_bot', arguments: { name: 7 } })
    assert.equal(bad.isError, true)
    assert.equal(JSON.parse(bad.content[1].text).error.details[0].pointer, '/name')
    const made = await client.callTool({ name: 'create_bot', arguments: { name: 'checked' } })
    assert.equal(made.isError, false)
    await client.callTool({ name: 'delete_bot', arguments: { botId: made.structuredContent.id } })
  } finally {
    await client.close()
  }
})

test('a tool the server does not have is a JSON-RPC error -32602', async () => {
  const client = await connect(process.env.OBK_TOKEN_A)
  try {
    await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), { code: -32602 })
  } finally {
    await client.close()
  }
})
