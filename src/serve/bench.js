// The packing bench page. A barcode scanner types a code and Enter into the
// focused input; everything else is a function key. Data from the server is
// only ever put on the page with textContent / createElement: buyer messages,
// nicknames and memos may contain HTML or script and must show as plain text.
'use strict';

(function () {
  const T = {
    zh: {
      title: '验货打包', sign_in_title: '登录工作台', name: '姓名', pin: 'PIN', bench: '工作台',
      sign_in: '登录', login_keys: 'Tab 换行 · Enter 登录 · F9 English',
      scan_label: '扫描', order: '订单', urgent: '加急', tracking: '运单号', shop_check: '店铺核对',
      reason: '原因', buyer: '买家', buyer_message: '买家留言', memo: '备注', gift_message: '贺卡',
      invoice_title: '发票抬头', item: '商品', code: '条码 / SKU', qty: '数量', scanned: '已扫',
      handover: '交接', count: '已扫', parcels: '本批包裹', waiting: '该快递未扫包裹', manifest: '交接单',
      keys: 'F2 重打 · F4 交接模式 · F6 关闭交接批次 · F8 退出 · F9 English · Esc 清空',
      ok: '通过 OK', stop: '停 STOP', intercept: '拦截 — 不要发货',
      shop_checked: '已向店铺核对', shop_unreachable: '店铺无法连接，按上次状态处理', shop_none: '未向店铺核对',
      hint_bench: '扫发货单二维码打开订单，再扫商品条码，最后扫运单号。',
      hint_handover_pick: '交接模式：输入快递公司代码并回车开始一批（{codes}）。F4 返回验货。',
      hint_handover: '交接模式：扫运单号。F6 关闭本批并生成交接单，F4 返回验货。',
      open_batches: '进行中的批次：',
      items_note_optional: '本工作站不要求逐件扫描商品：扫运单号即可打包。',
      who: '{op} · {bench}', lang: 'English (F9)',
      reprint_none: '没有可重打的订单', reprinted: '已重打：{courier} {no}，文件 {file}',
      confirm_close: '再按一次 F6 确认关闭批次 {id}（关闭后不能修改）',
      closed: '批次 {id} 已关闭：{n} 件。交接单：{path}', no_batch: '没有进行中的批次',
      accepted: '已加入', network: '无法连接工作站：{e}', signed_out: '已退出',
      st_queued: '待打印', st_printed: '已打印', st_packed: '已打包', st_handed_over: '已交接',
      st_shipped: '已发货', st_intercept: '拦截', st_changed_after_print: '打印后有变更', st_left_queue: '已离开队列',
    },
    en: {
      title: 'Packing bench', sign_in_title: 'Sign in at a bench', name: 'Name', pin: 'PIN', bench: 'Bench',
      sign_in: 'Sign in', login_keys: 'Tab next field · Enter sign in · F9 中文',
      scan_label: 'Scan', order: 'Order', urgent: 'URGENT', tracking: 'Waybill', shop_check: 'Shop check',
      reason: 'Reason', buyer: 'Buyer', buyer_message: 'Buyer message', memo: 'Memo', gift_message: 'Gift message',
      invoice_title: 'Invoice title', item: 'Item', code: 'Barcode / SKU', qty: 'Qty', scanned: 'Scanned',
      handover: 'Handover', count: 'scanned', parcels: 'Parcels in this batch', waiting: 'Labelled for this courier, not scanned', manifest: 'Manifest',
      keys: 'F2 reprint · F4 handover mode · F6 close batch · F8 sign out · F9 中文 · Esc clear',
      ok: 'OK', stop: 'STOP', intercept: 'INTERCEPT — do not ship',
      shop_checked: 'checked with the shop', shop_unreachable: 'shop unreachable — going on with the last known state', shop_none: 'not checked with the shop',
      hint_bench: 'Scan the packing slip QR to open an order, then each item, then the waybill.',
      hint_handover_pick: 'Handover: type a courier code and Enter to start a batch ({codes}). F4 back to packing.',
      hint_handover: 'Handover: scan each waybill. F6 closes the batch and prints the manifest; F4 back to packing.',
      open_batches: 'Open batches: ',
      items_note_optional: 'This station does not require item scans: the waybill packs the parcel.',
      who: '{op} · {bench}', lang: '中文 (F9)',
      reprint_none: 'no order to reprint', reprinted: 'reprinted: {courier} {no}, file {file}',
      confirm_close: 'press F6 again to close batch {id} (a closed batch cannot change)',
      closed: 'batch {id} closed: {n} parcels. Manifest: {path}', no_batch: 'no open batch',
      accepted: 'added', network: 'cannot reach the station: {e}', signed_out: 'signed out',
      st_queued: 'queued', st_printed: 'printed', st_packed: 'packed', st_handed_over: 'handed over',
      st_shipped: 'shipped', st_intercept: 'intercept', st_changed_after_print: 'changed after print', st_left_queue: 'left the queue',
    },
  };

  let lang = localStorage.getItem('station.lang') === 'en' ? 'en' : 'zh';
  let me = null;            // {operator, bench, couriers, require_item_scans}
  let mode = 'bench';       // 'bench' | 'handover'
  let order = null;         // the BenchOrder shown
  let shopSeen = {};        // order id -> 'checked' | 'unreachable', last non-skipped check
  let lastFeedback = null;  // {kind, en, zh} to re-render on a language switch
  let canReprint = false;
  let batch = null;         // the BatchView of the open handover batch
  let closeArmed = 0;       // time F6 was pressed once
  const queue = [];
  let busy = false;

  const $ = (id) => document.getElementById(id);
  function t(key, vars) {
    let s = (T[lang] && T[lang][key]) || T.zh[key] || key;
    if (vars) for (const k of Object.keys(vars)) s = s.split('{' + k + '}').join(String(vars[k]));
    return s;
  }
  function setText(id, v) { $(id).textContent = v == null ? '' : String(v); }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function show(id, yes) { $(id).hidden = !yes; }

  // ---- sound: short high beep = OK, long low = STOP, two long lows = INTERCEPT
  let audio = null;
  function tone(freq, ms, at) {
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.type = 'square';
    o.frequency.value = freq;
    g.gain.value = 0.15;
    o.connect(g); g.connect(audio.destination);
    const start = audio.currentTime + (at || 0) / 1000;
    o.start(start); o.stop(start + ms / 1000);
  }
  function sound(kind) {
    document.body.dataset.lastSound = kind;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === 'suspended') audio.resume();
      if (kind === 'ok') tone(1760, 90);
      else if (kind === 'stop') tone(220, 700);
      else if (kind === 'intercept') { tone(200, 600); tone(160, 600, 750); }
    } catch (e) { /* no audio device: the colour still says it */ }
  }

  // ---- the server
  async function api(method, path, body) {
    const opt = { method, headers: { 'Accept': 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, opt);
    } catch (e) {
      return { ok: false, status: 0, data: { error: t('network', { e: e.message }), error_zh: t('network', { e: e.message }) } };
    }
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && path !== '/api/login' && path !== '/api/me') {
      showLogin();
    }
    return { ok: r.ok, status: r.status, data };
  }
  function errorText(res) {
    const d = res.data || {};
    return (lang === 'zh' ? d.error_zh : d.error) || d.error || ('HTTP ' + res.status);
  }

  // ---- feedback banner
  function feedback(kind, en, zh) {
    lastFeedback = { kind, en, zh };
    renderFeedback();
    if (kind !== 'idle' && kind !== 'info') sound(kind);
  }
  function renderFeedback() {
    const f = lastFeedback || { kind: 'idle', en: '', zh: '' };
    const box = $('feedback');
    box.className = f.kind === 'info' ? 'idle' : f.kind;
    box.dataset.verdict = f.kind;
    setText('verdict', (f.kind === 'ok' || f.kind === 'stop' || f.kind === 'intercept') ? t(f.kind) : '');
    setText('message', lang === 'zh' ? (f.zh || f.en) : (f.en || f.zh));
  }

  // ---- the order at the bench
  function renderOrder() {
    show('order-panel', mode === 'bench' && !!order);
    if (!order) return;
    const o = order;
    setText('order-id', o.id);
    show('order-urgent', !!o.urgent);
    setText('order-state', t('st_' + o.state));
    $('order-state').dataset.state = o.state;
    setText('order-courier', o.courier || '');
    setText('order-tracking', o.tracking_no || '—');
    const shop = shopSeen[o.id];
    setText('order-shop', shop ? t('shop_' + shop) : t('shop_none'));
    $('order-shop').className = shop === 'unreachable' ? 'unreachable' : '';
    const optional = [
      ['row-reason', 'order-reason', o.reason],
      ['row-message', 'buyer-message', o.buyer_message],
      ['row-memo', 'memo', o.memo],
      ['row-gift', 'gift-message', o.gift_message],
      ['row-invoice', 'invoice-title', o.invoice_title],
    ];
    for (const [row, id, v] of optional) {
      show(row, v != null && v !== '');
      setText(id, v);
    }
    setText('buyer-nick', o.buyer_nick);
    const body = $('items-body');
    clear(body);
    for (const it of o.items || []) {
      const done = it.scanned >= it.qty;
      const tr = el('tr', done ? 'done' : '');
      const name = el('td', 'title');
      name.appendChild(el('span', '', it.title));
      if (it.spec) name.appendChild(el('span', 'spec', it.spec));
      tr.appendChild(name);
      tr.appendChild(el('td', 'code', it.barcode || it.sku));
      tr.appendChild(el('td', 'num', it.qty));
      tr.appendChild(el('td', 'num scanned', it.scanned));
      tr.appendChild(el('td', 'tick', done ? '✓' : ''));
      body.appendChild(tr);
    }
    setText('items-note', o.require_item_scans ? '' : t('items_note_optional'));
  }

  async function loadBench() {
    const res = await api('GET', '/api/bench');
    if (res.ok) { order = res.data; renderOrder(); }
  }

  async function benchScan(code) {
    const res = await api('POST', '/api/scan', { code });
    if (!res.ok) { feedback('stop', errorText(res), errorText(res)); return; }
    const out = res.data;
    if (out.order) {
      order = out.order;
      if (out.shop === 'checked' || out.shop === 'unreachable') shopSeen[order.id] = out.shop;
    }
    canReprint = !!out.can_reprint;
    renderOrder();
    let zh = out.message_zh, en = out.message;
    if (out.shop === 'unreachable') {
      zh += '（' + T.zh.shop_unreachable + '）';
      en += ' (' + T.en.shop_unreachable + ')';
    }
    document.body.dataset.code = out.code;
    feedback(out.verdict, en, zh);
  }

  async function reprint() {
    if (!order) { feedback('info', T.en.reprint_none, T.zh.reprint_none); return; }
    const res = await api('POST', '/api/reprint', { order_id: order.id });
    if (!res.ok) { feedback('stop', errorText(res), errorText(res)); return; }
    const p = res.data;
    const vars = { courier: p.courier, no: p.tracking_no, file: p.waybill_file };
    feedback('ok', tFor('en', 'reprinted', vars), tFor('zh', 'reprinted', vars));
    canReprint = false;
    await loadBench();
  }
  function tFor(l, key, vars) { const keep = lang; lang = l; const s = t(key, vars); lang = keep; return s; }

  // ---- handover
  function renderHandover() {
    show('handover-panel', mode === 'handover');
    if (mode !== 'handover') return;
    const codes = (me && me.couriers || []).map((c) => c.code + ' ' + c.name).join(', ');
    setText('hint', batch ? t('hint_handover') : t('hint_handover_pick', { codes }));
    setText('handover-courier', batch ? (batch.courier_name + ' ' + batch.courier) : '');
    setText('handover-batch', batch ? batch.id : t('no_batch'));
    setText('handover-count', batch ? batch.parcels.length : 0);
    const list = $('handover-parcels');
    clear(list);
    for (const p of (batch ? batch.parcels : []).slice().reverse()) {
      list.appendChild(el('li', '', p.tracking_no + '  ' + p.order_id));
    }
    const waiting = $('handover-waiting');
    clear(waiting);
    const w = batch ? (batch.waiting || []) : [];
    for (const p of w) {
      waiting.appendChild(el('li', '', p.tracking_no + '  ' + p.order_id + '  ' + t('st_' + p.state)));
    }
    setText('handover-waiting-count', w.length);
    const manifest = batch && batch.manifest;
    show('handover-manifest-row', !!manifest);
    setText('handover-manifest', manifest || '');
  }

  async function enterHandover() {
    mode = 'handover';
    document.body.dataset.mode = mode;
    show('order-panel', false);
    const res = await api('GET', '/api/handover');
    const open = res.ok ? res.data : [];
    // Keep the batch this page had if it is still open; else one open batch is
    // the obvious one; with several, the operator types the courier code.
    if (batch && batch.state === 'open') batch = open.find((b) => b.id === batch.id) || null;
    else batch = null;
    if (!batch && open.length === 1) batch = open[0];
    setText('handover-open-list', open.length > 1
      ? t('open_batches') + open.map((b) => b.courier + ' ' + b.id + ' (' + b.parcels.length + ')').join(', ')
      : '');
    renderHandover();
    feedback('info', '', '');
  }

  function leaveHandover() {
    mode = 'bench';
    document.body.dataset.mode = mode;
    show('handover-panel', false);
    setText('hint', t('hint_bench'));
    renderOrder();
    feedback('info', '', '');
  }

  async function handoverCode(code) {
    if (!batch || batch.state !== 'open') {
      const res = await api('POST', '/api/handover/open', { courier: code });
      if (!res.ok) { feedback('stop', errorText(res), errorText(res)); return; }
      batch = res.data;
      document.body.dataset.code = 'batch_open';
      feedback('ok', 'batch ' + batch.id + ' for ' + batch.courier, '批次 ' + batch.id + '（' + batch.courier_name + '）');
      renderHandover();
      return;
    }
    const res = await api('POST', '/api/handover/scan', { code, batch: batch.id });
    if (!res.ok) { feedback('stop', errorText(res), errorText(res)); return; }
    const out = res.data;
    batch = out.batch;
    renderHandover();
    document.body.dataset.code = out.code;
    let kind = out.accepted ? 'ok' : (out.code === 'intercept' ? 'intercept' : 'stop');
    feedback(kind, out.message, out.message_zh);
  }

  async function closeBatch() {
    if (mode !== 'handover') return;
    if (!batch || batch.state !== 'open') { feedback('stop', T.en.no_batch, T.zh.no_batch); return; }
    const now = Date.now();
    if (now - closeArmed > 5000) {
      closeArmed = now;
      const vars = { id: batch.id };
      feedback('info', tFor('en', 'confirm_close', vars), tFor('zh', 'confirm_close', vars));
      return;
    }
    closeArmed = 0;
    const res = await api('POST', '/api/handover/close', { batch: batch.id });
    if (!res.ok) { feedback('stop', errorText(res), errorText(res)); return; }
    const c = res.data;
    batch = Object.assign({}, batch, { state: 'closed', manifest: c.manifest, waiting: [] });
    renderHandover();
    batch = null;
    setText('handover-batch', c.batch_id);
    setText('hint', t('hint_handover_pick', { codes: (me.couriers || []).map((x) => x.code).join(', ') }));
    document.body.dataset.code = 'closed';
    const vars = { id: c.batch_id, n: c.count, path: c.manifest };
    feedback('ok', tFor('en', 'closed', vars), tFor('zh', 'closed', vars));
  }

  // ---- scanning: codes (and function keys) queue up and run in order, so a
  // fast scanner never loses a code and a key never overtakes a scan.
  async function pump() {
    if (busy) return;
    busy = true;
    document.body.dataset.busy = '1';
    while (queue.length) {
      const job = queue.shift();
      try {
        if (typeof job === 'function') await job();
        else if (mode === 'handover') await handoverCode(job);
        else await benchScan(job);
      } catch (e) {
        feedback('stop', String(e), String(e));
      }
      document.body.dataset.scans = String(Number(document.body.dataset.scans || 0) + 1);
    }
    busy = false;
    document.body.dataset.busy = '0';
  }
  function queueAction(fn) { queue.push(fn); pump(); }

  // ---- sign-in
  function showLogin(message) {
    me = null;
    $('work').hidden = true;
    $('login').hidden = false;
    setText('who', '');
    setText('login-error', message || '');
    $('login-bench').value = localStorage.getItem('station.bench') || '';
    $('login-name').focus();
  }

  function showWork() {
    $('login').hidden = true;
    $('work').hidden = false;
    setText('who', t('who', { op: me.operator, bench: me.bench }));
    if (mode === 'handover') enterHandover(); else leaveHandover();
    $('scan').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const body = { name: $('login-name').value, pin: $('login-pin').value, bench: $('login-bench').value };
    $('login-pin').value = '';
    const res = await api('POST', '/api/login', body);
    if (!res.ok) {
      setText('login-error', errorText(res));
      $('login-pin').focus();
      return;
    }
    localStorage.setItem('station.bench', body.bench.trim());
    me = res.data;
    lastFeedback = null;
    renderFeedback();
    showWork();
    await loadBench();
  }

  async function logout() {
    await api('POST', '/api/logout');
    order = null;
    batch = null;
    showLogin(t('signed_out'));
  }

  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    for (const e of document.querySelectorAll('[data-t]')) e.textContent = t(e.dataset.t);
    setText('lang-name', t('lang'));
    if (me) setText('who', t('who', { op: me.operator, bench: me.bench }));
    renderFeedback();
    renderOrder();
    if (mode === 'handover') renderHandover(); else setText('hint', t('hint_bench'));
  }

  function onKey(ev) {
    const k = ev.key;
    if (k === 'F9') {
      ev.preventDefault();
      const flip = () => { lang = lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('station.lang', lang); applyLang(); };
      if (me) queueAction(async () => flip()); else flip();
      return;
    }
    if (!me) return;
    if (k === 'F2') { ev.preventDefault(); queueAction(reprint); }
    else if (k === 'F4') { ev.preventDefault(); queueAction(() => (mode === 'bench' ? enterHandover() : leaveHandover())); }
    else if (k === 'F6') { ev.preventDefault(); queueAction(closeBatch); }
    else if (k === 'F8') { ev.preventDefault(); queueAction(logout); }
    else if (k === 'Escape') { ev.preventDefault(); $('scan').value = ''; feedback('info', '', ''); }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('login-form').addEventListener('submit', login);
    $('scan-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const code = $('scan').value.trim();
      $('scan').value = '';
      if (code) { queue.push(code); pump(); }
    });
    document.addEventListener('keydown', onKey);
    // The scanner types wherever focus is: keep it on the scan input.
    $('scan').addEventListener('blur', () => setTimeout(() => { if (!$('work').hidden) $('scan').focus(); }, 0));
    document.addEventListener('click', () => { if (!$('work').hidden) $('scan').focus(); });
    applyLang();
    const res = await api('GET', '/api/me');
    if (res.ok) { me = res.data; showWork(); await loadBench(); }
    else showLogin();
    document.body.dataset.ready = '1';
  });
})();
