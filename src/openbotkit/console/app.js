// The console shell: sign-in, navigation, and a page per hash route (#/bots, #/datasets/ID...).
import { get, redeemSignInLink, session, signOutEverywhere } from './api.js'
import { field, formAlert, h, onSubmit } from './ui.js'
import bots from './pages/bots.js'
import playground from './pages/playground.js'
import datasets from './pages/datasets.js'
import files from './pages/files.js'
import usage from './pages/usage.js'
import keys from './pages/keys.js'
import integrations from './pages/integrations.js'
import skillsets from './pages/skillsets.js'

const PAGES = { bots, playground, datasets, files, skillsets, integrations, usage, keys }
const NAV = [['bots', 'Bots'], ['playground', 'Playground'], ['datasets', 'Datasets'], ['files', 'Files'], ['skillsets', 'Skillsets'], ['integrations', 'Integrations'], ['usage', 'Usage'], ['keys', 'Keys']]
const app = document.getElementById('app')
let team = null
let cleanup = null

function signInPage (message) {
  const secret = h('input', { name: 'secret', type: 'password', autocomplete: 'off', required: true })
  const form = onSubmit(h('form.signin', {},
    h('h1', { text: 'openbotkit' }),
    h('p', {}, 'Sign in with an API secret from ', h('code', { text: 'obk key create' }), ', or open the link ', h('code', { text: 'obk serve --open' }), ' prints. The secret is kept for this browser tab only.'),
    field('API secret', secret),
    formAlert(),
    h('button', { type: 'submit', text: 'Sign in' })), async () => {
    const token = secret.value.trim()
    const teams = await get('/team/list', { take: 1 }, { secret: token })
    session.signIn(token)
    team = teams.items[0]
    if (!location.hash || location.hash === '#/') location.hash = '#/bots'
    render()
  })
  if (message) { const alert = form.querySelector('.form-error'); alert.textContent = message; alert.hidden = false }
  app.replaceChildren(h('main.center', {}, form))
  secret.focus()
}

/** A one-time link from `obk serve --open`: the server trades it for a console session. */
async function redeemLink (value) {
  history.replaceState(null, '', location.pathname + '#/bots')
  const own = await redeemSignInLink(value)
  session.signIn(own.token)
}

function shell (name) {
  const nav = h('nav', { 'aria-label': 'Main' },
    ...NAV.map(([route, label]) => h('a', { href: `#/${route}`, text: label, 'aria-current': route === name ? 'page' : false })))
  const main = h('main', { id: 'page' })
  const header = h('header', {},
    h('a.brand', { href: '#/bots', text: 'openbotkit' }),
    nav,
    h('span.account', { text: team ? team.name : '' }),
    h('button.link', { type: 'button', text: 'Sign out', on: { click: signOut } }))
  app.replaceChildren(header, main)
  return main
}

async function signOut () {
  await signOutEverywhere()
  team = null
  history.replaceState(null, '', location.pathname)
  signInPage()
}

async function render () {
  if (cleanup) { cleanup(); cleanup = null }
  const signin = new URLSearchParams(location.hash.slice(1)).get('signin')
  if (signin) {
    try { await redeemLink(signin) } catch (err) { return signInPage(`The sign-in link did not work (${err.message}); it works only once.`) }
  }
  if (!session.secret) return signInPage()
  if (!team) {
    try { team = (await get('/team/list', { take: 1 })).items[0] } catch (err) {
      if (err.status === 401) { session.signOut(); return signInPage(err.message) }
      throw err
    }
  }
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/')
  const page = PAGES[name] ? name : 'bots'
  const main = shell(page)
  try {
    cleanup = (await PAGES[page](main, rest.map(decodeURIComponent))) || null
  } catch (err) {
    main.append(h('p.form-error', { role: 'alert', text: err.message }))
  }
}

window.addEventListener('hashchange', render)
window.addEventListener('obk:unauthenticated', (event) => { session.signOut(); team = null; signInPage(event.detail.message) })
render()
