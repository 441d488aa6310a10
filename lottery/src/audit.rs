//! The fairness audit, `audit.txt` (`maskdraw-audit-v1`, SPEC.md §13): winners against
//! entrants by hour of acceptance, district, product and flexible, from `entrants.csv`,
//! `stock.csv` and `result.csv` alone, so that it judges any result, even one a faulty program
//! produced (the US Diversity Visa lottery of 2011 was voided because more than 90% of its
//! winners came from the first two days of its window).
//!
//! Stock is fixed per pool, so "winners proportional to entrants" is the wrong null hypothesis.
//! The fair draw's is: within each pool (roll one) and each spill group's candidates (roll
//! two), winners are a uniformly random subset of the stratum's entrants, whatever their hour
//! or flexible flag. Given each stratum's winner count that is a multivariate hypergeometric
//! law, so the audit uses the stratified (generalized Cochran–Mantel–Haenszel) statistics built
//! from it. District and product are constant within every stratum, so no randomness is left
//! to test there: what a fair draw fixes exactly is the number of winners each pool and group
//! gets from the stock, and the audit checks that allocation exactly.
//!
//! Every floating-point step is in a fixed order (SPEC.md §13), and the transcendental
//! functions are the `libm` crate's (a port of musl's), so the bytes are the same on every
//! machine.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use crate::draw::{DrawOutcome, Roll};
use crate::limits::{entrants_max, read_at_most, RESULT_LINE_MAX, TABLE_MAX};
use crate::scan::{scan_entrants_file_with, ScanDigest};
use crate::snapshot::{parse_stock, Entrant, Ident, PoolIndex, StockLine, TicketId};

/// The file name.
pub const AUDIT_FILE: &str = "audit.txt";

/// The fixed bound: a test whose p-value is below it flags the draw (SPEC.md §13).
pub const P_BOUND: f64 = 1e-6;

/// The bound as printed on the `bound:` line.
const P_BOUND_TEXT: &str = "1e-6";

/// A merged category must expect at least this many winners and losers (Cochran's rule).
const MIN_EXPECTED: f64 = 5.0;

/// A pivot of the covariance factorization at or below this fraction of its diagonal entry is
/// a linearly dependent category and is dropped (with one degree of freedom).
const PIVOT_TOLERANCE: f64 = 1e-9;

/// Milliseconds per hour.
const HOUR_MS: u64 = 3_600_000;

/// Why an audit could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file is missing or unreadable.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// `stock.csv` or `entrants.csv` breaks the format.
    #[error("{0}")]
    Snapshot(String),
    /// `result.csv` is malformed or names a winner the draw's rules cannot produce.
    #[error("result.csv line {line}: {reason}")]
    Result {
        /// 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// One winner as the audit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditWinner {
    /// The entrant's 0-based index in `entrants.csv`.
    pub index: u32,
    /// The roll won in.
    pub roll: Roll,
    /// The stock line index of the pool where the pack is collected.
    pub collected: u32,
}

/// One statistical test of `audit.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// `hour`, `hour-trend` or `flexible`.
    pub name: &'static str,
    /// The statistic (χ² distributed with `df` degrees of freedom under a fair draw).
    pub statistic: f64,
    /// Degrees of freedom (0: not enough data for the test; its p-value is 1).
    pub df: u32,
    /// Upper tail probability of the statistic.
    pub p_value: f64,
}

/// A computed audit: the bytes of `audit.txt` and what they say.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    /// The exact bytes of `audit.txt`.
    pub text: Vec<u8>,
    /// Pools whose roll-one winners or handed-out packs differ from what the stock permits.
    pub deviating_pools: u64,
    /// Spill groups whose roll-two winners differ from what the stock permits.
    pub deviating_groups: u64,
    /// The three tests.
    pub tests: Vec<TestResult>,
    /// What flagged the draw, in the order of the `verdict:` line (empty: it passed).
    pub flagged: Vec<&'static str>,
}

impl Audit {
    /// Whether any deviation is beyond the bound.
    #[must_use]
    pub fn is_flagged(&self) -> bool {
        !self.flagged.is_empty()
    }
}

/// Audits a directory from `entrants.csv`, `stock.csv` and `result.csv` alone.
///
/// # Errors
/// [`AuditError`] when a file is unreadable or malformed.
pub fn audit_dir(dir: &Path) -> Result<Audit, AuditError> {
    let stock_bytes =
        read_at_most(&dir.join("stock.csv"), TABLE_MAX).map_err(|source| AuditError::Io {
            file: "stock.csv",
            source,
        })?;
    let stock =
        parse_stock(&stock_bytes).map_err(|e| AuditError::Snapshot(format!("stock.csv {e}")))?;
    let pools = PoolIndex::new(&stock);
    let scan = scan_entrants_file_with(
        &dir.join("entrants.csv"),
        Some(&pools),
        ScanDigest::FileSha256,
        &|_| {},
    )
    .map_err(|source| AuditError::Io {
        file: "entrants.csv",
        source,
    })?;
    if let Some(e) = &scan.error {
        return Err(AuditError::Snapshot(format!("entrants.csv {e}")));
    }
    let result = read_at_most(
        &dir.join("result.csv"),
        entrants_max(scan.lines, RESULT_LINE_MAX),
    )
    .map_err(|source| AuditError::Io {
        file: "result.csv",
        source,
    })?;
    audit_files(&scan.entries, &scan.tickets, &stock, &pools, &result)
}

/// Audits parsed entrants (`pool << 1 | flexible` and ticket values, as
/// [`crate::scan::EntrantScan`] has them) against the bytes of `result.csv`.
///
/// # Errors
/// [`AuditError::Result`] for a malformed line or a winner the draw's rules cannot produce.
pub fn audit_files(
    entries: &[u32],
    tickets: &[u128],
    stock: &[StockLine],
    pools: &PoolIndex,
    result_csv: &[u8],
) -> Result<Audit, AuditError> {
    let winners = parse_result(tickets, pools, result_csv)?;
    audit(entries, tickets, stock, &winners)
}

/// Audits a draw just made over in-memory entrants.
///
/// # Errors
/// As [`audit`] (only for inconsistent input).
pub fn audit_outcome(
    entrants: &[Entrant],
    stock: &[StockLine],
    outcome: &DrawOutcome,
) -> Result<Audit, AuditError> {
    let pools = PoolIndex::new(stock);
    let mut entries = Vec::with_capacity(entrants.len());
    let mut tickets = Vec::with_capacity(entrants.len());
    for (i, e) in entrants.iter().enumerate() {
        let pool = pools.get(&e.pharmacy_id, &e.product_id).ok_or_else(|| {
            AuditError::Snapshot(format!("entrant {i} names a pool the stock does not list"))
        })?;
        entries.push(crate::draw::pack_entry(pool, e.flexible));
        tickets.push(e.ticket_id.to_u128());
    }
    audit_scanned_outcome(&entries, &tickets, stock, &pools, outcome)
}

/// Audits a draw just made over a scan's entries and tickets.
///
/// # Errors
/// As [`audit`].
pub fn audit_scanned_outcome(
    entries: &[u32],
    tickets: &[u128],
    stock: &[StockLine],
    pools: &PoolIndex,
    outcome: &DrawOutcome,
) -> Result<Audit, AuditError> {
    let mut winners = Vec::with_capacity(outcome.winners.len());
    for (k, w) in outcome.winners.iter().enumerate() {
        let collected =
            pools
                .get(&w.pharmacy_id, &w.product_id)
                .ok_or_else(|| AuditError::Result {
                    line: k as u64 + 1,
                    reason: "the pool is not in stock.csv".into(),
                })?;
        winners.push(AuditWinner {
            index: u32::try_from(w.entrant_index).map_err(|_| AuditError::Result {
                line: k as u64 + 1,
                reason: "entrant index out of range".into(),
            })?,
            roll: w.roll,
            collected,
        });
    }
    audit(entries, tickets, stock, &winners)
}

/// Parses `result.csv` against the entrants' tickets (ascending) and the stock's pools.
fn parse_result(
    tickets: &[u128],
    pools: &PoolIndex,
    bytes: &[u8],
) -> Result<Vec<AuditWinner>, AuditError> {
    let mut out = Vec::new();
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        return Err(AuditError::Result {
            line: bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1,
            reason: "missing final LF".into(),
        });
    }
    let mut last: Option<u128> = None;
    for (k, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let lineno = k as u64 + 1;
        let err = |reason: &str| AuditError::Result {
            line: lineno,
            reason: reason.to_string(),
        };
        let body = &line[..line.len() - 1];
        let mut fields = body.split(|&b| b == b',');
        let (Some(t), Some(ph), Some(pr), Some(roll), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(err("want ticket_id,pharmacy_id,product_id,roll"));
        };
        let (_, value) = TicketId::parse_with_value(t).map_err(&err)?;
        if last.is_some_and(|l| l >= value) {
            return Err(err("ticket_id is not after the previous line's"));
        }
        last = Some(value);
        let ph = Ident::parse(ph).map_err(&err)?;
        let pr = Ident::parse(pr).map_err(&err)?;
        let roll = match roll {
            b"1" => Roll::One,
            b"2" => Roll::Two,
            _ => return Err(err("roll is not 1 or 2")),
        };
        let index = tickets
            .binary_search(&value)
            .map_err(|_| err("the ticket is not in entrants.csv"))?;
        let collected = pools
            .get(&ph, &pr)
            .ok_or_else(|| err("the pool is not in stock.csv"))?;
        out.push(AuditWinner {
            index: index as u32,
            roll,
            collected,
        });
    }
    Ok(out)
}

/// One stratum: its members (ascending entrant indices) and how many of them won in it.
struct Stratum {
    members: Vec<u32>,
    winners: u64,
}

impl Stratum {
    fn n(&self) -> u64 {
        self.members.len() as u64
    }
    fn informative(&self) -> bool {
        self.winners > 0 && self.winners < self.n()
    }
}

/// Per attribute category: counts, pass-one sums and the merged bin it falls in.
struct Categories {
    entrants: Vec<u64>,
    winners: Vec<u64>,
    /// Expected winners over all strata.
    expected: Vec<f64>,
    /// Expected winners and losers over informative strata.
    inf_winners: Vec<f64>,
    inf_losers: Vec<f64>,
}

/// A merged bin: categories `first..=last`.
#[derive(Debug, Clone, Copy)]
struct Bin {
    first: usize,
    last: usize,
}

/// Counts of a stratum's members per category, ascending by category; `cat` must not
/// decrease along the members (hours do not, entrants being in ticket order) or have at most
/// two values (flexible).
fn stratum_counts(members: &[u32], cat: &(impl Fn(u32) -> usize + Sync)) -> Vec<(usize, u64)> {
    let mut out: Vec<(usize, u64)> = Vec::new();
    for &i in members {
        let c = cat(i);
        match out.iter_mut().rev().find(|(x, _)| *x == c) {
            Some(slot) => slot.1 += 1,
            None => out.push((c, 1)),
        }
    }
    out.sort_unstable();
    out
}

/// `a·b / c` for integers, each product exact, converted once (SPEC.md §13: `ratio`).
fn ratio(a: u64, b: u64, c: u64) -> f64 {
    (u128::from(a) * u128::from(b)) as f64 / c as f64
}

/// The general association test and, with `trend`, the 1-degree-of-freedom trend test with
/// bin indices as scores, over merged bins.
struct Tested {
    bins: Vec<Bin>,
    general: TestResult,
    trend: Option<TestResult>,
}

fn stratified_tests(
    name: &'static str,
    trend_name: Option<&'static str>,
    strata: &[Stratum],
    cats: &mut Categories,
    cat: impl Fn(u32) -> usize + Sync,
) -> Tested {
    let m = cats.entrants.len();
    // Each stratum's counts, on every core; every sum below stays in stratum order.
    let all_counts: Vec<Vec<(usize, u64)>> = strata
        .par_iter()
        .map(|s| {
            if s.winners == 0 {
                Vec::new()
            } else {
                stratum_counts(&s.members, &cat)
            }
        })
        .collect();
    // Pass one: expected winners per category, and the informative sums the merging uses.
    for (s, counts) in strata.iter().zip(&all_counts) {
        let (n, w) = (s.n(), s.winners);
        if w == 0 || n == 0 {
            continue;
        }
        for &(c, k) in counts {
            if w == n {
                cats.expected[c] += k as f64;
            } else {
                let e = ratio(w, k, n);
                cats.expected[c] += e;
                cats.inf_winners[c] += e;
                cats.inf_losers[c] += ratio(n - w, k, n);
            }
        }
    }
    // Merge adjacent categories until each bin expects at least MIN_EXPECTED winners and
    // losers in informative strata; a short last bin joins the one before it.
    let mut bins: Vec<Bin> = Vec::new();
    let (mut ew, mut el) = (0.0f64, 0.0f64);
    let mut start = 0usize;
    for c in 0..m {
        ew += cats.inf_winners[c];
        el += cats.inf_losers[c];
        if ew >= MIN_EXPECTED && el >= MIN_EXPECTED {
            bins.push(Bin {
                first: start,
                last: c,
            });
            start = c + 1;
            ew = 0.0;
            el = 0.0;
        }
    }
    if start < m {
        match bins.last_mut() {
            Some(b) => b.last = m - 1,
            None => bins.push(Bin {
                first: 0,
                last: m - 1,
            }),
        }
    }
    let nb = bins.len();
    let mut bin_of = vec![0usize; m];
    for (b, bin) in bins.iter().enumerate() {
        for slot in &mut bin_of[bin.first..=bin.last] {
            *slot = b;
        }
    }
    // d = O − E per bin, E summed over the bin's categories in order.
    let diff: Vec<f64> = bins
        .iter()
        .map(|b| {
            let o: u64 = cats.winners[b.first..=b.last].iter().sum();
            let e = cats.expected[b.first..=b.last]
                .iter()
                .fold(0.0f64, |acc, &x| acc + x);
            o as f64 - e
        })
        .collect();
    // Pass two: the covariance of the first nb − 1 bins and the trend variance.
    let k = nb.saturating_sub(1);
    let mut v = vec![0.0f64; k * k];
    let mut trend_var = 0.0f64;
    let mut bin_scratch = vec![0u64; nb];
    for (s, counts) in strata.iter().zip(&all_counts) {
        if !s.informative() {
            continue;
        }
        let (n, w) = (s.n(), s.winners);
        let a = (u128::from(w) * u128::from(n - w)) as f64 / (n - 1) as f64;
        let mut by_bin: Vec<(usize, u64)> = Vec::new();
        for &(c, cnt) in counts {
            let b = bin_of[c];
            if bin_scratch[b] == 0 {
                by_bin.push((b, 0));
            }
            bin_scratch[b] += cnt;
        }
        for e in &mut by_bin {
            e.1 = bin_scratch[e.0];
            bin_scratch[e.0] = 0;
        }
        let nf = n as f64;
        let q: Vec<(usize, f64)> = by_bin
            .iter()
            .map(|&(b, cnt)| (b, cnt as f64 / nf))
            .collect();
        for (x, &(bc, qc)) in q.iter().enumerate() {
            if bc >= k {
                continue;
            }
            for &(bd, qd) in &q[x..] {
                if bd >= k {
                    continue;
                }
                let delta = if bd == bc { 1.0 } else { 0.0 };
                v[bc * k + bd] += a * qc * (delta - qd);
            }
        }
        if trend_name.is_some() {
            let (mut s1, mut s2) = (0u128, 0u128);
            for &(b, cnt) in &by_bin {
                s1 += b as u128 * u128::from(cnt);
                s2 += (b as u128) * (b as u128) * u128::from(cnt);
            }
            let q1 = s1 as f64 / nf;
            let q2 = s2 as f64 / nf;
            trend_var += a * (q2 - q1 * q1);
        }
    }
    for r in 0..k {
        for c in 0..r {
            v[r * k + c] = v[c * k + r];
        }
    }
    let (statistic, df) = quadratic_form(&v, &diff[..k], k);
    let general = TestResult {
        name,
        statistic,
        df,
        p_value: chi2_upper(statistic, df),
    };
    let trend = trend_name.map(|tn| {
        let u = diff
            .iter()
            .enumerate()
            .fold(0.0f64, |acc, (b, &d)| acc + b as f64 * d);
        let (statistic, df) = if trend_var > 0.0 && nb >= 2 {
            (u * u / trend_var, 1)
        } else {
            (0.0, 0)
        };
        TestResult {
            name: tn,
            statistic,
            df,
            p_value: chi2_upper(statistic, df),
        }
    });
    Tested {
        bins,
        general,
        trend,
    }
}

/// `dᵀ V⁻ d` by an LDLᵀ factorization without pivoting, dropping dependent categories; returns
/// the statistic and the rank (the degrees of freedom).
fn quadratic_form(v: &[f64], d: &[f64], k: usize) -> (f64, u32) {
    let mut l = vec![0.0f64; k * k];
    let mut diag = vec![0.0f64; k];
    let mut kept = vec![false; k];
    for j in 0..k {
        let mut dj = v[j * k + j];
        for i in 0..j {
            if kept[i] {
                dj -= l[j * k + i] * l[j * k + i] * diag[i];
            }
        }
        if v[j * k + j] > 0.0 && dj > PIVOT_TOLERANCE * v[j * k + j] {
            kept[j] = true;
            diag[j] = dj;
            for r in j + 1..k {
                let mut x = v[r * k + j];
                for i in 0..j {
                    if kept[i] {
                        x -= l[r * k + i] * l[j * k + i] * diag[i];
                    }
                }
                l[r * k + j] = x / dj;
            }
        }
    }
    // Forward substitution y = L⁻¹ d over the kept categories, then Σ y² / D.
    let mut y = vec![0.0f64; k];
    let mut q = 0.0f64;
    let mut df = 0u32;
    for j in 0..k {
        if !kept[j] {
            continue;
        }
        let mut x = d[j];
        for i in 0..j {
            if kept[i] {
                x -= l[j * k + i] * y[i];
            }
        }
        y[j] = x;
        q += x * x / diag[j];
        df += 1;
    }
    (q, df)
}

/// The upper tail `P(χ²_df ≥ x)`: the regularized upper incomplete gamma function
/// `Q(df/2, x/2)` by its finite sums for whole `df` (SPEC.md §13); 1 for `df = 0` or `x ≤ 0`.
#[must_use]
pub fn chi2_upper(x: f64, df: u32) -> f64 {
    if df == 0 || x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    let h = x / 2.0;
    let ln_h = libm::log(h);
    let mut sum;
    let mut log_term;
    let terms;
    if df % 2 == 0 {
        sum = 0.0;
        log_term = -h;
        terms = df / 2;
        for j in 0..terms {
            sum += libm::exp(log_term);
            log_term += ln_h - libm::log(f64::from(j + 1));
        }
    } else {
        sum = libm::erfc(libm::sqrt(h));
        log_term = -h + 0.5 * ln_h - libm::lgamma(1.5);
        terms = (df - 1) / 2;
        for j in 0..terms {
            sum += libm::exp(log_term);
            log_term += ln_h - libm::log(f64::from(j) + 1.5);
        }
    }
    sum.min(1.0)
}

/// `YYYY-MM-DDTHHZ` for an hour since the Unix epoch.
fn hour_label(hour: u64) -> String {
    let days = (hour / 24) as i64;
    let (y, m, d) = crate::text::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}Z", hour % 24)
}

fn fmt_test(t: &TestResult) -> String {
    format!(
        "test:{}:{:.3},{},{:.2e}\n",
        t.name, t.statistic, t.df, t.p_value
    )
}

/// The audit of entrants (`pool << 1 | flexible` per entrant, ascending tickets) and winners.
///
/// # Errors
/// [`AuditError::Result`] for a winner the draw's rules cannot produce (an unknown entrant, a
/// second win, a roll-one pack away from the entrant's own pool, a roll-two win of an entrant
/// who is not flexible, or at a pool of another district or product).
pub fn audit(
    entries: &[u32],
    tickets: &[u128],
    stock: &[StockLine],
    winners: &[AuditWinner],
) -> Result<Audit, AuditError> {
    let n = entries.len();
    if tickets.len() != n {
        return Err(AuditError::Snapshot(
            "the entrants' tickets and pools differ in number".into(),
        ));
    }
    let pool_of = |i: u32| (entries[i as usize] >> 1) as usize;
    let flexible = |i: u32| entries[i as usize] & 1 == 1;
    if let Some(i) = (0..n as u32).find(|&i| pool_of(i) >= stock.len()) {
        return Err(AuditError::Snapshot(format!(
            "entrant {i} names a pool the stock does not list"
        )));
    }

    // Groups (district, product), ascending, and each pool's group.
    let mut group_ids: BTreeMap<(Ident, Ident), usize> = BTreeMap::new();
    for s in stock {
        group_ids.entry((s.district_id, s.product_id)).or_insert(0);
    }
    for (g, v) in group_ids.values_mut().enumerate() {
        *v = g;
    }
    let group_of_pool: Vec<usize> = stock
        .iter()
        .map(|s| group_ids[&(s.district_id, s.product_id)])
        .collect();
    let groups_n = group_ids.len();

    // Winners: each once, by the rules of their roll.
    let mut won: Vec<u8> = vec![0; n];
    let mut handed_out = vec![0u64; stock.len()];
    for (k, w) in winners.iter().enumerate() {
        let err = |reason: &str| AuditError::Result {
            line: k as u64 + 1,
            reason: reason.to_string(),
        };
        if w.index as usize >= n {
            return Err(err("the ticket is not in entrants.csv"));
        }
        if won[w.index as usize] != 0 {
            return Err(err("the ticket wins twice"));
        }
        let own = pool_of(w.index);
        let at = w.collected as usize;
        if at >= stock.len() {
            return Err(err("the pool is not in stock.csv"));
        }
        match w.roll {
            Roll::One if at != own => {
                return Err(err(
                    "a roll-one pack is collected away from the entrant's own pool",
                ))
            }
            Roll::Two if !flexible(w.index) => {
                return Err(err("a roll-two winner is not flexible"))
            }
            Roll::Two if group_of_pool[at] != group_of_pool[own] => {
                return Err(err(
                    "a roll-two pack is collected outside the entrant's district and product",
                ))
            }
            _ => {}
        }
        won[w.index as usize] = w.roll.number();
        handed_out[at] += 1;
    }

    // Strata: each pool (roll one), then each group's candidates (roll two).
    let mut pool_members: Vec<Vec<u32>> = vec![Vec::new(); stock.len()];
    for i in 0..n as u32 {
        pool_members[pool_of(i)].push(i);
    }
    let mut strata: Vec<Stratum> = Vec::with_capacity(stock.len() + groups_n);
    let mut group_members: Vec<Vec<u32>> = vec![Vec::new(); groups_n];
    let mut group_roll_two = vec![0u64; groups_n];
    for (p, members) in pool_members.iter().enumerate() {
        let g = group_of_pool[p];
        for &i in members {
            if flexible(i) && won[i as usize] != 1 {
                group_members[g].push(i);
                if won[i as usize] == 2 {
                    group_roll_two[g] += 1;
                }
            }
        }
    }
    let mut roll_one = vec![0u64; stock.len()];
    for (p, members) in pool_members.into_iter().enumerate() {
        let w = members.iter().filter(|&&i| won[i as usize] == 1).count() as u64;
        roll_one[p] = w;
        strata.push(Stratum {
            members,
            winners: w,
        });
    }

    // The allocation the stock permits.
    let mut leftover = vec![0u128; groups_n];
    let mut deviating_pools = 0u64;
    let mut permitted_one = vec![0u64; stock.len()];
    for (p, s) in stock.iter().enumerate() {
        let e = strata[p].n();
        permitted_one[p] = e.min(s.packs);
        leftover[group_of_pool[p]] += u128::from(s.packs - permitted_one[p]);
        if roll_one[p] != permitted_one[p] || handed_out[p] > s.packs {
            deviating_pools += 1;
        }
    }
    let mut deviating_groups = 0u64;
    let mut permitted_two = vec![0u64; groups_n];
    for g in 0..groups_n {
        let c = group_members[g].len() as u64;
        permitted_two[g] = u64::try_from(leftover[g].min(u128::from(c))).unwrap_or(c);
        if group_roll_two[g] != permitted_two[g] {
            deviating_groups += 1;
        }
    }
    for (g, mut members) in group_members.into_iter().enumerate() {
        members.sort_unstable();
        strata.push(Stratum {
            members,
            winners: group_roll_two[g],
        });
    }

    // Hours of acceptance: entrants ascend by ticket, so their hours do not decrease.
    let mut hours: Vec<u64> = Vec::new();
    let mut hour_of: Vec<u32> = Vec::with_capacity(n);
    for &t in tickets {
        let h = ((t >> 80) as u64) / HOUR_MS;
        if hours.last() != Some(&h) {
            if hours.last().is_some_and(|&l| l > h) {
                return Err(AuditError::Snapshot(
                    "entrants are not ascending by ticket_id".into(),
                ));
            }
            hours.push(h);
        }
        hour_of.push((hours.len() - 1) as u32);
    }

    let categories = |m: usize, of: &dyn Fn(u32) -> usize| {
        let mut c = Categories {
            entrants: vec![0; m],
            winners: vec![0; m],
            expected: vec![0.0; m],
            inf_winners: vec![0.0; m],
            inf_losers: vec![0.0; m],
        };
        for i in 0..n as u32 {
            c.entrants[of(i)] += 1;
            if won[i as usize] != 0 {
                c.winners[of(i)] += 1;
            }
        }
        c
    };
    let hour_cat = |i: u32| hour_of[i as usize] as usize;
    let flex_cat = |i: u32| usize::from(flexible(i));
    let mut hour_cats = categories(hours.len(), &hour_cat);
    let hour_tested = stratified_tests(
        "hour",
        Some("hour-trend"),
        &strata,
        &mut hour_cats,
        hour_cat,
    );
    let mut flex_cats = categories(2, &flex_cat);
    let flex_tested = stratified_tests("flexible", None, &strata, &mut flex_cats, flex_cat);

    // The text.
    let total_winners = winners.len();
    let mut t = String::new();
    t.push_str("maskdraw-audit-v1\n");
    t.push_str(&format!("entrants:{n}\n"));
    t.push_str(&format!("winners:{total_winners}\n"));
    t.push_str(&format!("bound:{P_BOUND_TEXT}\n"));
    t.push_str(&format!(
        "allocation:{},{},{},{}\n",
        stock.len(),
        deviating_pools,
        groups_n,
        deviating_groups
    ));
    let bin_line = |attr: &str, label: String, cats: &Categories, b: &Bin| {
        let e: u64 = cats.entrants[b.first..=b.last].iter().sum();
        let w: u64 = cats.winners[b.first..=b.last].iter().sum();
        let x = cats.expected[b.first..=b.last]
            .iter()
            .fold(0.0f64, |acc, &v| acc + v);
        format!("{attr}:{label},{e},{w},{x:.3}\n")
    };
    for b in &hour_tested.bins {
        let label = format!(
            "{}/{}",
            hour_label(hours[b.first]),
            hour_label(hours[b.last] + 1)
        );
        t.push_str(&bin_line("hour", label, &hour_cats, b));
    }
    for b in &flex_tested.bins {
        let label = if b.first == b.last {
            b.first.to_string()
        } else {
            format!("{}-{}", b.first, b.last)
        };
        t.push_str(&bin_line("flexible", label, &flex_cats, b));
    }
    // District and product: entrants, winners and the winners the stock permits.
    for (attr, key) in [("district", 0usize), ("product", 1usize)] {
        let mut rows: BTreeMap<Ident, (u64, u64, u64)> = BTreeMap::new();
        for s in stock {
            rows.entry(if key == 0 {
                s.district_id
            } else {
                s.product_id
            })
            .or_default();
        }
        let id_of = |p: usize| {
            if key == 0 {
                stock[p].district_id
            } else {
                stock[p].product_id
            }
        };
        for (p, s) in strata.iter().take(stock.len()).enumerate() {
            let row = rows.entry(id_of(p)).or_default();
            row.0 += s.n();
            row.1 += s.members.iter().filter(|&&i| won[i as usize] != 0).count() as u64;
            row.2 += permitted_one[p];
        }
        for ((district, product), &g) in &group_ids {
            let row = rows
                .entry(if key == 0 { *district } else { *product })
                .or_default();
            row.2 += permitted_two[g];
        }
        for (id, (e, w, p)) in rows {
            t.push_str(&format!("{attr}:{id},{e},{w},{p}\n"));
        }
    }
    let mut tests = vec![hour_tested.general];
    tests.extend(hour_tested.trend);
    tests.push(flex_tested.general);
    for test in &tests {
        t.push_str(&fmt_test(test));
    }
    let mut flagged: Vec<&'static str> = Vec::new();
    if deviating_pools > 0 || deviating_groups > 0 {
        flagged.push("allocation");
    }
    for test in &tests {
        if test.p_value < P_BOUND {
            flagged.push(test.name);
        }
    }
    if flagged.is_empty() {
        t.push_str("verdict:pass\n");
    } else {
        t.push_str(&format!("verdict:flagged:{}\n", flagged.join(",")));
    }
    Ok(Audit {
        text: t.into_bytes(),
        deviating_pools,
        deviating_groups,
        tests,
        flagged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the closed forms in Python's `math` module (see SPEC.md §13's provenance):
    /// df 1: erfc(sqrt(x/2)); df 2: exp(-x/2); df 3 adds sqrt(2x/π)·exp(-x/2).
    #[test]
    fn the_chi_square_tail_matches_its_closed_forms() {
        let close = |a: f64, b: f64| ((a - b) / b).abs() < 1e-12;
        assert!(close(chi2_upper(3.841458820694124, 1), 0.05));
        assert!(close(chi2_upper(10.0, 2), (-5.0f64).exp()));
        let x = 7.0f64;
        let want3 = libm::erfc((x / 2.0).sqrt())
            + (2.0 * x / std::f64::consts::PI).sqrt() * (-x / 2.0).exp();
        assert!(close(chi2_upper(x, 3), want3));
        assert_eq!(chi2_upper(0.0, 5), 1.0);
        assert_eq!(chi2_upper(5.0, 0), 1.0);
        // mpmath.gammainc(df/2, x/2, inf, regularized=True) at 30 digits.
        assert!(close(chi2_upper(50.0, 30), 0.012_402_060_718_900_6));
        assert!(close(chi2_upper(300.0, 239), 0.004_491_745_320_682_87));
        assert!(close(chi2_upper(23.928, 1), 1.000_065_958_103_69e-6));
        // Far tails underflow to 0 rather than to a wrong positive number.
        assert_eq!(chi2_upper(5000.0, 1), 0.0);
    }

    #[test]
    fn hours_are_labelled_in_utc_on_the_gregorian_calendar() {
        assert_eq!(hour_label(0), "1970-01-01T00Z");
        // 2026-11-23T14:00:00Z is 1795442400 s.
        assert_eq!(hour_label(1_795_442_400 / 3600), "2026-11-23T14Z");
        assert_eq!(hour_label((951_782_400 / 3600) + 23), "2000-02-29T23Z");
    }

    #[test]
    fn the_quadratic_form_drops_a_dependent_category() {
        // V = [[2, 2], [2, 2]] has rank 1; d = (1, 1): dᵀV⁻d = 1/2.
        let (q, df) = quadratic_form(&[2.0, 2.0, 2.0, 2.0], &[1.0, 1.0], 2);
        assert_eq!(df, 1);
        assert!((q - 0.5).abs() < 1e-15);
        let (q, df) = quadratic_form(&[4.0, 0.0, 0.0, 1.0], &[2.0, 3.0], 2);
        assert_eq!(df, 2);
        assert!((q - 10.0).abs() < 1e-15);
    }
}
