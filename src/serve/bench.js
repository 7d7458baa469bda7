// The packing bench page. A barcode scanner types a code and Enter into the
// focused input; everything else is a function key. Data from the server is
// only ever put on the page with textContent / createElement: buyer messages,
// nicknames and memos may contain HTML or script and must show as plain text.
'use strict';

(function () {
  const T = {
    zh: {
      title: '验货打包', sign_in_title: '登录工作台', name: '姓名', pin: 'PIN', bench: '工作台',
      take_over: '接管此台？另一个浏览器将被退出。',
      sign_in: '登录', login_keys: 'Tab 换行 · Enter 登录 · F9 English',
      scan_label: '扫描', order: '订单', urgent: '加急', urgent_banner: '加急 URGENT — 优先打包', tracking: '运单号', shop_check: '店铺核对',
      reason: '原因', buyer: '买家', buyer_message: '买家留言', memo: '备注', gift_message: '贺卡留言（随包裹放入）',
      invoice: '发票', invoice_line: '需开发票 · 抬头 {title}', merged: '合并发货 {n} 单：{ids}', item: '商品', code: '条码 / SKU', qty: '数量', scanned: '已扫',
      handover: '交接', count: '已扫', parcels: '本批包裹', waiting: '该快递未扫包裹', manifest: '交接单',
      keys: 'F1 退货登记 · F2 重打 · F3 缺货 · F4 交接模式 · F6 关闭交接批次 · F7 查单 · F8 退出 · F9 English · F10 日报 · Esc 清空/返回',
      ok: '通过 OK', stop: '停 STOP', intercept: '拦截 — 不要发货', short: '缺货 — 已搁置',
      shop_checked: '已向店铺核对', shop_unreachable: '店铺无法连接，按上次状态处理', shop_none: '未向店铺核对',
      hint_bench: '扫发货单二维码打开订单，再扫商品条码，最后扫运单号。',
      hint_handover_pick: '交接模式：输入快递公司代码并回车开始一批（{codes}）。F4 返回验货。',
      hint_handover: '交接模式：扫运单号。F6 关闭本批并生成交接单，F4 返回验货。',
      open_batches: '进行中的批次：',
      items_note_optional: '本工作站不要求逐件扫描商品：扫运单号即可打包。',
      who: '{op} · {bench}', lang: 'English (F9)',
      next_slip: '下一步：扫发货单二维码', next_items: '下一步：扫商品（还差 {n} 件）', next_waybill: '下一步：扫运单号 {no}',
      next_packed: '下一步：放到已打包区，扫下一张发货单', next_intercept: '下一步：把包裹放到拦截区，不要发货；再扫下一张发货单', next_reprint: '下一步：按 F2 重打面单',
      reprint_none: '没有可重打的订单', reprinted: '已重打并送到打印机 {printer}：{courier} {no}',
      reprinted_no_printer: '新面单已生成（{courier} {no}），但本台没有设置打印机（printers.bench）：请找主管打印',
      confirm_close: '再按一次 F6 确认关闭批次 {id}（关闭后不能修改）',
      closed: '批次 {id} 已关闭：{n} 件。交接单：{path}', no_batch: '没有进行中的批次',
      accepted: '已加入', network: '无法连接工作站：{e}',
      retrying: '与工作站的连接中断，正在重试（第 {n} 次）…', scan_lost: '工作站 30 秒没有响应（{e}）：这次扫描没有记录，请重扫', signed_out: '已退出',
      st_queued: '待打印', st_printed: '已打印', st_packed: '已打包', st_handed_over: '已交接',
      st_shipped: '已发货', st_intercept: '拦截', st_changed_after_print: '打印后有变更', st_left_queue: '已离开队列',
      st_out_of_stock: '缺货', st_rejected: '已拒收',
      short_none: '先扫发货单打开订单，再按 F3 登记缺货',
      hint_short: '缺货（订单 {id}）：扫描或输入缺的商品条码/SKU，回车；数量可写成 SKU*2。Esc 取消。',
      short_done: '缺货已登记：订单 {id} 已搁置（不要发货）{voided}，店铺将标记 {flag} 旗并备注「{memo}」',
      short_voided: '，运单 {no} 已作废',
      search_title: '查单：订单在哪里？', hint_search: '查单：输入订单号、运单号或买家昵称，回车。F7 或 Esc 返回验货。',
      search_for: '查询：{q}', search_none: '没有找到：{q}', search_found: '找到 {n} 个订单',
      s_summary: '概况', s_paid: '付款时间', s_tracking: '运单号', s_void: '作废', s_live: '有效', s_waves: '打印波次',
      s_packed: '打包', s_batch: '交接批次', s_writebacks: '回写店铺', s_pending: '待发送', s_done: '已完成', s_alert: '警报',
      s_timeline: '操作记录', s_at: '时间', s_who: '操作人', s_action: '动作', s_detail: '详情', s_attempts: '次尝试',
      report_title: '日报', hint_report: '日报：输入日期（YYYY-MM-DD）回车查看其他日期。F10 或 Esc 返回验货。',
      r_figures: '当日数字', r_pulled: '拉取订单', r_printed: '打印', r_reprinted: '重打', r_packed: '打包', r_handed_over: '交接',
      r_intercepted: '拦截', r_out_of_stock: '缺货', r_changed: '打印后变更', r_rejected: '拒收（不合规）',
      r_pending: '待回写店铺', r_oldest: '最久待回写（秒）', r_alerts: '回写警报',
      r_couriers: '按快递交接', r_parcels: '件', r_batches: '批次', r_not_handed: '已打印未交接（快递最后取件前处理）',
      r_recall: '已交接后退款/关闭：请快递拦截', r_bench: '按工作台', r_operator: '按操作员', r_per_hour: '件/小时',
      r_name: '名称', r_order: '订单', r_state: '状态', r_reason: '原因', r_courier: '快递', r_none: '无',
      r_dispatch: '发货提醒',
      d_after_cutoff: '截单 {cutoff} 已过，仍在仓库：{n} 件（明天才走）', d_broken: '已超过发货承诺：{n} 单',
      d_at_risk: '即将超过发货承诺：{n} 单', d_quiet: '没有发货提醒', d_item: '{id}（付款 {paid}，期限 {due}）', d_item_brief: '{id}（期限 {due}）',
      q_queued: '待打印 {n} 单', q_pull_every: '自动拉单：每 {m} 分钟', q_pull_off: '自动拉单：关闭',
      q_wave_every: '自动打印：每 {m} 分钟', q_wave_off: '自动打印：关闭', q_last: '上次 {at} {ok}：{summary}',
      q_ok: '成功', q_failed: '失败', q_inactive: '自动拉单未运行：{why}', q_running: '正在运行…',
      scale_stable: '电子秤 {w}（稳定：扫运单时记录）', scale_unstable: '电子秤 {w}（不稳定，请等读数稳定）',
      scale_none: '电子秤没有读数：{p}',
      returns_title: '退货登记',
      hint_returns: '退货登记：扫退回包裹上的运单号（或输入订单号），回车。F1 或 Esc 返回验货。',
      hint_returns_items: '退货登记（订单 {id}）：逐件扫退回的商品；输入 1–5 选原因；F3 切换完好/破损；F6 确认登记；Esc 换包裹。',
      ret_parcel: '订单 {id} · {courier} {no}', ret_shipped: '发出', ret_returned: '已退', ret_now: '本次退回',
      ret_condition: '状态', ret_reason: '原因', ret_condition_ok: '完好', ret_condition_damaged: '破损',
      ret_item: '+1 {sku} {title}', ret_item_unknown: '{code} 不是这个包裹里的商品：不要登记',
      ret_too_many: '{sku} 这个包裹最多退 {n} 件，已经扫够了', ret_none: '先扫退回的商品，再按 F6 确认登记',
      ret_done: '退货 #{n} 已登记：订单 {id}，{what}；店铺将标记 {flag} 旗并备注「{memo}」',
    },
    en: {
      title: 'Packing bench', sign_in_title: 'Sign in at a bench', name: 'Name', pin: 'PIN', bench: 'Bench',
      take_over: 'Take this bench over? The other browser will be signed out.',
      sign_in: 'Sign in', login_keys: 'Tab next field · Enter sign in · F9 中文',
      scan_label: 'Scan', order: 'Order', urgent: 'URGENT', urgent_banner: 'URGENT 加急 — pack first', tracking: 'Waybill', shop_check: 'Shop check',
      reason: 'Reason', buyer: 'Buyer', buyer_message: 'Buyer message', memo: 'Memo', gift_message: 'Gift message (put in the parcel)',
      invoice: 'Invoice', invoice_line: 'Invoice requested · title {title}', merged: 'merged parcel of {n} orders: {ids}', item: 'Item', code: 'Barcode / SKU', qty: 'Qty', scanned: 'Scanned',
      handover: 'Handover', count: 'scanned', parcels: 'Parcels in this batch', waiting: 'Labelled for this courier, not scanned', manifest: 'Manifest',
      keys: 'F1 returns · F2 reprint · F3 out of stock · F4 handover mode · F6 close batch · F7 find an order · F8 sign out · F9 中文 · F10 day report · Esc clear/back',
      ok: 'OK', stop: 'STOP', intercept: 'INTERCEPT — do not ship', short: 'OUT OF STOCK — set aside',
      shop_checked: 'checked with the shop', shop_unreachable: 'shop unreachable — going on with the last known state', shop_none: 'not checked with the shop',
      hint_bench: 'Scan the packing slip QR to open an order, then each item, then the waybill.',
      hint_handover_pick: 'Handover: type a courier code and Enter to start a batch ({codes}). F4 back to packing.',
      hint_handover: 'Handover: scan each waybill. F6 closes the batch and prints the manifest; F4 back to packing.',
      open_batches: 'Open batches: ',
      items_note_optional: 'This station does not require item scans: the waybill packs the parcel.',
      who: '{op} · {bench}', lang: '中文 (F9)',
      next_slip: 'Next: scan a packing slip', next_items: 'Next: scan the items ({n} to go)', next_waybill: 'Next: scan waybill {no}',
      next_packed: 'Next: put it with the packed parcels, scan the next slip', next_intercept: 'Next: set the parcel aside, do not ship; then scan the next slip', next_reprint: 'Next: press F2 to reprint the label',
      reprint_none: 'no order to reprint', reprinted: 'reprinted on {printer}: {courier} {no}',
      reprinted_no_printer: 'new label made ({courier} {no}), but this bench has no printer (printers.bench): ask the supervisor to print it',
      confirm_close: 'press F6 again to close batch {id} (a closed batch cannot change)',
      closed: 'batch {id} closed: {n} parcels. Manifest: {path}', no_batch: 'no open batch',
      accepted: 'added', network: 'cannot reach the station: {e}',
      retrying: 'lost the connection to the station, trying again ({n})…', scan_lost: 'the station did not answer for 30 s ({e}): this scan was not recorded, scan again', signed_out: 'signed out',
      st_queued: 'queued', st_printed: 'printed', st_packed: 'packed', st_handed_over: 'handed over',
      st_shipped: 'shipped', st_intercept: 'intercept', st_changed_after_print: 'changed after print', st_left_queue: 'left the queue',
      st_out_of_stock: 'out of stock', st_rejected: 'rejected',
      short_none: 'open an order with its packing slip first, then F3 for out of stock',
      hint_short: 'Out of stock (order {id}): scan or type the missing item\'s barcode/SKU and Enter; a quantity as SKU*2. Esc cancels.',
      short_done: 'out of stock recorded: order {id} set aside (do not ship){voided}; the shop gets the {flag} flag and the memo "{memo}"',
      short_voided: ', waybill {no} voided',
      search_title: 'Where is this order?', hint_search: 'Find an order: type an order id, tracking number or buyer nick and Enter. F7 or Esc back to packing.',
      search_for: 'query: {q}', search_none: 'nothing found for {q}', search_found: '{n} order(s) found',
      s_summary: 'Summary', s_paid: 'Paid', s_tracking: 'Tracking numbers', s_void: 'void', s_live: 'live', s_waves: 'Waves',
      s_packed: 'Packed', s_batch: 'Handover batch', s_writebacks: 'Write-backs to the shop', s_pending: 'pending', s_done: 'done', s_alert: 'alert',
      s_timeline: 'Timeline', s_at: 'When', s_who: 'Who', s_action: 'Action', s_detail: 'Detail', s_attempts: 'attempt(s)',
      report_title: 'Day report', hint_report: 'Day report: type a date (YYYY-MM-DD) and Enter for another day. F10 or Esc back to packing.',
      r_figures: 'Figures', r_pulled: 'Orders pulled', r_printed: 'Printed', r_reprinted: 'Reprinted', r_packed: 'Packed', r_handed_over: 'Handed over',
      r_intercepted: 'Intercepted', r_out_of_stock: 'Out of stock', r_changed: 'Changed after print', r_rejected: 'Rejected (broke the contract)',
      r_pending: 'Write-backs pending', r_oldest: 'Oldest pending (s)', r_alerts: 'Write-back alerts',
      r_couriers: 'Handed over per courier', r_parcels: 'parcels', r_batches: 'batches', r_not_handed: 'Printed but not handed over (before the last pickup)',
      r_recall: 'Refunded or closed after handover: ask the courier to intercept', r_bench: 'Per bench', r_operator: 'Per operator', r_per_hour: 'parcels/hour',
      r_name: 'Name', r_order: 'Order', r_state: 'State', r_reason: 'Reason', r_courier: 'Courier', r_none: 'none',
      r_dispatch: 'Dispatch warnings',
      d_after_cutoff: 'Past today\'s cut-off {cutoff}, still here: {n} parcel(s) (leave tomorrow)', d_broken: 'Ship promise broken: {n} order(s)',
      d_at_risk: 'Ship promise about to break: {n} order(s)', d_quiet: 'no dispatch warnings', d_item: '{id} (paid {paid}, due {due})', d_item_brief: '{id} (due {due})',
      q_queued: '{n} order(s) waiting to be printed', q_pull_every: 'scheduled pull: every {m} min', q_pull_off: 'scheduled pull: off',
      q_wave_every: 'auto-wave: every {m} min', q_wave_off: 'auto-wave: off', q_last: 'last {at} {ok}: {summary}',
      q_ok: 'ok', q_failed: 'FAILED', q_inactive: 'scheduled pulls not running: {why}', q_running: 'running…',
      scale_stable: 'Scale {w} (steady: recorded with the waybill scan)', scale_unstable: 'Scale {w} (unsteady: wait for it to settle)',
      scale_none: 'No reading from the scale: {p}',
      returns_title: 'Returns',
      hint_returns: 'Returns: scan the waybill on the returned parcel (or type its order id) and Enter. F1 or Esc back to packing.',
      hint_returns_items: 'Returns (order {id}): scan each returned item; type 1–5 for the reason; F3 toggles ok/damaged; F6 records it; Esc for another parcel.',
      ret_parcel: 'order {id} · {courier} {no}', ret_shipped: 'Shipped', ret_returned: 'Returned before', ret_now: 'Back now',
      ret_condition: 'Condition', ret_reason: 'Reason', ret_condition_ok: 'ok', ret_condition_damaged: 'damaged',
      ret_item: '+1 {sku} {title}', ret_item_unknown: '{code} is not an item of this parcel: do not record it',
      ret_too_many: 'only {n} of {sku} can come back from this parcel: all are scanned', ret_none: 'scan the returned items first, then F6 to record them',
      ret_done: 'Return #{n} recorded: order {id}, {what}; the shop gets flag {flag} with memo “{memo}”',
    },
  };

  let lang = localStorage.getItem('station.lang') === 'en' ? 'en' : 'zh';
  let me = null;            // {operator, bench, couriers, require_item_scans}
  let mode = 'bench';       // 'bench' | 'handover' | 'returns' | 'search' | 'report'
  let ret = null;           // returns: {parcel, now: {sku: n}, reason, condition, id}
  let shortFor = null;      // order id while F3 (out of stock) waits for the item
  let stories = null;       // the last search: {q, list}
  let report = null;        // the DayReport shown
  let dispatchSeen = null;  // the last /api/dispatch answer
  let queueSeen = null;     // the last /api/queue answer
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
      else if (kind === 'stop' || kind === 'short') tone(220, 700);
      else if (kind === 'intercept') { tone(200, 600); tone(160, 600, 750); }
    } catch (e) { /* no audio device: the colour still says it */ }
  }

  // ---- the server
  // Each scan gets an id of its own; when the page sends a scan again (the
  // station's answer was lost), the station answers it again instead of
  // counting the item twice.
  let scanCounter = 0;
  function scanId() {
    scanCounter += 1;
    return Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10) + '-' + scanCounter;
  }
  async function api(method, path, body) {
    const opt = { method, headers: { 'Accept': 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    let r;
    // A scan is never dropped while the station restarts: the request is
    // tried again for up to half a minute, saying so; then the operator is
    // told to scan again. A scan the station did see (its answer was lost)
    // carries the same scan id and gets the same answer, not a second count.
    const retry = path === '/api/scan' || path === '/api/handover/scan' || path === '/api/returns';
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        r = await fetch(path, opt);
        if (!retry || (r.status !== 502 && r.status !== 503)) break;
      } catch (e) {
        if (!retry || Date.now() - started > 30000) {
          const en = tFor('en', retry ? 'scan_lost' : 'network', { e: e.message });
          const zh = tFor('zh', retry ? 'scan_lost' : 'network', { e: e.message });
          return { ok: false, status: 0, data: { error: en, error_zh: zh } };
        }
      }
      if (retry && Date.now() - started > 30000) break;
      feedback('info', tFor('en', 'retrying', { n: attempt }), tFor('zh', 'retrying', { n: attempt }));
      await new Promise((done) => setTimeout(done, Math.min(500 * attempt, 3000)));
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
    setText('verdict', (f.kind === 'ok' || f.kind === 'stop' || f.kind === 'intercept' || f.kind === 'short') ? t(f.kind) : '');
    setText('message', lang === 'zh' ? (f.zh || f.en) : (f.en || f.zh));
    renderNext();
  }

  // ---- the order at the bench
  function renderOrder() {
    show('order-panel', mode === 'bench' && !!order);
    if (!order) { renderNext(); return; }
    const o = order;
    setText('order-id', o.id);
    // An order that must not ship (intercepted, set aside, gone) shows no
    // "pack first" banner and no "put in the parcel" gift note.
    const live = o.state === 'printed' || o.state === 'packed';
    show('order-urgent', live && !!o.urgent);
    $('order-panel').classList.toggle('is-urgent', live && !!o.urgent);
    setText('order-state', t('st_' + o.state));
    $('order-state').dataset.state = o.state;
    setText('order-courier', o.courier || '');
    setText('order-tracking', o.tracking_no || '—');
    const shop = shopSeen[o.id];
    setText('order-shop', shop ? t('shop_' + shop) : t('shop_none'));
    $('order-shop').className = shop === 'unreachable' ? 'unreachable' : '';
    const optional = [
      ['row-reason', 'order-reason', lang === 'zh' ? (o.reason_zh || o.reason) : o.reason],
      ['row-message', 'buyer-message', o.buyer_message],
      ['row-memo', 'memo', o.memo],
      ['row-invoice', 'invoice-title', o.invoice_title ? t('invoice_line', { title: o.invoice_title }) : null],
      // A merged parcel (合并发货): every order in it, all their items below.
      ['row-merged', 'merged-orders', (o.parcel || []).length > 1
        ? t('merged', { n: o.parcel.length, ids: o.parcel.map((p) => p.id).join('、') }) : null],
      ['gift-box', 'gift-message', live ? o.gift_message : null],
    ];
    for (const [row, id, v] of optional) {
      show(row, v != null && v !== '');
      setText(id, v);
    }
    setText('buyer-nick', o.buyer_nick);
    const body = $('items-body');
    clear(body);
    // What is still to scan comes first (in the order's own order), then what is done.
    const items = (o.items || []).filter((it) => it.scanned < it.qty)
      .concat((o.items || []).filter((it) => it.scanned >= it.qty));
    for (const it of items) {
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
    renderNext();
  }

  // ---- what to scan next, from the state of the bench
  function renderNext() {
    let key = null, vars = {};
    if (mode === 'bench' && !shortFor) {
      if (!order) key = 'next_slip';
      else if (order.state === 'printed') {
        const left = (order.items || []).reduce((n, it) => n + Math.max(0, it.qty - it.scanned), 0);
        if (left > 0 && order.require_item_scans) { key = 'next_items'; vars = { n: left }; }
        else { key = 'next_waybill'; vars = { no: order.tracking_no || '' }; }
      } else if (order.state === 'packed') key = 'next_packed';
      else if (order.state === 'intercept') key = 'next_intercept';
      else if (order.state === 'changed_after_print') key = 'next_reprint';
      else key = 'next_slip';
    }
    show('next', key !== null);
    if (key) setText('next', t(key, vars));
  }

  async function loadBench() {
    const res = await api('GET', '/api/bench');
    if (res.ok) { order = res.data; renderOrder(); }
  }

  async function benchScan(code) {
    const res = await api('POST', '/api/scan', { code, scan_id: scanId() });
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
    const vars = { courier: p.courier, no: p.tracking_no, printer: p.printer || '' };
    const key = p.printer ? 'reprinted' : 'reprinted_no_printer';
    feedback(p.printer ? 'ok' : 'stop', tFor('en', key, vars), tFor('zh', key, vars));
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

  // Which panel shows is the mode's: the order (packing), the handover batch,
  // the search answer or the day report.
  function setMode(m) {
    mode = m;
    shortFor = null;
    document.body.dataset.mode = m;
    show('order-panel', m === 'bench' && !!order);
    show('handover-panel', m === 'handover');
    show('returns-panel', m === 'returns' && !!ret);
    show('search-panel', m === 'search');
    show('report-panel', m === 'report');
  }

  async function enterHandover() {
    setMode('handover');
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
    setMode('bench');
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
    const res = await api('POST', '/api/handover/scan', { code, batch: batch.id, scan_id: scanId() });
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

  // ---- out of stock (缺货): F3 with an order open, then the missing item
  function startShort() {
    if (mode !== 'bench' || !order) { feedback('info', T.en.short_none, T.zh.short_none); return; }
    shortFor = order.id;
    document.body.dataset.mode = 'short';
    setText('hint', t('hint_short', { id: shortFor }));
    feedback('info', tFor('en', 'hint_short', { id: shortFor }), tFor('zh', 'hint_short', { id: shortFor }));
  }
  function cancelShort() {
    shortFor = null;
    document.body.dataset.mode = mode;
    setText('hint', t('hint_bench'));
  }
  // "SKU", "SKU*2", "SKU×2" or "SKU 2".
  function parseShort(code) {
    const m = /^(.*\S)\s*[*×]\s*(\d+)$/.exec(code) || /^(.*\S)\s+(\d+)$/.exec(code);
    return m ? { sku: m[1], qty: Number(m[2]) } : { sku: code, qty: null };
  }
  async function shortCode(code) {
    const { sku, qty } = parseShort(code);
    const body = { order_id: shortFor, sku };
    if (qty != null) body.qty = qty;
    const res = await api('POST', '/api/short', body);
    if (!res.ok) {
      // Stay in out-of-stock mode: scan the right item, or Esc.
      document.body.dataset.code = 'short_refused';
      feedback('stop', errorText(res), errorText(res));
      return;
    }
    const s = res.data;
    cancelShort();
    const vars = (l) => ({
      id: s.order_id, flag: s.exception_flag, memo: s.memo,
      voided: s.voided ? tFor(l, 'short_voided', { no: s.voided }) : '',
    });
    document.body.dataset.code = 'out_of_stock';
    feedback('short', tFor('en', 'short_done', vars('en')), tFor('zh', 'short_done', vars('zh')));
    await loadBench();
    refreshStrips();
  }

  // ---- returns intake (退货登记, F1): the returned parcel's waybill, then its items
  // The reasons an operator picks with 1–5; the memo on the shop is in Chinese.
  const REASONS = {
    zh: ['七天无理由', '质量问题', '发错货', '拒收', '拦截退回'],
    en: ['7-day no-reason return', 'quality problem', 'wrong item sent', 'refused by the buyer', 'intercepted, came back'],
  };
  // As the server compares codes (scancode::normalize): width-folded, no spaces, any case.
  function norm(c) { return String(c || '').normalize('NFKC').replace(/\s+/g, '').toUpperCase(); }
  function enterReturns() {
    ret = null;
    setMode('returns');
    renderReturns();
    feedback('info', '', '');
  }
  function renderReturns() {
    show('returns-panel', mode === 'returns' && !!ret);
    if (mode !== 'returns') return;
    setText('hint', ret ? t('hint_returns_items', { id: ret.parcel.order_id }) : t('hint_returns'));
    if (!ret) return;
    const p = ret.parcel;
    setText('ret-parcel', t('ret_parcel', { id: p.order_id, courier: p.courier, no: p.tracking_no }));
    const body = $('ret-items-body');
    clear(body);
    for (const it of p.items) {
      const n = ret.now[it.sku] || 0;
      const tr = el('tr', n > 0 ? 'done' : '');
      const name = el('td', 'title');
      name.appendChild(el('span', '', it.title));
      if (it.spec) name.appendChild(el('span', 'spec', it.spec));
      tr.appendChild(name);
      tr.appendChild(el('td', 'code', it.barcode || it.sku));
      tr.appendChild(el('td', 'num', it.shipped));
      tr.appendChild(el('td', 'num', it.returned));
      tr.appendChild(el('td', 'num scanned', n));
      body.appendChild(tr);
    }
    setText('ret-condition', t('ret_condition_' + ret.condition));
    $('ret-condition').className = ret.condition;
    setText('ret-reason', ret.reason === null ? '—' : REASONS[lang][ret.reason]);
    setText('ret-reasons', REASONS[lang].map((r, i) => (i + 1) + ' ' + r).join(' · '));
  }
  async function returnsCode(code) {
    if (!ret) {
      const res = await api('GET', '/api/returns/parcel?code=' + encodeURIComponent(code));
      if (!res.ok) { document.body.dataset.code = 'return_refused'; feedback('stop', errorText(res), errorText(res)); return; }
      ret = { parcel: res.data, now: {}, reason: null, condition: 'ok', id: scanId() };
      document.body.dataset.code = 'return_parcel';
      feedback('info', '', '');
      renderReturns();
      return;
    }
    if (/^[1-5]$/.test(code)) { ret.reason = Number(code) - 1; renderReturns(); return; }
    const c = norm(code);
    const it = ret.parcel.items.find((x) => norm(x.sku) === c || (x.barcode && norm(x.barcode) === c));
    if (!it) {
      document.body.dataset.code = 'return_unknown_item';
      feedback('stop', tFor('en', 'ret_item_unknown', { code }), tFor('zh', 'ret_item_unknown', { code }));
      return;
    }
    const room = it.shipped - it.returned;
    if ((ret.now[it.sku] || 0) >= room) {
      document.body.dataset.code = 'return_too_many';
      const vars = { sku: it.sku, n: Math.max(0, room) };
      feedback('stop', tFor('en', 'ret_too_many', vars), tFor('zh', 'ret_too_many', vars));
      return;
    }
    ret.now[it.sku] = (ret.now[it.sku] || 0) + 1;
    document.body.dataset.code = 'return_item';
    const vars = { sku: it.sku, title: it.title };
    feedback('ok', tFor('en', 'ret_item', vars), tFor('zh', 'ret_item', vars));
    renderReturns();
  }
  function toggleCondition() {
    if (!ret) return;
    ret.condition = ret.condition === 'ok' ? 'damaged' : 'ok';
    renderReturns();
  }
  async function confirmReturn() {
    if (!ret) { feedback('stop', T.en.hint_returns, T.zh.hint_returns); return; }
    const items = Object.keys(ret.now).filter((k) => ret.now[k] > 0).map((k) => ({ code: k, qty: ret.now[k] }));
    if (!items.length) { feedback('stop', T.en.ret_none, T.zh.ret_none); return; }
    const body = {
      code: ret.parcel.order_id, items, condition: ret.condition, receive_id: ret.id,
      reason: ret.reason === null ? '' : REASONS.zh[ret.reason],
    };
    const res = await api('POST', '/api/returns', body);
    if (!res.ok) { document.body.dataset.code = 'return_refused'; feedback('stop', errorText(res), errorText(res)); return; }
    const r = res.data;
    ret = null;
    const vars = {
      n: r.receipt, id: r.order_id, flag: r.returns_flag, memo: r.memo,
      what: r.lines.map((l) => l.sku + ' ×' + l.qty).join(', '),
    };
    document.body.dataset.code = 'returned';
    feedback('ok', tFor('en', 'ret_done', vars), tFor('zh', 'ret_done', vars));
    renderReturns();
  }

  // ---- dates: shown in the browser's local time
  function when(s) {
    if (!s) return '';
    const d = new Date(s);
    if (isNaN(d.getTime())) return String(s);
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  function field(dl, label, value, name) {
    if (value == null || value === '') return;
    const row = el('div');
    if (name) row.dataset.field = name;
    row.appendChild(el('dt', '', label));
    row.appendChild(el('dd', '', value));
    dl.appendChild(row);
  }
  function table(headers, rows, cls) {
    const tb = el('table', 'list' + (cls ? ' ' + cls : ''));
    const head = el('tr');
    for (const h of headers) head.appendChild(el('th', '', h));
    const thead = el('thead');
    thead.appendChild(head);
    tb.appendChild(thead);
    const body = el('tbody');
    for (const r of rows) {
      const tr = el('tr');
      for (const c of r) tr.appendChild(el('td', '', c == null ? '' : c));
      body.appendChild(tr);
    }
    tb.appendChild(body);
    return tb;
  }

  // ---- where is this order? (F7)
  function enterSearch() {
    setMode('search');
    setText('hint', t('hint_search'));
    renderSearch();
    feedback('info', '', '');
  }
  async function search(q) {
    const res = await api('GET', '/api/show?q=' + encodeURIComponent(q));
    if (!res.ok) { feedback('stop', errorText(res), errorText(res)); return; }
    stories = { q, list: res.data || [] };
    renderSearch();
    document.body.dataset.code = stories.list.length ? 'found' : 'not_found';
    const n = stories.list.length;
    if (n) feedback('info', tFor('en', 'search_found', { n }), tFor('zh', 'search_found', { n }));
    else feedback('stop', tFor('en', 'search_none', { q }), tFor('zh', 'search_none', { q }));
  }
  function renderSearch() {
    const box = $('search-results');
    clear(box);
    setText('search-query', stories ? t('search_for', { q: stories.q }) : '');
    if (!stories) return;
    for (const s of stories.list) {
      const card = el('article', 'story');
      card.dataset.order = s.id;
      const head = el('div', 'order-head');
      if (s.urgent) head.appendChild(el('span', 'urgent', t('urgent')));
      head.appendChild(el('span', 'label', t('order')));
      head.appendChild(el('span', 'story-id', s.id + ' v' + s.version));
      const st = el('span', 'state story-state', t('st_' + s.state));
      st.dataset.state = s.state;
      head.appendChild(st);
      card.appendChild(head);
      card.appendChild(el('p', 'story-summary', s.summary));
      const dl = el('dl', 'fields');
      field(dl, t('reason'), s.reason, 'reason');
      field(dl, t('buyer'), s.buyer_nick, 'buyer');
      field(dl, t('s_paid'), when(s.paid_at), 'paid');
      field(dl, t('memo'), s.memo, 'memo');
      field(dl, t('buyer_message'), s.buyer_message, 'message');
      card.appendChild(dl);
      if ((s.tracking_numbers || []).length) {
        card.appendChild(el('h3', '', t('s_tracking')));
        card.appendChild(table([t('r_courier'), t('tracking'), t('r_state'), t('r_reason')],
          s.tracking_numbers.map((n) => [n.courier, n.number, n.state === 'voided' ? t('s_void') : t('s_live'), n.void_reason || '']), 'story-tracking'));
      }
      if ((s.waves || []).length) {
        card.appendChild(el('h3', '', t('s_waves')));
        card.appendChild(table(['#', 'v', t('tracking'), t('s_at')],
          s.waves.map((w) => [w.wave_id, w.order_version, w.tracking_no, when(w.printed_at)])));
      }
      if ((s.packings || []).length) {
        card.appendChild(el('h3', '', t('s_packed')));
        card.appendChild(table([t('s_at'), t('bench'), t('s_who'), t('tracking')],
          s.packings.map((p) => [when(p.packed_at), p.bench, p.operator, p.tracking_no])));
      }
      if ((s.handover || []).length) {
        card.appendChild(el('h3', '', t('s_batch')));
        card.appendChild(table([t('s_batch'), t('r_courier'), t('r_state'), t('tracking'), t('s_who')],
          s.handover.map((h) => [h.batch_id, h.courier, h.batch_state, h.tracking_no, h.scanned_by + ' ' + when(h.scanned_at)])));
      }
      if ((s.write_backs || []).length) {
        card.appendChild(el('h3', '', t('s_writebacks')));
        card.appendChild(table([t('s_action'), t('r_state'), t('s_detail')],
          s.write_backs.map((w) => [w.kind, t('s_' + w.state), w.attempts + ' ' + t('s_attempts') + (w.last_error ? ' · ' + w.last_error : '')])));
      }
      card.appendChild(el('h3', '', t('s_timeline')));
      card.appendChild(table([t('s_at'), t('s_who'), t('s_action'), t('s_detail')],
        (s.timeline || []).map((e) => [when(e.at), e.operator, e.action, e.detail]), 'timeline'));
      box.appendChild(card);
    }
  }

  // ---- the day report (F10)
  async function enterReport() {
    setMode('report');
    setText('hint', t('hint_report'));
    renderReport();
    feedback('info', '', '');
    await loadReport('');
  }
  async function loadReport(date) {
    const res = await api('GET', '/api/report' + (date ? '?date=' + encodeURIComponent(date) : ''));
    if (!res.ok) { feedback('stop', errorText(res), errorText(res)); return; }
    report = res.data;
    document.body.dataset.code = 'report';
    renderReport();
  }
  function section(box, title, node) {
    box.appendChild(el('h3', '', title));
    box.appendChild(node);
  }
  function none() { return el('p', 'none', t('r_none')); }
  function renderReport() {
    const box = $('report-body');
    clear(box);
    setText('report-date', report ? report.date + ' (' + report.time_zone + ')' : '');
    if (!report) return;
    const r = report;
    const figures = [
      ['r_pulled', r.pulled], ['r_printed', r.printed], ['r_reprinted', r.reprinted], ['r_packed', r.packed],
      ['r_handed_over', r.handed_over], ['r_intercepted', r.intercepted.length], ['r_out_of_stock', r.out_of_stock.length],
      ['r_changed', r.changed_after_print.length], ['r_rejected', r.rejected], ['r_pending', r.write_backs_pending],
      ['r_oldest', r.oldest_pending_secs == null ? '—' : r.oldest_pending_secs], ['r_alerts', r.write_back_alerts],
    ];
    const fig = el('dl', 'figures');
    for (const [k, v] of figures) {
      const d = el('div');
      d.dataset.figure = k.slice(2);
      d.appendChild(el('dt', '', t(k)));
      d.appendChild(el('dd', '', v));
      fig.appendChild(d);
    }
    section(box, t('r_figures'), fig);
    section(box, t('r_couriers'), r.handed_over_by_courier.length
      ? table([t('r_courier'), t('r_parcels'), t('r_batches')], r.handed_over_by_courier.map((c) => [
        c.courier_name + ' ' + c.courier, c.parcels, c.batches.map((b) => b.batch_id + ' (' + b.parcels + ')').join(', ')]))
      : none());
    section(box, t('r_not_handed'), r.not_handed_over.length
      ? table([t('r_order'), t('tracking'), t('r_courier'), t('r_state'), t('r_reason')],
        r.not_handed_over.map((n) => [n.order_id, n.tracking_no || '', n.courier || '', t('st_' + n.state), n.reason]), 'not-handed')
      : none());
    if (r.recall_from_courier.length) {
      section(box, t('r_recall'), table([t('r_order'), t('s_batch'), t('r_reason')],
        r.recall_from_courier.map((x) => [x.order_id, x.batch_id, x.reason])));
    }
    const rates = (list) => list.length
      ? table([t('r_name'), t('r_parcels'), t('r_per_hour')], list.map((x) => [x.name, x.parcels, x.per_hour]))
      : none();
    section(box, t('r_bench'), rates(r.per_bench));
    section(box, t('r_operator'), rates(r.per_operator));
    const d = el('div', 'report-dispatch');
    dispatchLines(d, r.dispatch, 1000);
    section(box, t('r_dispatch'), d);
  }

  // ---- the strips: orders waiting to be printed (the schedule) and the
  // dispatch warnings (cut-off, ship promise), refreshed every minute.
  function dispatchLines(box, d, max, brief) {
    const lists = [
      [t('d_after_cutoff', { cutoff: d.cutoff, n: d.after_cutoff.length }), d.after_cutoff, 'after-cutoff'],
      [t('d_broken', { n: d.promise_broken.length }), d.promise_broken, 'broken'],
      [t('d_at_risk', { n: d.promise_at_risk.length }), d.promise_at_risk, 'at-risk'],
    ];
    let any = false;
    for (const [title, list, cls] of lists) {
      if (!list.length) continue;
      any = true;
      const p = el('p', 'dispatch ' + cls);
      p.appendChild(el('strong', '', title));
      const shown = list.slice(0, max).map((w) => t(brief ? 'd_item_brief' : 'd_item', { id: w.order_id, paid: w.paid_at, due: w.due_at }));
      p.appendChild(el('span', 'ids', ' ' + shown.join(' · ') + (list.length > max ? ' …' : '')));
      box.appendChild(p);
    }
    if (!any) box.appendChild(el('p', 'none', t('d_quiet')));
    return any;
  }
  function renderStrips() {
    const ds = $('dispatch-strip');
    clear(ds);
    const loud = !!dispatchSeen && dispatchLines(ds, dispatchSeen, 3, true);
    ds.hidden = !loud;
    const qs = $('queue-strip');
    clear(qs);
    const q = queueSeen;
    qs.hidden = !q;
    if (!q) return;
    qs.appendChild(el('strong', 'queued', t('q_queued', { n: q.queued })));
    const part = (text, cls) => qs.appendChild(el('span', cls || '', ' · ' + text));
    part(q.pull_every_minutes ? t('q_pull_every', { m: q.pull_every_minutes }) : t('q_pull_off'));
    if (q.inactive) part(t('q_inactive', { why: q.inactive }), 'failed');
    if (q.last_pull) {
      part(t('q_last', { at: when(q.last_pull.at), ok: t(q.last_pull.ok ? 'q_ok' : 'q_failed'), summary: q.last_pull.summary }),
        q.last_pull.ok ? 'last-pull' : 'last-pull failed');
    }
    part(q.auto_wave_every_minutes ? t('q_wave_every', { m: q.auto_wave_every_minutes }) : t('q_wave_off'));
    if (q.last_wave) {
      part(t('q_last', { at: when(q.last_wave.at), ok: t(q.last_wave.ok ? 'q_ok' : 'q_failed'), summary: q.last_wave.summary }),
        q.last_wave.ok ? 'last-wave' : 'last-wave failed');
    }
    if (q.running) part(t('q_running'));
  }
  async function refreshStrips() {
    if (!me) return;
    const [d, q] = await Promise.all([api('GET', '/api/dispatch'), api('GET', '/api/queue')]);
    if (d.ok) dispatchSeen = d.data;
    if (q.ok) queueSeen = q.data;
    renderStrips();
    document.body.dataset.strips = String(Number(document.body.dataset.strips || 0) + 1);
  }

  // ---- the bench scale ([bench.scale]): its live weight, twice a second
  let scaleTimer = null;
  function kg(g) { return g >= 1000 ? (g / 1000).toFixed(3) + ' kg' : g + ' g'; }
  async function pollScale() {
    if (!me || !me.scale) return;
    const res = await api('GET', '/api/scale');
    if (!res.ok || !me) { show('scale-strip', false); return; }
    const s = res.data;
    const box = $('scale-strip');
    show('scale-strip', true);
    box.classList.toggle('warn', s.grams == null || !s.stable);
    box.dataset.grams = s.grams == null ? '' : String(s.grams);
    box.dataset.stable = s.stable ? '1' : '0';
    if (s.grams == null) setText('scale-strip', t('scale_none', { p: s.problem || '' }));
    else setText('scale-strip', t(s.stable ? 'scale_stable' : 'scale_unstable', { w: kg(s.grams) }));
  }
  function startScale() {
    stopScale();
    if (me && me.scale) { pollScale(); scaleTimer = setInterval(pollScale, 500); }
  }
  function stopScale() {
    if (scaleTimer) clearInterval(scaleTimer);
    scaleTimer = null;
    show('scale-strip', false);
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
        else if (shortFor) await shortCode(job);
        else if (mode === 'handover') await handoverCode(job);
        else if (mode === 'returns') await returnsCode(job);
        else if (mode === 'search') await search(job);
        else if (mode === 'report') await loadReport(job);
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
    refreshStrips();
    startScale();
    $('scan').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const body = { name: $('login-name').value, pin: $('login-pin').value, bench: $('login-bench').value };
    $('login-pin').value = '';
    let res = await api('POST', '/api/login', body);
    if (res.status === 409 && window.confirm(errorText(res) + '\n\n' + t('take_over'))) {
      res = await api('POST', '/api/login', Object.assign({}, body, { take_over: true }));
    }
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
    stopScale();
    order = null;
    batch = null;
    stories = null;
    report = null;
    dispatchSeen = null;
    queueSeen = null;
    renderStrips();
    showLogin(t('signed_out'));
  }

  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    for (const e of document.querySelectorAll('[data-t]')) e.textContent = t(e.dataset.t);
    setText('lang-name', t('lang'));
    if (me) setText('who', t('who', { op: me.operator, bench: me.bench }));
    renderFeedback();
    renderOrder();
    renderSearch();
    renderReport();
    renderStrips();
    if (mode === 'handover') renderHandover();
    else if (mode === 'returns') renderReturns();
    else if (mode === 'search') setText('hint', t('hint_search'));
    else if (mode === 'report') setText('hint', t('hint_report'));
    else if (shortFor) setText('hint', t('hint_short', { id: shortFor }));
    else setText('hint', t('hint_bench'));
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
    if (k === 'F1') { ev.preventDefault(); queueAction(async () => (mode !== 'returns' ? enterReturns() : leaveHandover())); }
    else if (k === 'F2') { ev.preventDefault(); queueAction(reprint); }
    else if (k === 'F3') { ev.preventDefault(); queueAction(async () => (mode === 'returns' ? toggleCondition() : startShort())); }
    else if (k === 'F4') { ev.preventDefault(); queueAction(() => (mode !== 'handover' ? enterHandover() : leaveHandover())); }
    else if (k === 'F6') { ev.preventDefault(); queueAction(() => (mode === 'returns' ? confirmReturn() : closeBatch())); }
    else if (k === 'F7') { ev.preventDefault(); queueAction(async () => (mode !== 'search' ? enterSearch() : leaveHandover())); }
    else if (k === 'F8') { ev.preventDefault(); queueAction(logout); }
    else if (k === 'F10') { ev.preventDefault(); queueAction(() => (mode !== 'report' ? enterReport() : leaveHandover())); }
    else if (k === 'Escape') {
      ev.preventDefault();
      $('scan').value = '';
      queueAction(async () => {
        if (shortFor) cancelShort();
        else if (mode === 'returns' && ret) { ret = null; renderReturns(); }
        else if (mode === 'search' || mode === 'report' || mode === 'returns') leaveHandover();
        feedback('info', '', '');
      });
    }
  }

  // ---- the scanner's keystrokes
  // A USB scanner is a US keyboard typing into whatever input method is on.
  // A Chinese IME can swallow its letters into a Pinyin composition, turn them
  // full-width, or eat the Enter that ends the code. So the page also keeps
  // what the keys were (KeyboardEvent.code, which no IME changes) and, when
  // the field ends up holding something no scanner types, sends the keys.
  const SHIFTED_DIGITS = ')!@#$%^&*(';
  const PUNCT = {
    Minus: ['-', '_'], Equal: ['=', '+'], Period: ['.', '>'], Slash: ['/', '?'],
    Comma: [',', '<'], Semicolon: [';', ':'], Quote: ["'", '"'], BracketLeft: ['[', '{'],
    BracketRight: [']', '}'], Backslash: ['\\', '|'], Backquote: ['`', '~'],
    NumpadSubtract: ['-', '-'], NumpadAdd: ['+', '+'], NumpadDecimal: ['.', '.'],
    NumpadDivide: ['/', '/'], NumpadMultiply: ['*', '*'],
  };
  function keyChar(ev) {
    const c = ev.code || '';
    if (/^Key[A-Z]$/.test(c)) return ev.shiftKey ? c[3] : c[3].toLowerCase();
    if (/^Digit[0-9]$/.test(c)) return ev.shiftKey ? SHIFTED_DIGITS[+c[5]] : c[5];
    if (/^Numpad[0-9]$/.test(c)) return c[6];
    const p = PUNCT[c];
    return p ? p[ev.shiftKey ? 1 : 0] : null;
  }
  let keys = '';
  function onScanKey(ev) {
    if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
    // Enter ends a code, and so does Tab (a scanner set to send Tab); an IME
    // composing would take this Enter as "commit the letters" and never submit.
    if (ev.key === 'Enter' || ev.key === 'Tab' || ev.code === 'Enter' || ev.code === 'NumpadEnter') {
      ev.preventDefault();
      submitScan();
      return;
    }
    if (ev.key === 'Backspace') { keys = keys.slice(0, -1); return; }
    if (ev.key === 'Escape') { keys = ''; return; }
    const ch = keyChar(ev);
    if (ch !== null) keys += ch;
  }
  function submitScan() {
    let code = $('scan').value.trim();
    const typed = keys.trim();
    keys = '';
    // Searching types Chinese on purpose; elsewhere anything but printable
    // ASCII in the field is the input method's doing: the keys are the code.
    // An empty field with keys typed: the IME still holds them uncommitted.
    if (mode !== 'search' && typed && /^[\x21-\x7e]+$/.test(typed) && (!code || !/^[\x20-\x7e]*$/.test(code))) {
      code = typed;
    }
    $('scan').value = '';
    if (code) { queue.push(code); pump(); }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('login-form').addEventListener('submit', login);
    $('scan-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      submitScan();
    });
    $('scan').addEventListener('keydown', onScanKey);
    document.addEventListener('keydown', onKey);
    // The scanner types wherever focus is: keep it on the scan input.
    $('scan').addEventListener('blur', () => setTimeout(() => { if (!$('work').hidden) $('scan').focus(); }, 0));
    document.addEventListener('click', () => { if (!$('work').hidden) $('scan').focus(); });
    applyLang();
    const res = await api('GET', '/api/me');
    if (res.ok) { me = res.data; showWork(); await loadBench(); }
    else showLogin();
    // The strips are as of now: refreshed every minute.
    setInterval(refreshStrips, 60000);
    document.body.dataset.ready = '1';
  });
})();
