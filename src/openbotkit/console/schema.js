// Forms drawn from the registry's own schemas: the server's OpenAPI document says which fields an
// action takes, their types, descriptions and which are write-only, so the console does not
// keep a second list of them (integration kinds each take their own fields).
import { get } from './api.js'
import { field, h, jsonField, num } from './ui.js'

let documentPromise = null

/** The server's OpenAPI document, fetched once per tab. */
function openapi () {
  documentPromise ??= get('/openapi.json').catch((err) => { documentPromise = null; throw err })
  return documentPromise
}

/** The JSON Schema of the body `POST path` takes (`path` as the API lists it, e.g.
 * `/integration/telegram/create`), its `$ref` resolved. */
export async function bodySchema (path) {
  const doc = await openapi()
  const op = doc.paths[`/api/v1${path}`]?.post
  const ref = op?.requestBody?.content?.['application/json']?.schema?.$ref
  if (!ref) throw new Error(`The server has no action at POST ${path}`)
  return doc.components.schemas[ref.split('/').pop()]
}

/** `sessionDuration` -> "Session duration". */
export function labelOf (name) {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase()
  return words.charAt(0).toUpperCase() + words.slice(1)
}

/** The one non-null schema of `anyOf: [T, null]`, and whether null is allowed. */
function unwrap (schema) {
  const options = schema.anyOf || schema.oneOf
  if (!options) return { type: schema, nullable: false }
  const real = options.filter((s) => s.type !== 'null')
  return { type: real.length === 1 ? { ...schema, ...real[0], anyOf: undefined } : schema, nullable: real.length < options.length }
}

function control (name, schema, value, writeOnly, existing) {
  if (schema.enum) {
    return h('select', { name },
      h('option', { value: '', text: '(default)' }),
      schema.enum.map((v) => h('option', { value: v, text: v, selected: v === value })))
  }
  if (schema.type === 'boolean') {
    return h('select', { name },
      h('option', { value: '', text: '(default)' }),
      h('option', { value: 'true', text: 'Yes', selected: value === true }),
      h('option', { value: 'false', text: 'No', selected: value === false }))
  }
  if (schema.type === 'integer' || schema.type === 'number') {
    return h('input', { name, type: 'number', min: schema.minimum, step: schema.type === 'integer' ? 1 : 'any', value: value ?? '' })
  }
  if (schema.type === 'object') {
    return h('textarea', { name, rows: 2, value: value ? JSON.stringify(value) : '', placeholder: '{"team": "support"}' })
  }
  if (writeOnly) {
    // A write-only value is never shown back: the server does not return it, and the input
    // starts empty; left empty on an edit, the stored value stays.
    return h('input', { name, type: 'password', autocomplete: 'new-password', placeholder: existing ? 'unchanged (type to replace)' : '' })
  }
  return h('input', { name, value: value ?? '' })
}

/**
 * Fields for each property of `schema` (except `omit`), filled from `values` (an existing
 * resource, or null for a new one). `controls` replaces the control of a property (a bot
 * picker for `botId`), `labels` and `hints` its label and hint. Returns `{ fields, read }`: `read()` is the request body, leaving out
 * what was left blank on a create and sending null for what was cleared on an update.
 */
export function schemaFields (schema, values, { omit = [], controls = {}, labels = {}, hints = {} } = {}) {
  const entries = []
  const required = new Set(schema.required || [])
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    if (omit.includes(name)) continue
    const { type } = unwrap(prop)
    const writeOnly = Boolean(prop.writeOnly || type.writeOnly)
    const el = controls[name] || control(name, type, values?.[name], writeOnly, Boolean(values))
    if (required.has(name)) el.required = true
    const hint = hints[name] ?? (writeOnly ? 'Write-only: kept by the server, never shown again.' : prop.description || type.description)
    entries.push({ name, type, writeOnly, el, field: field(labels[name] || labelOf(name), el, hint) })
  }
  function read () {
    const body = {}
    for (const { name, type, writeOnly, el } of entries) {
      const raw = el.value
      const blank = raw === '' || raw === undefined
      if (writeOnly) { if (!blank) body[name] = raw; continue }
      const had = values?.[name] !== undefined && values?.[name] !== null
      if (blank) { if (values && had) body[name] = null; continue }
      if (type.type === 'boolean') body[name] = raw === 'true'
      else if (type.type === 'integer' || type.type === 'number') body[name] = num(raw)
      else if (type.type === 'object') body[name] = jsonField(raw, name)
      else body[name] = raw
    }
    return body
  }
  return { fields: entries.map((e) => e.field), read }
}
