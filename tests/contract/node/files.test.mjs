// Files through the official Node SDK: presigned upload, binary download, attach, sync, search.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChatBotKit } from '@chatbotkit/sdk'

const baseUrl = process.env.OBK_URL
const a = new ChatBotKit({ secret: process.env.OBK_TOKEN_A, baseUrl, retries: 0 })
const b = new ChatBotKit({ secret: process.env.OBK_TOKEN_B, baseUrl, retries: 0 })

const TEXT = '# Zephyr-9 manual\n\n## Payload\nThe Zephyr-9 warehouse robot carries at most 42 kilograms.\n'

async function waitForRecords(dsId, deadline = Date.now() + 120000) {
  while (Date.now() < deadline) {
    const { items } = await a.dataset.record.list(dsId)
    if (items.length) return items
    await new Promise((r) => setTimeout(r, 300))
  }
  throw new Error('the sync did not produce records in time')
}

test('upload (presigned PUT), download, attach, sync, search, detach', async () => {
  const { id: fileId } = await a.file.create({ name: 'manual.md' })
  assert.deepEqual(await a.file.upload(fileId, { data: TEXT, type: 'text/markdown', name: 'manual.md' }), { id: fileId })

  const downloaded = await a.file.download(fileId)
  assert.equal(Buffer.from(downloaded.data).toString('utf8'), TEXT)

  const { id: dsId } = await a.dataset.create({ name: 'manuals' })
  await a.dataset.file.attach(dsId, fileId, { type: 'source' })
  const attached = await a.dataset.file.list(dsId)
  assert.deepEqual(attached.items.map((f) => f.id), [fileId])

  assert.equal((await a.file.sync(fileId)).id, fileId)
  const records = await waitForRecords(dsId)
  assert.ok(records.every((r) => r.source === `file:///${fileId}`))
  const found = await a.dataset.search(dsId, 'What is the maximum load of the robot?')
  assert.match(found.records[0].text, /42 kilograms/)

  await assert.rejects(b.file.download(fileId), (err) => err.code === 'NOT_FOUND')
  await a.dataset.file.detach(dsId, fileId, { deleteRecords: true })
  assert.equal((await a.dataset.record.list(dsId)).items.length, 0)
  assert.equal((await a.dataset.file.list(dsId)).items.length, 0)
})
