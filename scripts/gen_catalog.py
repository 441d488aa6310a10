#!/usr/bin/env python3
"""Generate the synthetic demo catalog under static/config/.

The data is made up: real district and street names of Guangzhou, invented
pharmacies and house numbers. Output is deterministic (fixed seed), so
re-running the script only changes the files when this script changes.

    python3 scripts/gen_catalog.py            # writes static/config/*.json
    python3 scripts/gen_catalog.py --check    # validates the files in place
"""
import json
import random
import re
import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "static" / "config"
ID_RE = re.compile(r"^[A-Z0-9-]{1,16}$")

# (id, short code for pharmacy ids, Chinese name, English name, pharmacies, streets)
# Pharmacy counts follow the 2020 census population roughly (Baiyun 3.7M ...
# Conghua 0.7M). Streets are (Chinese, English) pairs of real roads in the district.
DISTRICTS = [
    ("YUEXIU", "YX", "越秀区", "Yuexiu", 13, [
        ("北京路", "Beijing Rd"), ("中山五路", "Zhongshan 5th Rd"), ("中山六路", "Zhongshan 6th Rd"),
        ("东风中路", "Dongfeng Rd Middle"), ("环市东路", "Huanshi Rd East"), ("解放北路", "Jiefang Rd North"),
        ("人民北路", "Renmin Rd North"), ("沿江中路", "Yanjiang Rd Middle"), ("越秀南路", "Yuexiu Rd South"),
        ("农林下路", "Nonglin Xia Rd"), ("署前路", "Shuqian Rd"), ("流花路", "Liuhua Rd"),
        ("文德路", "Wende Rd"), ("盘福路", "Panfu Rd"), ("淘金路", "Taojin Rd"), ("寺右新马路", "Siyou Xinma Rd"),
    ]),
    ("HAIZHU", "HZ", "海珠区", "Haizhu", 19, [
        ("江南大道中", "Jiangnan Ave Middle"), ("工业大道中", "Gongye Ave Middle"), ("新港中路", "Xingang Rd Middle"),
        ("新港西路", "Xingang Rd West"), ("昌岗中路", "Changgang Rd Middle"), ("宝岗大道", "Baogang Ave"),
        ("南华西路", "Nanhua Rd West"), ("前进路", "Qianjin Rd"), ("赤岗路", "Chigang Rd"),
        ("琶洲大道", "Pazhou Ave"), ("革新路", "Gexin Rd"), ("滨江东路", "Binjiang Rd East"),
        ("晓港中路", "Xiaogang Rd Middle"), ("江燕路", "Jiangyan Rd"), ("南洲路", "Nanzhou Rd"),
        ("叠景路", "Diejing Rd"), ("石溪路", "Shixi Rd"), ("泰宁路", "Taining Rd"),
    ]),
    ("LIWAN", "LW", "荔湾区", "Liwan", 12, [
        ("上下九路", "Shangxiajiu Rd"), ("中山七路", "Zhongshan 7th Rd"), ("中山八路", "Zhongshan 8th Rd"),
        ("康王南路", "Kangwang Rd South"), ("龙津西路", "Longjin Rd West"), ("芳村大道中", "Fangcun Ave Middle"),
        ("花地大道北", "Huadi Ave North"), ("东漖北路", "Dongjiao Rd North"), ("黄沙大道", "Huangsha Ave"),
        ("多宝路", "Duobao Rd"), ("逢源路", "Fengyuan Rd"), ("西湾路", "Xiwan Rd"), ("鹤洞路", "Hedong Rd"),
    ]),
    ("TIANHE", "TH", "天河区", "Tianhe", 24, [
        ("天河路", "Tianhe Rd"), ("体育西路", "Tiyu Rd West"), ("天河北路", "Tianhe Rd North"),
        ("中山大道西", "Zhongshan Ave West"), ("黄埔大道西", "Huangpu Ave West"), ("林和西路", "Linhe Rd West"),
        ("石牌东路", "Shipai Rd East"), ("龙口西路", "Longkou Rd West"), ("花城大道", "Huacheng Ave"),
        ("华夏路", "Huaxia Rd"), ("五山路", "Wushan Rd"), ("天河东路", "Tianhe Rd East"),
        ("石牌西路", "Shipai Rd West"), ("车陂路", "Chebei Rd"), ("员村二横路", "Yuancun 2nd Cross Rd"),
        ("天府路", "Tianfu Rd"), ("广园东路", "Guangyuan Rd East"), ("华景路", "Huajing Rd"),
        ("兴盛路", "Xingsheng Rd"), ("猎德大道", "Liede Ave"), ("迎龙路", "Yinglong Rd"), ("棠东东路", "Tangdong Rd East"),
    ]),
    ("BAIYUN", "BY", "白云区", "Baiyun", 30, [
        ("机场路", "Jichang Rd"), ("广州大道北", "Guangzhou Ave North"), ("同和路", "Tonghe Rd"),
        ("京溪路", "Jingxi Rd"), ("白云大道北", "Baiyun Ave North"), ("增槎路", "Zengcha Rd"),
        ("黄石东路", "Huangshi Rd East"), ("三元里大道", "Sanyuanli Ave"), ("新市西街", "Xinshi West St"),
        ("远景路", "Yuanjing Rd"), ("石井大道", "Shijing Ave"), ("云城东路", "Yuncheng Rd East"),
        ("石槎路", "Shicha Rd"), ("沙太路", "Shatai Rd"), ("鹤龙一路", "Helong 1st Rd"),
        ("大源中路", "Dayuan Rd Middle"), ("沙凤三路", "Shafeng 3rd Rd"), ("西槎路", "Xicha Rd"),
        ("广园中路", "Guangyuan Rd Middle"), ("黄园路", "Huangyuan Rd"), ("北太路", "Beitai Rd"),
        ("钟落潭大道", "Zhongluotan Ave"), ("江高大道", "Jianggao Ave"), ("白云大道南", "Baiyun Ave South"),
    ]),
    ("HUANGPU", "HP", "黄埔区", "Huangpu", 13, [
        ("黄埔东路", "Huangpu Rd East"), ("开创大道", "Kaichuang Ave"), ("科学大道", "Kexue Ave"),
        ("香雪大道", "Xiangxue Ave"), ("大沙东路", "Dasha Rd East"), ("丰乐北路", "Fengle Rd North"),
        ("茅岗路", "Maogang Rd"), ("石化路", "Shihua Rd"), ("开发大道", "Kaifa Ave"),
        ("科丰路", "Kefeng Rd"), ("香山路", "Xiangshan Rd"), ("护林路", "Hulin Rd"), ("九龙大道", "Jiulong Ave"),
    ]),
    ("PANYU", "PY", "番禺区", "Panyu", 25, [
        ("清河东路", "Qinghe Rd East"), ("桥南路", "Qiaonan Rd"), ("东环路", "Donghuan Rd"),
        ("禺山大道", "Yushan Ave"), ("兴业大道", "Xingye Ave"), ("兴南大道", "Xingnan Ave"),
        ("汉溪大道东", "Hanxi Ave East"), ("市广路", "Shiguang Rd"), ("番禺大道北", "Panyu Ave North"),
        ("迎宾路", "Yingbin Rd"), ("光明北路", "Guangming Rd North"), ("繁华路", "Fanhua Rd"),
        ("易发街", "Yifa St"), ("西丽南路", "Xili Rd South"), ("德兴路", "Dexing Rd"),
        ("富华中路", "Fuhua Rd Middle"), ("平康路", "Pingkang Rd"), ("大北路", "Dabei Rd"),
        ("桥东路", "Qiaodong Rd"), ("亚运大道", "Yayun Ave"), ("外环西路", "Waihuan Rd West"),
    ]),
    ("HUADU", "HD", "花都区", "Huadu", 14, [
        ("新华路", "Xinhua Rd"), ("迎宾大道", "Yingbin Ave"), ("公益路", "Gongyi Rd"),
        ("云山大道", "Yunshan Ave"), ("凤凰北路", "Fenghuang Rd North"), ("龙珠路", "Longzhu Rd"),
        ("宝华路", "Baohua Rd"), ("秀全大道", "Xiuquan Ave"), ("茶园路", "Chayuan Rd"),
        ("建设北路", "Jianshe Rd North"), ("商业大道", "Shangye Ave"), ("天贵路", "Tiangui Rd"),
        ("曙光路", "Shuguang Rd"), ("三东大道", "Sandong Ave"),
    ]),
    ("NANSHA", "NS", "南沙区", "Nansha", 8, [
        ("进港大道", "Jingang Ave"), ("环市大道中", "Huanshi Ave Middle"), ("金隆路", "Jinlong Rd"),
        ("蕉门路", "Jiaomen Rd"), ("港前大道", "Gangqian Ave"), ("丰泽东路", "Fengze Rd East"),
        ("海滨路", "Haibin Rd"), ("双山大道", "Shuangshan Ave"), ("凤凰大道", "Fenghuang Ave"),
    ]),
    ("CONGHUA", "CH", "从化区", "Conghua", 7, [
        ("河滨北路", "Hebin Rd North"), ("河滨南路", "Hebin Rd South"), ("青云路", "Qingyun Rd"),
        ("府前路", "Fuqian Rd"), ("新城东路", "Xincheng Rd East"), ("广从南路", "Guangcong Rd South"),
        ("旺城大道", "Wangcheng Ave"), ("江埔路", "Jiangpu Rd"),
    ]),
    ("ZENGCHENG", "ZC", "增城区", "Zengcheng", 13, [
        ("荔城大道", "Licheng Ave"), ("府佑路", "Fuyou Rd"), ("挂绿路", "Gualv Rd"),
        ("增城大道", "Zengcheng Ave"), ("荔景大道", "Lijing Ave"), ("新塘大道", "Xintang Ave"),
        ("港口大道", "Gangkou Ave"), ("永宁大道", "Yongning Ave"), ("广深大道", "Guangshen Ave"),
        ("夏街大道", "Xiajie Ave"), ("荔乡路", "Lixiang Rd"), ("东坑三横东路", "Dongkeng 3rd Cross Rd East"),
    ]),
]

# Invented chain names (not real chains), Chinese and English.
CHAINS = [
    ("仁心大药房", "Renxin Pharmacy"), ("康健药房", "Kangjian Pharmacy"),
    ("百草堂大药房", "Baicaotang Pharmacy"), ("惠民大药房", "Huimin Pharmacy"),
    ("同心堂药店", "Tongxintang Drugstore"), ("安康大药房", "Ankang Pharmacy"),
    ("济生堂药房", "Jishengtang Pharmacy"), ("益民大药房", "Yimin Pharmacy"),
]

PRODUCTS = [
    {"id": "PLAIN", "name": "普通防护口罩", "name_en": "Ordinary protective mask", "masks_per_pack": 5},
    {"id": "KN95", "name": "普通KN95防护口罩", "name_en": "Ordinary KN95 protective mask", "masks_per_pack": 5},
    {"id": "MED-CARE", "name": "医用护理口罩", "name_en": "Medical care mask", "masks_per_pack": 5},
    {"id": "MED-SURG", "name": "医用外科口罩", "name_en": "Medical surgical mask", "masks_per_pack": 5},
]

GATE = {
    "version": 1,
    "admit_fraction": 0.2,
    "retry_after_seconds": 5,
    "note": "Client-side smoothing only: after the server answers 429/503, the page submits "
            "a tap with probability admit_fraction and otherwise asks the user to wait "
            "retry_after_seconds (or the server's Retry-After, if longer). The server enforces "
            "its own limits; scripts skip this page.",
}


def branch(street):
    # "北京路" -> "北京路店"; keeps names short like real shop signs.
    return street + "店"


def build():
    rng = random.Random(2020)
    districts, pharmacies = [], []
    for did, code, name, name_en, count, streets in DISTRICTS:
        districts.append({"id": did, "name": name, "name_en": name_en})
        seen = set()
        for n in range(1, count + 1):
            while True:
                street, street_en = rng.choice(streets)
                chain, chain_en = rng.choice(CHAINS)
                if (street, chain) not in seen:
                    seen.add((street, chain))
                    break
            number = rng.randint(1, 480)
            pharmacies.append({
                "id": f"GZ-{code}-{n:04d}",
                "name": f"{chain}（{branch(street)}）",
                "name_en": f"{chain_en} ({street_en} branch)",
                "district": did,
                "address": f"广州市{name}{street}{number}号首层",
            })
    return districts, pharmacies


def write(path, value):
    # Arrays: one object per line, so a changed pharmacy is a one-line diff.
    if isinstance(value, list):
        rows = [json.dumps(v, ensure_ascii=False, separators=(", ", ": ")) for v in value]
        text = "[\n" + ",\n".join(" " + r for r in rows) + "\n]\n"
    else:
        text = json.dumps(value, ensure_ascii=False, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")


def check():
    """Validate the files on disk; return a list of problems."""
    problems = []
    load = lambda name: json.loads((CONFIG / name).read_text(encoding="utf-8"))
    districts, pharmacies, products, gate = (
        load("districts.json"), load("pharmacies.json"), load("products.json"), load("gate.json"))
    for kind, rows, keys in (
        ("district", districts, {"id", "name", "name_en"}),
        ("pharmacy", pharmacies, {"id", "name", "name_en", "district", "address"}),
        ("product", products, {"id", "name", "name_en", "masks_per_pack"}),
    ):
        ids = [r.get("id") for r in rows]
        if len(set(ids)) != len(ids):
            problems.append(f"duplicate {kind} ids")
        for r in rows:
            if set(r) != keys:
                problems.append(f"{kind} {r.get('id')}: keys {sorted(r)} != {sorted(keys)}")
            if not isinstance(r.get("id"), str) or not ID_RE.match(r["id"]):
                problems.append(f"{kind} id {r.get('id')!r} does not match [A-Z0-9-]{{1,16}}")
    district_ids = {d["id"] for d in districts}
    if len(district_ids) != 11:
        problems.append(f"{len(district_ids)} districts, want 11")
    for p in pharmacies:
        if not ID_RE.match(p["district"]) or p["district"] not in district_ids:
            problems.append(f"pharmacy {p['id']}: unknown district {p['district']!r}")
    if len(pharmacies) < 150:
        problems.append(f"only {len(pharmacies)} pharmacies")
    if {p["district"] for p in pharmacies} != district_ids:
        problems.append("some district has no pharmacy")
    if len({p["name"] for p in pharmacies}) != len(pharmacies):
        problems.append("duplicate pharmacy names")
    if [p["id"] for p in products] != ["PLAIN", "KN95", "MED-CARE", "MED-SURG"]:
        problems.append("product ids differ from PLAIN, KN95, MED-CARE, MED-SURG")
    if any(not isinstance(p["masks_per_pack"], int) or p["masks_per_pack"] < 1 for p in products):
        problems.append("masks_per_pack must be a positive integer")
    if not (gate.get("version") == 1 and 0 < gate.get("admit_fraction", 0) <= 1
            and isinstance(gate.get("retry_after_seconds"), int) and gate["retry_after_seconds"] > 0):
        problems.append(f"gate.json invalid: {gate}")
    return problems


def main():
    if "--check" not in sys.argv[1:]:
        districts, pharmacies = build()
        write(CONFIG / "districts.json", districts)
        write(CONFIG / "pharmacies.json", pharmacies)
        write(CONFIG / "products.json", PRODUCTS)
        write(CONFIG / "gate.json", GATE)
    problems = check()
    for p in problems:
        print("catalog:", p, file=sys.stderr)
    if problems:
        sys.exit(1)
    pharmacies = json.loads((CONFIG / "pharmacies.json").read_text(encoding="utf-8"))
    per = {}
    for p in pharmacies:
        per[p["district"]] = per.get(p["district"], 0) + 1
    print(f"catalog ok: {len(pharmacies)} pharmacies", per)


if __name__ == "__main__":
    main()
