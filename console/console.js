// The operator console: a page over the admin API, with the API's token.
// Every string a client chose (its id, its username, its topics) reaches the
// page through textContent, never as HTML.
'use strict'

const TOKEN_KEY = 'aedes-p2p-token'
const POLL_MS = 1000
const CHART_POINTS = 300
const DROP_LABELS = {
  malformed: 'malformed topic',
  no_session: 'target has no session',
  refused: 'refused by a rule',
  queue_full: 'target queue full',
  slow_consumer: 'target not reading',
  expired: 'expired while queued',
  cluster_unavailable: 'Redis away',
  too_large: 'larger than the target takes'
}

const $ = (id) => document.getElementById(id)

/** A DOM element; strings among the children become text nodes. */
function h (tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (key === 'class') el.className = value
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else el.setAttribute(key, value)
  }
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  return el
}

const state = { token: sessionStorage.getItem(TOKEN_KEY), stats: null, last: null, chart: null, series: [[], [], [], []], node: null, selected: null }

class Unauthorized extends Error {}

async function api (path, init = {}) {
  const headers = { ...(init.body === undefined ? {} : { 'Content-Type': 'application/json' }) }
  if (state.token !== null) headers.Authorization = `Bearer ${state.token}`
  const res = await fetch(path, { ...init, headers, cache: 'no-store' })
  if (res.status === 401) throw new Unauthorized()
  const body = await res.json().catch(() => ({}))
  if (!res.ok && init.allowError !== true) throw new Error(body.error ?? `${res.status} ${res.statusText}`)
  return init.allowError === true ? { status: res.status, body } : body
}

// ---- sign-in ---------------------------------------------------------------

function askToken (wrong) {
  for (const tab of document.querySelectorAll('.tab')) tab.hidden = true
  $('tabs').hidden = true
  $('login').hidden = false
  $('login-error').textContent = wrong ? 'That token was refused.' : ''
  $('token').focus()
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault()
  state.token = $('token').value.trim()
  sessionStorage.setItem(TOKEN_KEY, state.token)
  $('token').value = ''
  start(true)
})

$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  state.token = null
  location.reload()
})

// ---- tabs ------------------------------------------------------------------

function showTab () {
  const name = (location.hash.slice(1) || 'overview')
  for (const tab of document.querySelectorAll('.tab')) tab.hidden = tab.id !== name
  for (const link of document.querySelectorAll('#tabs a')) link.classList.toggle('active', link.dataset.tab === name)
  if (name === 'clients') refreshClients()
  if (name === 'config') refreshConfig()
  if (name === 'overview' && state.chart !== null) state.chart.setSize(chartSize())
}
window.addEventListener('hashchange', showTab)

// ---- overview --------------------------------------------------------------

const number = (n) => n.toLocaleString('en-US')
const dropped = (p2p) => Object.values(p2p.dropped).reduce((a, b) => a + b, 0)

function card (label, value, rate, bad) {
  return h('div', { class: `metric${bad ? ' bad' : ''}`, 'data-metric': label.toLowerCase() },
    h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), h('div', { class: 'rate' }, rate))
}

function renderStats (stats, rates) {
  const p2p = stats.p2p
  $('node').textContent = `node ${stats.node} · v${stats.version} · up ${duration(stats.uptime_seconds)}`
  const pills = [h('span', { class: `pill ${p2p.active ? 'good' : 'warn'}` }, p2p.active ? `P2P on · ${p2p.mode}` : 'P2P stopped')]
  if (stats.redis !== undefined) pills.push(h('span', { class: `pill ${stats.redis === 'up' ? 'good' : 'bad'}` }, `Redis ${stats.redis}`))
  if (stats.mqtt5) pills.push(h('span', { class: 'pill' }, 'MQTT 5'))
  $('pills').replaceChildren(...pills)
  const per = (n) => rates === null ? '' : `${number(Math.round(n))}/s`
  $('cards').replaceChildren(
    card('Clients', number(stats.clients), 'connected here'),
    card('Received', number(p2p.received), per(rates?.received)),
    card('Delivered', number(p2p.delivered), per(rates?.delivered)),
    card('Queued', number(p2p.queued), per(rates?.queued)),
    card('Forwarded', number(p2p.forwarded), per(rates?.forwarded)),
    card('Dropped', number(dropped(p2p)), per(rates?.dropped), dropped(p2p) > 0)
  )
  $('dropped').replaceChildren(...Object.entries(p2p.dropped).map(([reason, n]) =>
    h('tr', { class: n === 0 ? 'zero' : '', 'data-reason': reason }, h('td', {}, h('code', {}, reason), ' ', h('span', { class: 'muted small' }, DROP_LABELS[reason] ?? '')), h('td', {}, number(n)))))
  const limits = Object.entries(p2p.limits)
  $('limits').replaceChildren(...(limits.length === 0
    ? [h('tr', { class: 'zero' }, h('td', {}, 'none yet'), h('td', {}, '0'))]
    : limits.map(([limit, n]) => h('tr', {}, h('td', {}, h('code', {}, limit)), h('td', {}, number(n))))))
  if (rates !== null) $('rate-now').textContent = `now: ${per(rates.received)} received, ${per(rates.delivered)} delivered, ${per(rates.dropped)} dropped`
}

function duration (s) {
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.floor(s / 60)} min`
  if (s < 172800) return `${Math.floor(s / 3600)} h`
  return `${Math.floor(s / 86400)} d`
}

function chartSize () {
  return { width: Math.max(300, $('chart').clientWidth), height: 260 }
}

function makeChart () {
  if (typeof uPlot === 'undefined') return null
  const line = (label, stroke) => ({ label, stroke, width: 2, points: { show: false }, value: (_u, v) => v === null ? '—' : `${v.toFixed(0)}/s` })
  const clock = (_u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false }))
  return new uPlot({
    ...chartSize(),
    scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(5, max * 1.15)] } },
    axes: [{ values: clock, space: 90 }, { values: (_u, ticks) => ticks.map((v) => `${v}/s`), size: 60 }],
    series: [{}, line('received', '#2f6fed'), line('delivered', '#1f9d55'), line('dropped', '#d64545')]
  }, state.series, $('chart'))
}

async function poll () {
  try {
    const stats = await api('/api/v1/stats')
    const now = Date.now() / 1000
    let rates = null
    if (state.last !== null) {
      const dt = Math.max(0.001, now - state.last.at)
      const rate = (pick) => Math.max(0, (pick(stats.p2p) - pick(state.last.stats.p2p)) / dt)
      rates = { received: rate((p) => p.received), delivered: rate((p) => p.delivered), queued: rate((p) => p.queued), forwarded: rate((p) => p.forwarded), dropped: rate(dropped) }
      const [t, rx, dx, dr] = state.series
      t.push(now); rx.push(rates.received); dx.push(rates.delivered); dr.push(rates.dropped)
      if (t.length > CHART_POINTS) for (const s of state.series) s.shift()
      state.chart ??= makeChart()
      state.chart?.setData(state.series)
    }
    state.last = { at: now, stats }
    renderStats(stats, rates)
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(state.token !== null)
    $('pills').replaceChildren(h('span', { class: 'pill bad' }, `broker unreachable: ${err.message}`))
  }
  setTimeout(poll, POLL_MS)
}

window.addEventListener('resize', () => { state.chart?.setSize(chartSize()) })

// ---- clients ---------------------------------------------------------------

let searchTimer
$('client-search').addEventListener('input', () => {
  clearTimeout(searchTimer)
  searchTimer = setTimeout(refreshClients, 200)
})

async function refreshClients () {
  const q = $('client-search').value.trim()
  let list
  try {
    list = await api(`/api/v1/clients?limit=200&q=${encodeURIComponent(q)}`)
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true)
    $('client-more').textContent = err.message
    return
  }
  $('client-count').textContent = q === '' ? `(${number(list.total)})` : `(${number(list.matched)} of ${number(list.total)})`
  $('client-rows').replaceChildren(...(list.clients.length === 0
    ? [h('tr', {}, h('td', { colspan: '6', class: 'muted' }, q === '' ? 'No client is connected to this node.' : 'No client matches.'))]
    : list.clients.map((c) => h('tr', { class: c.clientid === state.selected ? 'selected' : '', 'data-client': c.clientid },
      h('td', { class: 'id' }, c.clientid),
      h('td', {}, c.username ?? h('span', { class: 'muted' }, '—')),
      h('td', {}, c.protocol, ' ', h('span', { class: 'muted small' }, c.transport)),
      h('td', { class: 'mono' }, c.address ?? '—'),
      h('td', { title: c.connected_at ?? '' }, c.connected_at === null ? '—' : since(c.connected_at)),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'ghost small', onclick: () => showClient(c.clientid) }, 'Details'), ' ',
        h('button', { type: 'button', class: 'danger', onclick: () => kick(c.clientid) }, 'Kick'))))))
  $('client-more').textContent = list.matched > list.clients.length ? `Showing ${list.clients.length} of ${number(list.matched)}: search to narrow.` : ''
}

function since (iso) {
  return `${duration(Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)))} ago`
}

async function showClient (id) {
  state.selected = id
  const panel = $('client-detail')
  let c
  try {
    c = await api(`/api/v1/clients/${encodeURIComponent(id)}`)
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true)
    panel.replaceChildren(h('p', { class: 'error' }, err.message))
    panel.hidden = false
    return
  }
  const row = (label, value) => [h('dt', {}, label), h('dd', {}, value)]
  panel.replaceChildren(
    h('div', { class: 'card-head' }, h('h2', {}, 'Client ', h('code', {}, c.clientid)),
      h('button', { type: 'button', class: 'danger', onclick: () => kick(c.clientid) }, 'Kick')),
    h('dl', { class: 'detail', id: 'client-detail-fields' },
      ...row('Protocol', `${c.protocol} over ${c.transport}`),
      ...row('Username', c.username ?? '—'),
      ...row('Address', c.address ?? '—'),
      ...row('Connected since', c.connected_at === null ? '—' : `${new Date(c.connected_at).toLocaleString()} (${since(c.connected_at)})`),
      ...row('Session', c.clean_session ? 'clean (ends with the connection)' : 'persistent'),
      ...row('Queued messages', c.queued_messages === null ? 'unknown: the store did not answer in time' : `${number(c.queued_messages)}${c.queued_messages_more ? '+' : ''}`),
      ...row('Bytes waiting on its socket', number(c.pending_bytes)),
      ...row('Subscriptions', c.subscriptions_count === 0 ? 'none (P2P messages need none)' : c.subscriptions.map((s) => `${s.topic} (QoS ${s.qos})`).join(', ') + (c.subscriptions_count > c.subscriptions.length ? ` … ${c.subscriptions_count} in all` : ''))))
  panel.hidden = false
  refreshClients()
}

async function kick (id) {
  if (!confirm(`Disconnect ${id}? Its session stays; it may connect again.`)) return
  try {
    // by query: a path cannot carry every id (URLs turn `.` and `..` into directions)
    await api(`/api/v1/clients?clientid=${encodeURIComponent(id)}`, { method: 'DELETE' })
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true)
    alert(err.message)
  }
  if (state.selected === id) $('client-detail').hidden = true
  setTimeout(refreshClients, 200)
}

setInterval(() => { if (!$('clients').hidden && !document.hidden) refreshClients() }, 3000)

// ---- send ------------------------------------------------------------------

const OUTCOMES = {
  accepted: ['good', 'Accepted: delivered, queued or handed to the node that holds the target (at QoS 0: sent, with no guarantee).'],
  no_session: ['warn', 'Not sent: the target is not connected and has no session.'],
  refused: ['bad', 'Refused by a rule.'],
  not_taken: ['warn', 'The target is connected here but did not take it now.'],
  queue_full: ['bad', 'Not sent: the target\'s queue is full.'],
  unavailable: ['bad', 'Not sent: too much waits for Redis.'],
  failed: ['bad', 'Not sent: the store failed.']
}

function preview () {
  const target = $('send-target').value || '{clientid}'
  const topic = $('send-topic').value || '{topic}'
  const config = state.last?.stats.p2p
  const keyword = config?.keyword ?? 'p2p'
  $('send-preview').textContent = config?.mode === 'suffix' ? `${topic}/${keyword}/${target}` : `${keyword}/${target}/${topic}`
}
for (const id of ['send-target', 'send-topic']) $(id).addEventListener('input', preview)

$('send-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const result = $('send-result')
  const body = { clientid: $('send-target').value, topic: $('send-topic').value, payload: $('send-payload').value, qos: Number($('send-qos').value) }
  const button = $('send-form').querySelector('button[type=submit]')
  button.disabled = true
  let answer
  try {
    answer = await api('/api/v1/p2p/send', { method: 'POST', body: JSON.stringify(body), allowError: true })
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true)
    answer = { status: 0, body: { error: err.message } }
  } finally {
    button.disabled = false
  }
  const outcome = answer.body.outcome
  const [kind, text] = OUTCOMES[outcome] ?? ['bad', answer.body.error ?? 'unknown answer']
  result.className = `result ${kind}`
  result.dataset.outcome = outcome ?? 'error'
  result.replaceChildren(h('strong', {}, outcome ?? `error ${answer.status}`), ' — ', text,
    ...(answer.body.reason === undefined ? [] : [h('br'), h('span', { class: 'muted small' }, answer.body.reason)]),
    ...(outcome === undefined ? [] : [h('br'), h('span', { class: 'muted small' }, answer.body.connectedHere ? 'The target is connected to this node.' : 'The target is not connected to this node.')]))
  result.hidden = false
})

// ---- config ----------------------------------------------------------------

async function refreshConfig () {
  try {
    const node = state.node
    const [plugin, config] = await Promise.all([
      api(`/api/v1/plugins/${encodeURIComponent(node)}/aedes-p2p-messaging`),
      api(`/api/v1/plugins/${encodeURIComponent(node)}/aedes-p2p-messaging/config`)
    ])
    $('config-json').textContent = JSON.stringify(config, null, 2)
    const pill = $('plugin-state')
    pill.className = `pill ${plugin.active ? 'good' : 'warn'}`
    pill.textContent = `${plugin.active ? 'active' : 'stopped'}${plugin.immutable ? ' · immutable' : ''} · v${plugin.version}`
    const toggle = $('plugin-toggle')
    toggle.textContent = plugin.active ? 'Stop P2P routing' : 'Start P2P routing'
    toggle.dataset.action = plugin.active ? 'unload' : 'load'
    toggle.disabled = plugin.immutable
    const base = `/api/v1/plugins/${node}/aedes-p2p-messaging`
    $('api-help').textContent = [
      `curl -H "Authorization: Bearer $TOKEN" ${location.origin}/api/v1/stats`,
      `curl -H "Authorization: Bearer $TOKEN" ${location.origin}/api/v1/clients?q=bob`,
      `curl -X DELETE -H "Authorization: Bearer $TOKEN" ${location.origin}/api/v1/clients/bob   # kick`,
      `curl -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"clientid":"bob","topic":"chat","payload":"hi","qos":1}' ${location.origin}/api/v1/p2p/send`,
      `curl -X PUT -H "Authorization: Bearer $TOKEN" ${location.origin}${base}/config/reload`
    ].join('\n')
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true)
    $('config-json').textContent = err.message
  }
}

function showOutcome (el, ok, text) {
  el.className = `result ${ok ? 'good' : 'bad'}`
  el.textContent = text
  el.hidden = false
}

$('reload').addEventListener('click', async () => {
  const result = $('reload-result')
  try {
    const { status, body } = await api(`/api/v1/plugins/${encodeURIComponent(state.node)}/aedes-p2p-messaging/config/reload`, { method: 'PUT', allowError: true })
    showOutcome(result, body.reloaded === true, body.reloaded === true ? 'Reloaded: the config below is now in force.' : `Refused (${status}): ${body.error} — the running config stays.`)
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true)
    showOutcome(result, false, err.message)
  }
  refreshConfig()
})

$('plugin-toggle').addEventListener('click', async (event) => {
  const action = event.currentTarget.dataset.action
  if (action === 'unload' && !confirm('Stop P2P routing? P2P topics become ordinary topics until it is started again.')) return
  try {
    await api(`/api/v1/plugins/${encodeURIComponent(state.node)}/aedes-p2p-messaging/${action}`, { method: 'PUT' })
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true)
    showOutcome($('reload-result'), false, err.message)
  }
  refreshConfig()
})

// ---- start -----------------------------------------------------------------

async function start (afterLogin) {
  try {
    const stats = await api('/api/v1/stats')
    state.node = stats.node
    state.last = { at: Date.now() / 1000, stats }
    renderStats(stats, null)
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(afterLogin || state.token !== null)
    $('pills').replaceChildren(h('span', { class: 'pill bad' }, `broker unreachable: ${err.message}`))
    return
  }
  $('login').hidden = true
  $('tabs').hidden = false
  $('sign-out').hidden = state.token === null
  preview()
  showTab()
  setTimeout(poll, POLL_MS)
}

start(false)
