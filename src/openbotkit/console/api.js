// The console's only way to the server: the same /api/v1 routes the SDKs call.

const KEY = 'obk.secret'

export const session = {
  get secret () { return sessionStorage.getItem(KEY) },
  signIn (secret) { sessionStorage.setItem(KEY, secret) },
  signOut () { sessionStorage.removeItem(KEY) }
}

/** Trade a one-time sign-in link (`obk serve --open`) for a console session: `{id, token,
 * expiresAt}`. Only links the server's operator made are accepted. */
export async function redeemSignInLink (link) {
  const res = await fetch(new URL('/console/signin', location.origin), {
    method: 'POST',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    body: JSON.stringify({ link })
  })
  if (!res.ok) throw await failure(res)
  return res.json()
}

/** Sign out: the server revokes the tab's console session (a typed-in API key stays valid),
 * then the tab forgets its secret. */
export async function signOutEverywhere () {
  const secret = session.secret
  session.signOut()
  if (!secret) return
  try {
    await fetch(new URL('/console/signout', location.origin), { method: 'POST', headers: headers({}, secret) })
  } catch { /* offline: the session still expires on its own */ }
}

/** An error answered by the API: its message, code and field details (JSON pointers). */
export class ApiError extends Error {
  constructor (status, body) {
    super(body?.message || `Request failed with status ${status}`)
    this.status = status
    this.code = body?.code || 'ERROR'
    this.details = Array.isArray(body?.details) ? body.details : []
  }
}

function headers (extra = {}, secret = session.secret) {
  const out = { ...extra }
  if (secret) out.Authorization = `Bearer ${secret}`
  return out
}

function url (path, query) {
  const u = new URL(`/api/v1${path}`, location.origin)
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v))
  }
  return u
}

async function failure (res) {
  let body = null
  try { body = await res.json() } catch { /* not JSON: keep the status */ }
  const err = new ApiError(res.status, body)
  if (res.status === 401 && session.secret) window.dispatchEvent(new CustomEvent('obk:unauthenticated', { detail: err }))
  return err
}

/** GET with a query. */
export async function get (path, query, { secret } = {}) {
  const res = await fetch(url(path, query), { headers: headers({ Accept: 'application/json' }, secret) })
  if (!res.ok) throw await failure(res)
  return res.json()
}

/** POST a JSON body. */
export async function post (path, body = {}, { secret } = {}) {
  const res = await fetch(url(path), {
    method: 'POST',
    headers: headers({ Accept: 'application/json', 'Content-Type': 'application/json' }, secret),
    body: JSON.stringify(body)
  })
  if (!res.ok) throw await failure(res)
  return res.json()
}

/** POST a file as multipart (the upload mode browsers speak natively). */
export async function upload (path, file) {
  const form = new FormData()
  form.append('file', file, file.name)
  const res = await fetch(url(path), { method: 'POST', headers: headers({ Accept: 'application/json' }), body: form })
  if (!res.ok) throw await failure(res)
  return res.json()
}

/** GET bytes (a file download). */
export async function bytes (path) {
  const res = await fetch(url(path), { headers: headers({ Accept: 'application/octet-stream' }) })
  if (!res.ok) throw await failure(res)
  return res.blob()
}

/** POST and read the JSONL event stream: yields each `{type, data}` as its line arrives. */
export async function * stream (path, body = {}) {
  const res = await fetch(url(path), {
    method: 'POST',
    headers: headers({ Accept: 'application/jsonl', 'Content-Type': 'application/json' }),
    body: JSON.stringify(body)
  })
  if (!res.ok) throw await failure(res)
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    buffer += value
    let nl
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim()
      buffer = buffer.slice(nl + 1)
      if (!line) continue
      const event = JSON.parse(line)
      if (event.type === 'error') throw new ApiError(200, event.data)
      yield event
    }
  }
}

/** Every item of a list route (up to `limit`), following cursors. */
export async function all (path, query = {}, limit = 500) {
  const items = []
  let cursor = ''
  do {
    const page = await get(path, { ...query, take: 100, cursor })
    items.push(...page.items)
    cursor = page.cursor
  } while (cursor && items.length < limit)
  return items
}
