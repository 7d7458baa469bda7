import json, copy
base = {
 "id": "X", "version": 1, "status": "paid", "refund": "none", "flag": "yellow",
 "created_at": "2026-11-11T01:42:57+08:00", "paid_at": "2026-11-11T02:17:51+08:00",
 "updated_at": "2026-11-11T02:19:20+08:00",
 "buyer": {"nick": "不吃香菜的仙人掌"},
 "recipient": {"name": "孔子娥", "phone": "17869074391", "province": "广东省", "city": "佛山市",
   "district": "顺德区", "address": "科技园路32号紫薇苑18栋1单元2502室", "postcode": None},
 "items": [{"sku": "HM-UMB-02", "title": "晴雨两用折叠伞", "spec": "藏青", "qty": 1,
   "unit_price": "45.00", "barcode": "6923456032019", "weight_g": 330}],
 "shipping": {"courier": None, "service": "standard"}, "memos": [], "options": {"hide_prices": False}}
out, expect = [], {}
def add(id, exp, **changes):
    o = copy.deepcopy(base); o["id"] = id
    for path, v in changes.items():
        cur = o; keys = path.split("__")
        for k in keys[:-1]:
            cur = cur[int(k)] if k.isdigit() else cur[k]
        last = keys[-1]
        if v is DEL: del cur[last]
        else: cur[int(last) if last.isdigit() else last] = v
    out.append(o); expect[id] = exp
class D: pass
DEL = D()
poem = "床前明月光疑是地上霜举头望山低头思故乡白日依山尽黄河入海流欲穷千里目春眠不觉晓处处闻啼鸟夜来风雨声花落知多少"
long_addr = ("文三路" + poem * 6)[:300]
assert len(long_addr) == 300
P = lambda *texts, **kw: dict(outcome="printed", texts=list(texts), **kw)
R = lambda field: dict(outcome="rejected", field=field)
# 300 characters do not fit a waybill's address box even at its smallest size:
# the start is printed, cut with "…" inside the box (never over the sender's
# block), and the label is flagged for a person.
add("N-LONG-ADDRESS", P(long_addr[:60], compact=True, warned="field address overflows its box"), recipient__address=long_addr)
add("N-EXTB", P("𠮷", "买家", "文三路", may_miss="𠮷𪚥"), recipient__name="𠮷野家", recipient__address="𠮷𪚥文三路", buyer__nick="𠮷𪚥买家")
# U+E01F0 is a default-ignorable (tags and variation selectors supplement): never drawn.
add("N-UNASSIGNED", P("花园路", "街", may_miss="\u0378\u05FF\U0010FFFD\uE000"), recipient__address="花园路\u0378\uE000\U0010FFFD\U000E01F0街", buyer__nick="昵称\u0378\u05FF\U000E01F0")
add("N-EMOJI-ZWJ", P("一家人", may_miss="👩👧👦"), buyer__nick="👩‍👩‍👧‍👦一家人🏳️‍🌈")
add("N-BIDI", P("abc", "鼓楼街"), recipient__address="鼓楼街\u202eabc\u202c\u2066x\u2069", buyer__nick="\u202e反向昵称")
add("N-CONTROL", P("中山路", "大街"), recipient__address="中山路\u0000\u0007\r大街", buyer__message="留言\u0000响铃\u0007回车\r换行\n结束")
add("N-ANSI", P("解放路", "终端"), recipient__address="解放路\u001b]0;pwned\u0007\u001b[2J大院", buyer__nick="终端\u001b[1;31m红字\u009b31m",
    items__0__title="伞\u001b[8m隐藏", memos=[{"text": "备注\u001b[2K\r假行", "author": "客服\u202e", "at": "2026-11-11T03:00:00+08:00"}])
add("N-INJECT", P("{{ 7*7 }}", "{% raw %}", "</script>", "{{ order_id }}"),
    buyer__message="{{ 7*7 }} {% raw %} </script><script>alert(1)</script>",
    items__0__title="{{ order_id }}{% if true %}X{% endif %}<b>粗</b>")
add("N-QTY-MAX", P("2147483647"), items__0__qty=2147483647)
add("N-BIG-TOTAL", P("214748364699978525163.53"), items__0__qty=2147483647, items__0__unit_price="99999999999.99")
add("N-LONG-SKU", P(), items__0__sku="SKU-" + "X" * 496, items__0__barcode=None)
add("N-HEAVY", P(), items__0__qty=3, items__0__weight_g=2**63 - 1)
add("N-ZERO-PRICE", P("0.00"), items__0__unit_price="0")
# Rejections: each names the order and the field.
add("N-QTY-2P31", R("items[0].qty must be < 2^31"), items__0__qty=2**31)
add("N-QTY-2P63", R("items[0].qty must be < 2^31"), items__0__qty=2**63)
add("N-QTY-NEG", R("items[0].qty must be ≥ 1"), items__0__qty=-1)
add("N-QTY-FLOAT", R("items[0].qty must be an integer"), items__0__qty=1.5)
add("N-QTY-STRING", R("items[0].qty must be an integer"), items__0__qty="1")
add("N-PRICE-EXP", R("items[0].unit_price must be"), items__0__unit_price="1e3")
add("N-PRICE-FULLWIDTH", R("items[0].unit_price must be"), items__0__unit_price="１２.５")
add("N-PRICE-NEG", R("items[0].unit_price must be"), items__0__unit_price="-5.00")
add("N-PRICE-NAN", R("items[0].unit_price must be"), items__0__unit_price="NaN")
add("N-PRICE-INF", R("items[0].unit_price must be"), items__0__unit_price="Infinity")
add("N-PRICE-NUMBER", R("items[0].unit_price must be a decimal string"), items__0__unit_price=12.5)
add("N-PRICE-3DEC", R("items[0].unit_price must be"), items__0__unit_price="1.005")
add("N-MISSING-PHONE", R("recipient.phone is required"), recipient__phone=DEL)
add("N-MISSING-ITEMS", R("items is required"), items=DEL)
add("N-WRONG-TYPES", R("version must be an integer"), version="2", recipient="文三路")
add("N-ITEMS-OBJECT", R("items must be an array"), items={"sku": "A"})
add("N-ZERO-ITEMS", R("items must hold at least one item"), items=[])
add("N-HUGE-VERSION", R("version must be an integer"), version=2**64)
add("N-EMPTY-NAME", R("recipient.name must not be empty"), recipient__name="   ")
add("N-BAD-TIME", R("paid_at"), paid_at="2026-13-45T99:00:00+08:00")
add("N-NULL-FLAG", R("flag must be one of"), flag=None)
with open("nasty.jsonl", "w") as f:
    for o in out:
        f.write(json.dumps(o, ensure_ascii=False) + "\n")
    # Payloads without a usable id: rejected by position.
    bad_id = copy.deepcopy(base); bad_id["id"] = "../../etc/passwd\u202e"
    f.write(json.dumps(bad_id, ensure_ascii=False) + "\n")
    no_id = copy.deepcopy(base); del no_id["id"]
    f.write(json.dumps(no_id, ensure_ascii=False) + "\n")
    f.write(json.dumps("just a string") + "\n")
    f.write("null\n")
    f.write(json.dumps([1, 2, 3]) + "\n")
expect["../../etc/passwd\u202e"] = R("id must be 1..64 characters")
with open("nasty.expect.json", "w") as f:
    json.dump(expect, f, ensure_ascii=False, indent=1)
print(len(out), "orders")
