//! The fairness audit (`audit.txt`, SPEC.md §13): known answers, skewed draws flagged, fair
//! draws passing.

mod common;

use common::vector_dir;
use lottery::audit::{audit, audit_dir, audit_outcome, AuditWinner, P_BOUND};
use lottery::draw::{draw, Roll};
use lottery::sample::{sample_data, SampleOptions};
use lottery::snapshot::{Entrant, PoolIndex, StockLine};
use sha2::{Digest, Sha256};

/// Copies a vector day without any audit.txt of its own.
fn vector_copy(name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(vector_dir(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), t.path().join(e.file_name())).unwrap();
    }
    t
}

/// The known answers were produced by `tests/vectors/audit_reference.py`, a second
/// implementation written from SPEC.md §13 in Python (standard library only).
#[test]
fn the_audits_of_both_vector_days_are_the_independently_computed_files_byte_for_byte() {
    for name in ["v1-small", "v1-contested"] {
        let day = vector_copy(name);
        let got = audit_dir(day.path()).unwrap();
        let want = std::fs::read(vector_dir("audit-v1").join(format!("{name}.txt"))).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got.text),
            String::from_utf8_lossy(&want),
            "{name}"
        );
        assert!(!got.is_flagged());
    }
}

#[test]
fn the_contested_days_statistics_are_the_known_values() {
    let day = vector_copy("v1-contested");
    let a = audit_dir(day.path()).unwrap();
    let t: Vec<(&str, String, u32, String)> = a
        .tests
        .iter()
        .map(|t| {
            (
                t.name,
                format!("{:.3}", t.statistic),
                t.df,
                format!("{:.2e}", t.p_value),
            )
        })
        .collect();
    // p-values cross-checked with mpmath.gammainc(df/2, x/2, inf, regularized=True).
    assert_eq!(
        t,
        vec![
            ("hour", "20.956".into(), 21, "4.62e-1".into()),
            ("hour-trend", "0.110".into(), 1, "7.40e-1".into()),
            ("flexible", "0.638".into(), 1, "4.24e-1".into()),
        ]
    );
}

/// A day of the sample generator: 10 days of acceptances, Zipf-popular pharmacies, stock that
/// ignores popularity (so both rolls have work), about half the entrants flexible.
fn day(entrants: u64, pharmacies: u32) -> (Vec<Entrant>, Vec<StockLine>) {
    sample_data(&SampleOptions {
        entrants,
        pharmacies,
        seed: 7,
    })
    .unwrap()
}

fn seed(s: u64) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"audit")
        .chain_update(s.to_le_bytes())
        .finalize()
        .into()
}

/// A faulty draw that fills every pool and group with the allocation the stock permits but
/// picks its winners by `rank` (lowest first) instead of by the rolls.
fn faulty_draw(
    entrants: &[Entrant],
    stock: &[StockLine],
    rank: impl Fn(usize, &Entrant) -> u64,
) -> Vec<AuditWinner> {
    let pools = PoolIndex::new(stock);
    let pool_of: Vec<u32> = entrants
        .iter()
        .map(|e| pools.get(&e.pharmacy_id, &e.product_id).unwrap())
        .collect();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); stock.len()];
    for (i, &p) in pool_of.iter().enumerate() {
        members[p as usize].push(i);
    }
    let mut won = vec![false; entrants.len()];
    let mut winners = Vec::new();
    let mut left = vec![0u64; stock.len()];
    for (p, m) in members.iter_mut().enumerate() {
        m.sort_by_key(|&i| (rank(i, &entrants[i]), i));
        let k = (m.len() as u64).min(stock[p].packs) as usize;
        for &i in &m[..k] {
            won[i] = true;
            winners.push(AuditWinner {
                index: i as u32,
                roll: Roll::One,
                collected: p as u32,
            });
        }
        left[p] = stock[p].packs - k as u64;
    }
    let mut groups: std::collections::BTreeMap<_, Vec<usize>> = Default::default();
    for (p, s) in stock.iter().enumerate() {
        groups
            .entry((s.district_id, s.product_id))
            .or_default()
            .push(p);
    }
    for group_pools in groups.values() {
        let mut cands: Vec<usize> = group_pools
            .iter()
            .flat_map(|&p| members[p].iter().copied())
            .filter(|&i| entrants[i].flexible && !won[i])
            .collect();
        cands.sort_by_key(|&i| (rank(i, &entrants[i]), i));
        for i in cands {
            let Some(&p) = group_pools.iter().find(|&&p| left[p] > 0) else {
                break;
            };
            left[p] -= 1;
            winners.push(AuditWinner {
                index: i as u32,
                roll: Roll::Two,
                collected: p as u32,
            });
        }
    }
    winners.sort_by_key(|w| w.index);
    winners
}

fn packed(entrants: &[Entrant], stock: &[StockLine]) -> (Vec<u32>, Vec<u128>) {
    let pools = PoolIndex::new(stock);
    entrants
        .iter()
        .map(|e| {
            let p = pools.get(&e.pharmacy_id, &e.product_id).unwrap();
            ((p << 1) | u32::from(e.flexible), e.ticket_id.to_u128())
        })
        .unzip()
}

#[test]
fn a_draw_whose_winners_are_the_earliest_entrants_is_flagged_as_dv_2012_was() {
    let (entrants, stock) = day(3000, 40);
    let (entries, tickets) = packed(&entrants, &stock);
    // Entrants ascend by acceptance time: rank by index is "first come, first served".
    let winners = faulty_draw(&entrants, &stock, |i, _| i as u64);
    let a = audit(&entries, &tickets, &stock, &winners).unwrap();
    let text = String::from_utf8(a.text.clone()).unwrap();
    assert_eq!(a.deviating_pools + a.deviating_groups, 0, "{text}");
    assert!(a.flagged.contains(&"hour"), "{text}");
    assert!(a.flagged.contains(&"hour-trend"), "{text}");
    assert!(
        text.ends_with("verdict:flagged:hour,hour-trend\n"),
        "{text}"
    );
}

#[test]
fn a_draw_that_favours_flexible_entrants_within_pools_is_flagged() {
    let (entrants, stock) = day(3000, 40);
    let (entries, tickets) = packed(&entrants, &stock);
    // Flexible first, otherwise in an order unrelated to time (a hash of the index).
    let winners = faulty_draw(&entrants, &stock, |i, e| {
        let h = u64::from_le_bytes(seed(i as u64)[..8].try_into().unwrap()) >> 1;
        if e.flexible {
            h >> 1
        } else {
            (1 << 62) | (h >> 1)
        }
    });
    let a = audit(&entries, &tickets, &stock, &winners).unwrap();
    let text = String::from_utf8(a.text.clone()).unwrap();
    assert!(a.flagged.contains(&"flexible"), "{text}");
    assert!(!a.flagged.contains(&"hour-trend"), "{text}");
}

#[test]
fn a_draw_that_withholds_packs_from_one_district_or_one_product_is_flagged() {
    let (entrants, stock) = day(3000, 40);
    let (entries, tickets) = packed(&entrants, &stock);
    let out = draw(&entrants, &stock, &seed(1)).unwrap();
    let pools = PoolIndex::new(&stock);
    let fair: Vec<AuditWinner> = out
        .winners
        .iter()
        .map(|w| AuditWinner {
            index: w.entrant_index as u32,
            roll: w.roll,
            collected: pools.get(&w.pharmacy_id, &w.product_id).unwrap(),
        })
        .collect();
    assert!(!audit(&entries, &tickets, &stock, &fair)
        .unwrap()
        .is_flagged());
    // District D00, then product SURG, loses one winner per pool.
    let d00 = stock[0].district_id;
    for (what, drop) in [
        (
            "district",
            Box::new(|w: &AuditWinner| stock[w.collected as usize].district_id == d00)
                as Box<dyn Fn(&AuditWinner) -> bool>,
        ),
        (
            "product",
            Box::new(|w: &AuditWinner| stock[w.collected as usize].product_id.as_str() == "SURG"),
        ),
    ] {
        let mut seen = std::collections::HashSet::new();
        let skewed: Vec<AuditWinner> = fair
            .iter()
            .copied()
            .filter(|w| !(drop(w) && seen.insert(w.collected)))
            .collect();
        assert!(skewed.len() < fair.len(), "{what}");
        let a = audit(&entries, &tickets, &stock, &skewed).unwrap();
        let text = String::from_utf8(a.text.clone()).unwrap();
        assert_eq!(a.flagged, vec!["allocation"], "{what}: {text}");
        // The district (or product) table shows fewer winners than the stock permits.
        let row = text
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "{what}:{},",
                    if what == "district" {
                        d00.as_str()
                    } else {
                        "SURG"
                    }
                ))
            })
            .unwrap();
        let f: Vec<u64> = row.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
        assert!(f[1] < f[2], "{row}");
    }
}

/// Under a fair draw each test's p-value is (close to) uniform, so with the bound 1e-6 and
/// three tests a false alarm among 200 draws has probability about 6e-4.
#[test]
fn the_real_draw_over_200_seeds_is_never_flagged_and_its_p_values_look_uniform() {
    let (entrants, stock) = day(3000, 40);
    let mut flagged = 0;
    let mut below_5_percent = [0u32; 3];
    let mut below_half = [0u32; 3];
    let mut min_p = [1.0f64; 3];
    for s in 0..200 {
        let out = draw(&entrants, &stock, &seed(s)).unwrap();
        let a = audit_outcome(&entrants, &stock, &out).unwrap();
        if a.is_flagged() {
            flagged += 1;
        }
        assert_eq!(a.deviating_pools + a.deviating_groups, 0);
        for (k, t) in a.tests.iter().enumerate() {
            assert!(t.df > 0, "{} has no degrees of freedom", t.name);
            min_p[k] = min_p[k].min(t.p_value);
            below_5_percent[k] += u32::from(t.p_value < 0.05);
            below_half[k] += u32::from(t.p_value < 0.5);
        }
    }
    eprintln!(
        "200 fair draws: {flagged} flagged; p < 0.05: {below_5_percent:?}; p < 0.5: {below_half:?}; \
         smallest p: {min_p:?} (bound {P_BOUND})"
    );
    assert_eq!(flagged, 0);
    // A test that never comes near its bound could be too timid to see anything: its p-values
    // must look uniform. Binomial(200, 0.05) is within 1..=25 and Binomial(200, 0.5) within
    // 70..=130 with probability above 0.9999 each.
    for k in 0..3 {
        assert!(
            (1..=25).contains(&below_5_percent[k]),
            "{below_5_percent:?}"
        );
        assert!((70..=130).contains(&below_half[k]), "{below_half:?}");
    }
}

#[test]
fn a_result_naming_a_ticket_that_never_entered_is_refused_with_its_line() {
    let day = vector_copy("v1-small");
    let mut result = std::fs::read(day.path().join("result.csv")).unwrap();
    result[0] = b'7';
    std::fs::write(day.path().join("result.csv"), &result).unwrap();
    let e = audit_dir(day.path()).unwrap_err().to_string();
    assert!(e.starts_with("result.csv line 1:"), "{e}");
}

/// A small sealed and drawn sample day in a temporary directory (with its `audit.txt`).
fn sample_dir() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    lottery::sample::generate(
        t.path(),
        &SampleOptions {
            entrants: 2000,
            pharmacies: 24,
            seed: 3,
        },
        &lottery::NoProgress,
    )
    .unwrap();
    t
}

fn key_of(dir: &std::path::Path) -> lottery::sign::PublicKey {
    lottery::sign::parse_public_key_file(&std::fs::read(dir.join("authority.pub")).unwrap())
        .unwrap()
}

#[test]
fn the_draw_writes_audit_txt_and_verify_checks_it_byte_for_byte() {
    let t = sample_dir();
    let dir = t.path();
    let key = key_of(dir);
    let written = std::fs::read(dir.join("audit.txt")).unwrap();
    assert_eq!(written, audit_dir(dir).unwrap().text);
    let report = lottery::verify::verify_dir(dir, &key, None);
    assert!(report.all_passed(), "{report}");
    assert!(report.to_string().contains(
        "PASS audit.txt is reproduced from entrants.csv, stock.csv and result.csv byte for byte\n"
    ));
    // One changed digit is caught and named.
    let text = String::from_utf8(written.clone()).unwrap();
    let changed = text.replacen("verdict:pass", "verdict:flagged:hour", 1);
    std::fs::write(dir.join("audit.txt"), changed).unwrap();
    let report = lottery::verify::verify_dir(dir, &key, None);
    let failures: Vec<String> = report.failures().map(|c| c.name.clone()).collect();
    assert_eq!(
        failures,
        vec!["audit.txt is reproduced from entrants.csv, stock.csv and result.csv byte for byte"],
        "{report}"
    );
    // Absent: a PASS line saying so (days drawn before the audit existed keep verifying).
    std::fs::remove_file(dir.join("audit.txt")).unwrap();
    let report = lottery::verify::verify_dir(dir, &key, None);
    assert!(report.all_passed(), "{report}");
    assert!(report
        .to_string()
        .contains("PASS audit.txt is absent (optional derived data: nothing to check)\n"));
}

#[test]
fn notary_audit_writes_the_file_and_exits_one_on_a_result_of_the_earliest_entrants() {
    let t = sample_dir();
    let dir = t.path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notary"))
        .args(["audit", dir.to_str().unwrap(), "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, std::fs::read(dir.join("audit.txt")).unwrap());

    // Replace result.csv with first-come-first-served winners (what a faulty program might
    // publish; draw.txt's digest no longer matches, but the audit reads only the three files).
    let entrants =
        lottery::snapshot::parse_entrants(&std::fs::read(dir.join("entrants.csv")).unwrap())
            .unwrap();
    let stock =
        lottery::snapshot::parse_stock(&std::fs::read(dir.join("stock.csv")).unwrap()).unwrap();
    let winners = faulty_draw(&entrants, &stock, |i, _| i as u64);
    let mut result = String::new();
    for w in &winners {
        let s = &stock[w.collected as usize];
        result.push_str(&format!(
            "{},{},{},{}\n",
            entrants[w.index as usize].ticket_id,
            s.pharmacy_id,
            s.product_id,
            w.roll.number()
        ));
    }
    std::fs::write(dir.join("result.csv"), result).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notary"))
        .args(["audit", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.ends_with("verdict:flagged:hour,hour-trend\n"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(dir.join("audit.txt")).unwrap(),
        stdout.as_bytes()
    );
}
