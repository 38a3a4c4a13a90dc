// The job view and a dry-run sync through the official Node SDK. It has no job resource, so the
// calls go through its own generic clientFetch (auth, query encoding and errors as for the rest).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChatBotKit } from '@chatbotkit/sdk'

const baseUrl = process.env.OBK_URL
const a = new ChatBotKit({ secret: process.env.OBK_TOKEN_A, baseUrl, retries: 0 })
const b = new ChatBotKit({ secret: process.env.OBK_TOKEN_B, baseUrl, retries: 0 })

const JOB_KEYS = ['attempts', 'createdAt', 'datasetId', 'fileId', 'id', 'progress', 'stage', 'stats', 'status', 'unchanged', 'updatedAt']

async function finished (jobId, deadline = Date.now() + 120000) {
  while (Date.now() < deadline) {
    const job = await a.clientFetch(`/api/v1/job/${jobId}/fetch`)
    if (job.status === 'done' || job.status === 'failed') return job
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`job ${jobId} did not finish in time`)
}

test('sync dry run, then follow the job with fetch_job and list_jobs', async () => {
  const { id: fileId } = await a.file.create({ name: 'guide.md' })
  await a.file.upload(fileId, { data: '# Guide\n\nThe Zephyr-9 docks at bay 4.\n', type: 'text/markdown', name: 'guide.md' })
  const { id: dsId } = await a.dataset.create({ name: 'guides' })
  await a.dataset.file.attach(dsId, fileId, { type: 'source' })

  const preview = await a.clientFetch(`/api/v1/dataset/${dsId}/file/${fileId}/sync`, { record: { dryRun: true } })
  assert.deepEqual(preview.jobs, [])
  assert.equal(preview.diff.added, 1)
  assert.equal(preview.diff.changed[0].after, 'Guide\nThe Zephyr-9 docks at bay 4.')

  await a.dataset.file.sync(dsId, fileId, {})
  const listed = await a.clientFetch('/api/v1/job/list', { query: { datasetId: dsId } })
  assert.equal(listed.items.length, 1)
  const job = await finished(listed.items[0].id)
  assert.deepEqual(Object.keys(job).sort(), JOB_KEYS)
  assert.equal(job.status, 'done')
  assert.deepEqual(job.stats, { kept: 0, added: 1, removed: 0 })
  assert.deepEqual(job.progress, { done: 1, total: 1 })

  const again = await a.clientFetch(`/api/v1/file/${fileId}/sync`, { record: { dryRun: true } })
  assert.equal(again.diffs[0].unchanged, true)
  const done = await a.clientFetch('/api/v1/job/list', { query: { fileId, status: 'done', take: 1 } })
  assert.deepEqual(done.items.map((j) => j.id), [job.id])

  await assert.rejects(b.clientFetch(`/api/v1/job/${job.id}/fetch`), (err) => err.code === 'NOT_FOUND')
  assert.deepEqual((await b.clientFetch('/api/v1/job/list', { query: { fileId } })).items, [])
})
