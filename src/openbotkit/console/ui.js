// Small DOM helpers: element building, labelled fields, API errors shown where they belong.

/** h('tag.class', {attrs, on: {event: fn}}, ...children) */
export function h (spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.')
  const el = document.createElement(tag || 'div')
  if (classes.length) el.className = classes.join(' ')
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn)
    else if (k === 'text') el.textContent = v
    else if (k in el && !k.startsWith('aria') && k !== 'list') el[k] = v
    else el.setAttribute(k, v === true ? '' : v)
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

let uid = 0

/** A labelled control with a slot for its error: field('Name', h('input', {name: 'name'})). */
export function field (label, control, hint) {
  const id = control.id || `f${++uid}`
  control.id = id
  const error = h('p.field-error', { id: `${id}-error`, hidden: true })
  control.setAttribute('aria-describedby', `${id}-error`)
  return h('div.field', {},
    h('label', { htmlFor: id, text: label }),
    control,
    hint ? h('p.hint', { text: hint }) : null,
    error)
}

/** A form-level alert, placed where `showError` puts messages no field owns. */
export function formAlert () {
  return h('p.form-error', { role: 'alert', hidden: true })
}

/** Clear a form's errors. */
export function clearErrors (root) {
  for (const el of root.querySelectorAll('.field-error, .form-error')) { el.hidden = true; el.textContent = '' }
  for (const el of root.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid')
}

/** Show an API error: each `details` entry next to the field its pointer names, the message
 * itself in the form's alert when no field is named (or the field is not on this form). */
export function showError (root, err) {
  clearErrors(root)
  let placed = false
  for (const d of err.details || []) {
    const name = (d.pointer || '').split('/')[1]
    const control = name && root.querySelector(`[name="${CSS.escape(name)}"]`)
    if (!control) continue
    const slot = root.querySelector(`#${CSS.escape(control.id)}-error`)
    if (!slot) continue
    control.setAttribute('aria-invalid', 'true')
    slot.textContent = slot.textContent ? `${slot.textContent}; ${d.message}` : (err.details.length === 1 ? err.message : d.message)
    slot.hidden = false
    placed = true
  }
  const alert = root.querySelector('.form-error')
  if (!placed || !alert) {
    if (alert) { alert.textContent = err.message; alert.hidden = false } else window.alert(err.message)
  }
}

/** Run an async handler for a form: disables the submit button, shows errors on failure. */
export function onSubmit (form, handler) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const button = form.querySelector('button[type=submit]')
    if (button) button.disabled = true
    clearErrors(form)
    try {
      await handler(new FormData(form))
    } catch (err) {
      showError(form, err)
    } finally {
      if (button) button.disabled = false
    }
  })
  return form
}

/** Ask before a destructive step; resolves true only on the confirming button. */
export function confirmAction (message, confirmLabel = 'Delete') {
  return new Promise((resolve) => {
    const dialog = h('dialog.confirm', { 'aria-label': 'Confirm' },
      h('p', { text: message }),
      h('div.actions', {},
        h('button.danger', { type: 'button', text: confirmLabel, on: { click: () => close(true) } }),
        h('button', { type: 'button', text: 'Cancel', on: { click: () => close(false) } })))
    function close (answer) { dialog.close(); dialog.remove(); resolve(answer) }
    dialog.addEventListener('cancel', () => close(false))
    document.body.append(dialog)
    dialog.showModal()
  })
}

export function when (ms) {
  return ms ? new Date(ms).toLocaleString() : ''
}

export function bytesText (n) {
  if (n === undefined || n === null) return ''
  const units = ['B', 'KB', 'MB', 'GB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i ? n.toFixed(1) : n} ${units[i]}`
}

/** A page section with a heading. */
export function section (title, ...children) {
  return h('section.card', { 'aria-label': title }, h('h2', { text: title }), ...children)
}

/** Parse a JSON object typed in a textarea; a clear error naming the field otherwise. */
export function jsonField (text, name) {
  if (!text.trim()) return undefined
  try {
    const value = JSON.parse(text)
    if (value && typeof value === 'object' && !Array.isArray(value)) return value
  } catch { /* reported below */ }
  const err = new Error(`${name} must be a JSON object, e.g. {"team": "support"}`)
  err.details = [{ pointer: `/${name}`, rule: 'json', message: err.message }]
  throw err
}

/** A number input's value, or undefined when blank. */
export function num (value) {
  return value === null || value === '' ? undefined : Number(value)
}

/** Draw the current page again (its cleanup runs first: timers, pollers). */
export function refresh () {
  window.dispatchEvent(new HashChangeEvent('hashchange'))
}

/** Control characters shown as escapes in a one-line input, and back (dataset separators). */
export const escapes = {
  show: (text) => (text || '').replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t'),
  read: (text) => text.replace(/\\(\\|n|r|t)/g, (_, c) => ({ '\\': '\\', n: '\n', r: '\r', t: '\t' })[c])
}
