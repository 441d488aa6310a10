#!/usr/bin/env python3
"""An independent implementation of maskdraw-audit-v1 (lottery/SPEC.md §13), written from the
spec, not from the Rust code. It produced the known-answer files audit.txt of v1-small and
v1-contested (lottery/tests/known_answer.rs compares them with the Rust audit byte for byte):

    python3 lottery/tests/vectors/audit_reference.py lottery/tests/vectors/v1-small > audit.txt

Standard library only. Python floats are IEEE-754 binary64 and every operation below follows
the order SPEC.md §13 fixes; math.exp/log/erfc/lgamma are the platform's, which agree with
musl's to the printed precision.
"""
import math
import sys

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_ms(t):
    v = 0
    for ch in t:
        v = v * 32 + CROCKFORD.index(ch)
    return v >> 80


def lines(path):
    with open(path, "rb") as f:
        data = f.read().decode()
    return [l for l in data.split("\n")[:-1]]


def chi2_upper(x, df):
    if df == 0 or x <= 0:
        return 1.0
    h = x / 2
    ln_h = math.log(h)
    if df % 2 == 0:
        s, lt = 0.0, -h
        for j in range(df // 2):
            s += math.exp(lt)
            lt += ln_h - math.log(j + 1)
    else:
        s = math.erfc(math.sqrt(h))
        lt = -h + 0.5 * ln_h - math.lgamma(1.5)
        for j in range((df - 1) // 2):
            s += math.exp(lt)
            lt += ln_h - math.log(j + 1.5)
    return min(s, 1.0)


def fmt_p(p):
    m, e = ("%.2e" % p).split("e")
    return "%se%d" % (m, int(e))


def civil(days):
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def hour_label(h):
    y, m, d = civil(h // 24)
    return "%04d-%02d-%02dT%02dZ" % (y, m, d, h % 24)


def tests(strata, cat, ncat, winners_by_cat, trend):
    expected = [0.0] * ncat
    infw = [0.0] * ncat
    infl = [0.0] * ncat
    for members, w in strata:
        n = len(members)
        if w == 0 or n == 0:
            continue
        counts = {}
        for i in members:
            counts[cat(i)] = counts.get(cat(i), 0) + 1
        for c in sorted(counts):
            k = counts[c]
            if w == n:
                expected[c] += float(k)
            else:
                e = float(w * k) / float(n)
                expected[c] += e
                infw[c] += e
                infl[c] += float((n - w) * k) / float(n)
    bins, ew, el, start = [], 0.0, 0.0, 0
    for c in range(ncat):
        ew += infw[c]
        el += infl[c]
        if ew >= 5 and el >= 5:
            bins.append([start, c])
            start, ew, el = c + 1, 0.0, 0.0
    if start < ncat:
        if bins:
            bins[-1][1] = ncat - 1
        else:
            bins.append([0, ncat - 1])
    bin_of = {}
    for b, (f, l) in enumerate(bins):
        for c in range(f, l + 1):
            bin_of[c] = b
    diff = []
    for f, l in bins:
        e = 0.0
        for c in range(f, l + 1):
            e += expected[c]
        diff.append(float(sum(winners_by_cat[f : l + 1])) - e)
    nb = len(bins)
    k = max(nb - 1, 0)
    V = [[0.0] * k for _ in range(k)]
    tvar = 0.0
    for members, w in strata:
        n = len(members)
        if not (0 < w < n):
            continue
        a = float(w * (n - w)) / float(n - 1)
        counts = {}
        order = []
        for i in members:
            c = cat(i)
            if c not in counts:
                order.append(c)
                counts[c] = 0
            counts[c] += 1
        by_bin = {}
        border = []
        for c in sorted(order):
            b = bin_of[c]
            if b not in by_bin:
                border.append(b)
                by_bin[b] = 0
            by_bin[b] += counts[c]
        q = [(b, float(by_bin[b]) / float(n)) for b in border]
        for x, (bc, qc) in enumerate(q):
            if bc >= k:
                continue
            for bd, qd in q[x:]:
                if bd >= k:
                    continue
                V[bc][bd] += a * qc * ((1.0 if bc == bd else 0.0) - qd)
        if trend:
            s1 = sum(b * by_bin[b] for b in border)
            s2 = sum(b * b * by_bin[b] for b in border)
            q1 = float(s1) / float(n)
            q2 = float(s2) / float(n)
            tvar += a * (q2 - q1 * q1)
    for r in range(k):
        for c in range(r):
            V[r][c] = V[c][r]
    # LDL^T without pivoting, dropping dependent categories.
    L = [[0.0] * k for _ in range(k)]
    D = [0.0] * k
    kept = [False] * k
    for j in range(k):
        dj = V[j][j]
        for i in range(j):
            if kept[i]:
                dj -= L[j][i] * L[j][i] * D[i]
        if V[j][j] > 0 and dj > 1e-9 * V[j][j]:
            kept[j] = True
            D[j] = dj
            for r in range(j + 1, k):
                x = V[r][j]
                for i in range(j):
                    if kept[i]:
                        x -= L[r][i] * L[j][i] * D[i]
                L[r][j] = x / dj
    y = [0.0] * k
    Q, df = 0.0, 0
    for j in range(k):
        if not kept[j]:
            continue
        x = diff[j]
        for i in range(j):
            if kept[i]:
                x -= L[j][i] * y[i]
        y[j] = x
        Q += x * x / D[j]
        df += 1
    out = [(Q, df)]
    if trend:
        u = 0.0
        for b, d in enumerate(diff):
            u += float(b) * d
        if tvar > 0 and nb >= 2:
            out.append((u * u / tvar, 1))
        else:
            out.append((0.0, 0))
    return bins, expected, out


def main(d):
    stock = [l.split(",") for l in lines(d + "/stock.csv")]
    pool_idx = {(s[0], s[2]): p for p, s in enumerate(stock)}
    ents = [l.split(",") for l in lines(d + "/entrants.csv")]
    n = len(ents)
    tick = {e[0]: i for i, e in enumerate(ents)}
    pool_of = [pool_idx[(e[1], e[2])] for e in ents]
    flex = [e[3] == "1" for e in ents]
    groups = sorted(set((s[1], s[2]) for s in stock))
    gid = {g: i for i, g in enumerate(groups)}
    gop = [gid[(s[1], s[2])] for s in stock]
    won = [0] * n
    handed = [0] * len(stock)
    for r in lines(d + "/result.csv"):
        t, ph, pr, roll = r.split(",")
        i = tick[t]
        won[i] = int(roll)
        handed[pool_idx[(ph, pr)]] += 1
    pm = [[] for _ in stock]
    for i in range(n):
        pm[pool_of[i]].append(i)
    gm = [[] for _ in groups]
    g2 = [0] * len(groups)
    for p, mem in enumerate(pm):
        for i in mem:
            if flex[i] and won[i] != 1:
                gm[gop[p]].append(i)
                if won[i] == 2:
                    g2[gop[p]] += 1
    strata = []
    perm1 = []
    left = [0] * len(groups)
    devp = 0
    for p, mem in enumerate(pm):
        w = sum(1 for i in mem if won[i] == 1)
        strata.append((mem, w))
        packs = int(stock[p][3])
        perm1.append(min(len(mem), packs))
        left[gop[p]] += packs - perm1[p]
        if w != perm1[p] or handed[p] > packs:
            devp += 1
    perm2 = [min(left[g], len(gm[g])) for g in range(len(groups))]
    devg = sum(1 for g in range(len(groups)) if g2[g] != perm2[g])
    for g in range(len(groups)):
        strata.append((sorted(gm[g]), g2[g]))
    hours = []
    hour_of = []
    for e in ents:
        h = ulid_ms(e[0]) // 3600000
        if not hours or hours[-1] != h:
            hours.append(h)
        hour_of.append(len(hours) - 1)

    def cats(m, of):
        ent = [0] * m
        win = [0] * m
        for i in range(n):
            ent[of(i)] += 1
            if won[i]:
                win[of(i)] += 1
        return ent, win

    out = ["maskdraw-audit-v1", "entrants:%d" % n, "winners:%d" % sum(1 for x in won if x),
           "bound:1e-6", "allocation:%d,%d,%d,%d" % (len(stock), devp, len(groups), devg)]
    he, hw = cats(len(hours), lambda i: hour_of[i])
    hbins, hexp, htests = tests(strata, lambda i: hour_of[i], len(hours), hw, True)
    fe, fw = cats(2, lambda i: 1 if flex[i] else 0)
    fbins, fexp, ftests = tests(strata, lambda i: 1 if flex[i] else 0, 2, fw, False)

    def row(attr, label, ent, win, exp, f, l):
        x = 0.0
        for c in range(f, l + 1):
            x += exp[c]
        return "%s:%s,%d,%d,%.3f" % (attr, label, sum(ent[f:l + 1]), sum(win[f:l + 1]), x)

    for f, l in hbins:
        out.append(row("hour", hour_label(hours[f]) + "/" + hour_label(hours[l] + 1), he, hw, hexp, f, l))
    for f, l in fbins:
        out.append(row("flexible", str(f) if f == l else "%d-%d" % (f, l), fe, fw, fexp, f, l))
    for attr, key in (("district", 1), ("product", 2)):
        rows = {}
        for s in stock:
            rows.setdefault(s[key], [0, 0, 0])
        for p, (mem, w) in enumerate(strata[: len(stock)]):
            r = rows[stock[p][key]]
            r[0] += len(mem)
            r[1] += sum(1 for i in mem if won[i])
            r[2] += perm1[p]
        for g, (dist, prod) in enumerate(groups):
            rows[dist if key == 1 else prod][2] += perm2[g]
        for ident in sorted(rows):
            out.append("%s:%s,%d,%d,%d" % ((attr, ident) + tuple(rows[ident])))
    named = [("hour", htests[0]), ("hour-trend", htests[1]), ("flexible", ftests[0])]
    flagged = ["allocation"] if devp or devg else []
    for name, (q, df) in named:
        p = chi2_upper(q, df)
        out.append("test:%s:%.3f,%d,%s" % (name, q, df, fmt_p(p)))
        if p < 1e-6:
            flagged.append(name)
    out.append("verdict:pass" if not flagged else "verdict:flagged:" + ",".join(flagged))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
