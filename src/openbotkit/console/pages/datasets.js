// Datasets: list and create; one dataset's search settings, its records (paged: add, edit,
// delete), its files, and a search tester showing hybrid, dense and lexical side by side.
import { all, get, post } from '../api.js'
import { sourceLabel } from './sources.js'
import { confirmAction, escapes, field, formAlert, h, jsonField, num, onSubmit, section, when } from '../ui.js'

const PAGE = 10

export default async function datasets (main, [datasetId]) {
  if (datasetId) return detail(main, datasetId)
  const items = await all('/dataset/list')
  const name = h('input', { name: 'name', required: true })
  const description = h('input', { name: 'description' })
  const form = onSubmit(h('form.inline', {}, field('Name', name), field('Description', description), formAlert(),
    h('button', { type: 'submit', text: 'Create dataset' })), async () => {
    const { id } = await post('/dataset/create', { name: name.value, description: description.value || undefined })
    location.hash = `#/datasets/${id}`
  })
  main.replaceChildren(
    h('h1', { text: 'Datasets' }),
    section('New dataset', form),
    items.length
      ? h('table', { 'aria-label': 'Datasets' },
        h('thead', {}, h('tr', {}, ...['Name', 'Id', 'Max records', 'Created', ''].map((t) => h('th', { text: t })))),
        h('tbody', {}, items.map((d) => h('tr', {},
          h('td', {}, h('a', { href: `#/datasets/${d.id}`, text: d.name || d.id }), h('div.muted', { text: d.description || '' })),
          h('td.mono', { text: d.id }),
          h('td', { text: d.searchMaxRecords ?? 3 }),
          h('td', { text: when(d.createdAt) }),
          h('td.row-actions', {}, h('button.danger', {
            type: 'button',
            text: 'Delete',
            'aria-label': `Delete ${d.name || d.id}`,
            on: {
              click: async () => {
                if (!await confirmAction(`Delete the dataset "${d.name || d.id}" and all its records?`)) return
                await post(`/dataset/${d.id}/delete`, {})
                await datasets(main, [])
              }
            }
          }))))))
      : h('p.empty', { text: 'No datasets yet.' }))
}

async function detail (main, id) {
  const [dataset, files] = await Promise.all([get(`/dataset/${id}/fetch`), all('/file/list')])
  const fileNames = Object.fromEntries(files.map((f) => [f.id, f.name || f.id]))
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/datasets', text: '← All datasets' })),
    h('h1', { text: dataset.name || dataset.id }),
    settings(dataset, main),
    searchTester(dataset, fileNames),
    await records(dataset, fileNames),
    await attached(dataset))
}

function settings (dataset, main) {
  const input = (name, attrs = {}) => h('input', { name, value: dataset[name] ?? '', ...attrs })
  const fields = {
    name: input('name'),
    description: input('description'),
    searchMaxRecords: input('searchMaxRecords', { type: 'number', min: 1, step: 1, placeholder: '3' }),
    searchMinScore: input('searchMinScore', { type: 'number', min: 0, max: 1, step: 'any', placeholder: '0' }),
    searchMaxTokens: input('searchMaxTokens', { type: 'number', min: 1, step: 1 }),
    recordMaxTokens: input('recordMaxTokens', { type: 'number', min: 1, step: 1, placeholder: '200' }),
    separators: input('separators', { value: escapes.show(dataset.separators), placeholder: '\\n\\n' }),
    matchInstruction: h('textarea', { name: 'matchInstruction', rows: 2, value: dataset.matchInstruction || '' }),
    mismatchInstruction: h('textarea', { name: 'mismatchInstruction', rows: 2, value: dataset.mismatchInstruction || '' })
  }
  const labels = {
    name: 'Name', description: 'Description', searchMaxRecords: 'Max records', searchMinScore: 'Min score',
    searchMaxTokens: 'Max tokens of records', recordMaxTokens: 'Record size (tokens)', separators: 'Separators',
    matchInstruction: 'Match instruction', mismatchInstruction: 'Mismatch instruction'
  }
  const saved = h('span.saved', { role: 'status' })
  const form = onSubmit(h('form.grid', {}, Object.entries(fields).map(([k, el]) => field(labels[k], el)), formAlert(),
    h('div.actions', {}, h('button', { type: 'submit', text: 'Save settings' }), saved)), async () => {
    const body = {}
    for (const [k, el] of Object.entries(fields)) {
      const v = el.type === 'number' ? num(el.value) : k === 'separators' ? escapes.read(el.value) : el.value
      body[k] = v === undefined || v === '' ? null : v
    }
    body.name = fields.name.value
    await post(`/dataset/${dataset.id}/update`, body)
    saved.textContent = 'Saved.'
    setTimeout(() => { saved.textContent = '' }, 3000)
  })
  return section('Search settings', form)
}

function searchTester (dataset, fileNames) {
  const query = h('input', { name: 'search', type: 'search', required: true })
  const columns = h('div.columns')
  const form = onSubmit(h('form.inline', {}, field('Search', query), formAlert(), h('button', { type: 'submit', text: 'Run search' })), async () => {
    const modes = ['hybrid', 'dense', 'lexical']
    const results = await Promise.all(modes.map((mode) => post(`/dataset/${dataset.id}/search`, { search: query.value, mode })))
    columns.replaceChildren(...modes.map((mode, i) => h('section.results', { 'aria-label': `${mode} results` },
      h('h3', { text: mode[0].toUpperCase() + mode.slice(1) }),
      results[i].records.length
        ? h('ol', {}, results[i].records.map((r) => h('li', {},
          h('span.score', { text: Number(r.score).toFixed(3) }), ' ',
          h('span', { text: r.text }),
          r.source ? h('div.muted', { text: sourceLabel(r.source, fileNames) }) : null)))
        : h('p.muted', { text: 'No records matched.' }))))
  })
  return section('Search tester', h('p.hint', { text: 'Runs the dataset\'s real search in each mode with its settings (max records, min score).' }), form, columns)
}

async function records (dataset, fileNames) {
  const table = h('tbody')
  const pager = h('div.pager')
  const stack = ['']
  let at = 0
  const text = h('textarea', { name: 'text', rows: 3, required: true })
  const source = h('input', { name: 'source' })
  const meta = h('textarea', { name: 'meta', rows: 1, placeholder: '{"topic": "billing"}' })
  let editing = null
  const submit = h('button', { type: 'submit', text: 'Add record' })
  const cancel = h('button', { type: 'button', text: 'Cancel', hidden: true, on: { click: () => reset() } })
  const form = onSubmit(h('form.grid', {}, field('Record text', text), field('Source', source), field('Meta', meta), formAlert(),
    h('div.actions', {}, submit, cancel)), async () => {
    const body = { text: text.value, source: source.value || undefined }
    body.meta = jsonField(meta.value, 'meta')
    if (editing) await post(`/dataset/${dataset.id}/record/${editing.id}/update`, body)
    else await post(`/dataset/${dataset.id}/record/create`, body)
    reset()
    await load()
  })

  function reset () {
    editing = null
    form.reset()
    submit.textContent = 'Add record'
    cancel.hidden = true
  }

  async function load () {
    const page = await get(`/dataset/${dataset.id}/record/list`, { take: PAGE, cursor: stack[at], order: 'desc' })
    table.replaceChildren(...page.items.map((r) => h('tr', {},
      h('td.record', { text: r.text }),
      h('td', { text: sourceLabel(r.source, fileNames) }),
      h('td', { text: when(r.createdAt) }),
      h('td.row-actions', {},
        h('button', {
          type: 'button',
          text: 'Edit',
          'aria-label': `Edit record ${r.id}`,
          on: {
            click: () => {
              editing = r
              text.value = r.text
              source.value = r.source || ''
              meta.value = r.meta ? JSON.stringify(r.meta) : ''
              submit.textContent = 'Save record'
              cancel.hidden = false
              text.focus()
            }
          }
        }),
        h('button.danger', {
          type: 'button',
          text: 'Delete',
          'aria-label': `Delete record ${r.id}`,
          on: {
            click: async () => {
              if (!await confirmAction('Delete this record?')) return
              await post(`/dataset/${dataset.id}/record/${r.id}/delete`, {})
              await load()
            }
          }
        })))))
    if (!page.items.length) table.append(h('tr', {}, h('td', { colSpan: 4, className: 'muted', text: 'No records on this page.' })))
    pager.replaceChildren(
      h('button', { type: 'button', text: 'Previous page', disabled: at === 0, on: { click: () => { at--; load() } } }),
      h('span', { text: `Page ${at + 1}` }),
      h('button', { type: 'button', text: 'Next page', disabled: !page.cursor, on: { click: () => { stack[at + 1] = page.cursor; at++; load() } } }))
  }
  await load()
  return section('Records',
    h('table', { 'aria-label': 'Records' }, h('thead', {}, h('tr', {}, ...['Text', 'Source', 'Created', ''].map((t) => h('th', { text: t })))), table),
    pager,
    h('h3', { text: 'Add or edit a record' }),
    form)
}

async function attached (dataset) {
  const items = await all(`/dataset/${dataset.id}/file/list`)
  return section('Files',
    items.length
      ? h('ul', {}, items.map((f) => h('li', {}, h('a', { href: '#/files', text: f.name || f.id }))))
      : h('p.muted', {}, 'No files attached. ', h('a', { href: '#/files', text: 'Upload and attach one' }), '.'))
}
