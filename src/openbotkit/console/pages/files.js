// Files: upload by picker or drag and drop, attach to a dataset, sync with live job progress
// (stage, chunks done / total) until done or failed, download.
import { all, bytes, get, post, upload } from '../api.js'
import { bytesText, confirmAction, field, formAlert, h, onSubmit, refresh, section, showError, when } from '../ui.js'

const POLL_MS = 400

export default async function files (main) {
  let stopped = false
  const timers = new Set()
  const [items, datasets] = await Promise.all([all('/file/list'), all('/dataset/list')])
  // Which datasets each file is attached to (the API lists attachments per dataset).
  const attachedTo = new Map()
  await Promise.all(datasets.map(async (d) => {
    for (const f of await all(`/dataset/${d.id}/file/list`)) {
      attachedTo.set(f.id, [...(attachedTo.get(f.id) || []), d])
    }
  }))

  const picker = h('input', { name: 'file', type: 'file', multiple: true })
  const drop = h('div.dropzone', { text: 'Drop files here, or choose them with the File picker.' })
  const uploadForm = onSubmit(h('form.inline', {}, field('File', picker), formAlert(), h('button', { type: 'submit', text: 'Upload' })), async () => {
    await uploadAll([...picker.files])
  })

  async function uploadAll (list) {
    if (!list.length) {
      const err = new Error('choose a file first')
      err.details = [{ pointer: '/file', message: 'choose a file first' }]
      throw err
    }
    for (const file of list) {
      const { id } = await post('/file/create', { name: file.name, description: `uploaded from the console (${bytesText(file.size)})` })
      await upload(`/file/${id}/upload`, file)
    }
    refresh()
  }

  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over') })
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'))
  drop.addEventListener('drop', async (e) => {
    e.preventDefault()
    try { await uploadAll([...e.dataTransfer.files]) } catch (err) { showError(uploadForm, err) }
  })

  /** Follow one sync job until it is done or failed, drawing its stage and progress. */
  async function watch (jobId, slot) {
    const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Sync progress' })
    const label = h('span.job-status', { role: 'status', text: 'queued' })
    slot.replaceChildren(bar, label)
    for (;;) {
      if (stopped) return
      let job
      try {
        job = await get(`/job/${jobId}/fetch`)
      } catch (err) {
        label.textContent = `cannot follow the job: ${err.message}`
        return
      }
      const total = job.progress?.total || 0
      const done = job.progress?.done || 0
      bar.max = total || 1
      bar.value = job.status === 'done' ? bar.max : done
      const counts = total ? ` ${done} / ${total} chunks` : ''
      if (job.status === 'done') {
        const s = job.stats || {}
        const what = job.unchanged ? 'unchanged' : [s.added !== undefined ? `${s.added} added` : '', s.removed ? `${s.removed} removed` : '', s.kept ? `${s.kept} kept` : ''].filter(Boolean).join(', ')
        label.textContent = `done${counts}${what ? ` (${what})` : ''}`
        return
      }
      if (job.status === 'failed') {
        label.textContent = `failed: ${job.error || 'unknown error'}`
        label.classList.add('error')
        return
      }
      label.textContent = `${job.status} · ${job.stage || ''}${counts}`
      await new Promise((resolve) => { const t = setTimeout(() => { timers.delete(t); resolve() }, POLL_MS); timers.add(t) })
    }
  }

  /** The file's latest job when the page opens: followed live if it is still going. */
  function lastJob (file, slot) {
    get('/job/list', { fileId: file.id, take: 1 }).then(({ items: jobs }) => {
      if (jobs.length && !slot.childElementCount) watch(jobs[0].id, slot)
    }, (err) => { slot.replaceChildren(h('span.job-status.error', { text: err.message })) })
    return null
  }

  function row (file) {
    const progress = h('div.progress')
    const datasetPick = h('select', { name: 'datasetId', 'aria-label': `Dataset for ${file.name || file.id}` },
      h('option', { value: '', text: 'Choose a dataset…' }),
      ...datasets.map((d) => h('option', { value: d.id, text: d.name || d.id })))
    const attachForm = onSubmit(h('form.attach', {}, datasetPick,
      h('button', { type: 'submit', text: 'Attach', 'aria-label': `Attach ${file.name || file.id}` }), formAlert()), async () => {
      if (!datasetPick.value) {
        const err = new Error('choose a dataset to attach the file to')
        err.details = [{ pointer: '/datasetId', message: err.message }]
        throw err
      }
      await post(`/dataset/${datasetPick.value}/file/${file.id}/attach`, { type: 'source' })
      const dataset = datasets.find((d) => d.id === datasetPick.value)
      const list = attachedTo.get(file.id) || []
      if (!list.some((d) => d.id === dataset.id)) attachedTo.set(file.id, [...list, dataset])
      showAttached()
    })
    const attachedText = h('span.muted')
    function showAttached () {
      const list = attachedTo.get(file.id) || []
      attachedText.textContent = list.length ? `attached to ${list.map((d) => d.name || d.id).join(', ')}` : 'not attached'
    }
    showAttached()
    const syncButton = h('button', {
      type: 'button',
      text: 'Sync',
      'aria-label': `Sync ${file.name || file.id}`,
      on: {
        click: async () => {
          syncButton.disabled = true
          try {
            const { jobs } = await post(`/file/${file.id}/sync`, {})
            if (!jobs?.length) { progress.replaceChildren(h('span.job-status', { role: 'status', text: 'not attached to any dataset: attach it first' })); return }
            progress.replaceChildren()
            await Promise.all(jobs.map((j) => { const slot = h('div'); progress.append(slot); return watch(j.id, slot) }))
          } catch (err) {
            progress.replaceChildren(h('span.job-status.error', { role: 'alert', text: err.message }))
          } finally {
            syncButton.disabled = false
          }
        }
      }
    })
    return h('tr', {},
      h('td', {}, h('strong', { text: file.name || file.id }), h('div.muted.mono', { text: file.id })),
      h('td', { text: when(file.createdAt) }),
      h('td', {}, attachForm, attachedText),
      h('td', {}, syncButton, progress, lastJob(file, progress)),
      h('td.row-actions', {},
        h('button', {
          type: 'button',
          text: 'Download',
          'aria-label': `Download ${file.name || file.id}`,
          on: {
            click: async () => {
              const blob = await bytes(`/file/${file.id}/download`)
              const a = h('a', { href: URL.createObjectURL(blob), download: file.name || file.id })
              document.body.append(a); a.click(); a.remove()
              setTimeout(() => URL.revokeObjectURL(a.href), 10000)
            }
          }
        }),
        h('button.danger', {
          type: 'button',
          text: 'Delete',
          'aria-label': `Delete ${file.name || file.id}`,
          on: {
            click: async () => {
              if (!await confirmAction(`Delete the file "${file.name || file.id}"? Records already made from it stay.`)) return
              await post(`/file/${file.id}/delete`, {})
              refresh()
            }
          }
        })))
  }

  main.replaceChildren(
    h('h1', { text: 'Files' }),
    section('Upload', uploadForm, drop),
    items.length
      ? h('table', { 'aria-label': 'Files' },
        h('thead', {}, h('tr', {}, ...['File', 'Uploaded', 'Datasets', 'Sync', ''].map((t) => h('th', { text: t })))),
        h('tbody', {}, items.map(row)))
      : h('p.empty', { text: 'No files yet. Upload Markdown, text, HTML, PDF, DOCX, CSV or JSON.' }))
  return () => { stopped = true; for (const t of timers) clearTimeout(t) }
}
