//! A deterministic fairness test of roll one (and roll two): over many seeds,
//! each entrant of an oversubscribed pool wins with frequency close to
//! packs/entrants.
//!
//! Each seed picks exactly K of E entrants, so the win indicators of one seed
//! are a draw without replacement: Var(O_j) = S·p(1−p) and
//! Cov(O_i, O_j) = −S·p(1−p)/(E−1), with p = K/E over S seeds. The covariance
//! matrix is S·p(1−p)·E/(E−1)·(I − 11ᵀ/E), so
//!   T = (E−1)/E · Σ_j (O_j − S·p)² / (S·p·(1−p))
//! is approximately χ² with E−1 degrees of freedom under a fair draw. The test
//! fails when T exceeds the χ² quantile at significance 0.001. Seeds are
//! SHA-256("fairness" ‖ s) for s = 0..S, so the outcome never changes from run
//! to run; the bound is a table value chosen before looking at T, not tuned.

use lottery::draw::{draw, Roll};
use lottery::snapshot::{Entrant, Ident, PersonTag, StockLine, TicketId};
use sha2::{Digest, Sha256};

/// Upper 0.001 quantiles of χ² (NIST/SEMATECH e-Handbook of Statistical
/// Methods, §1.3.6.7.4, "Critical values of the chi-square distribution").
const CHI2_0_999_DF19: f64 = 43.820;
const CHI2_0_999_DF29: f64 = 58.301;

fn ident(s: &str) -> Ident {
    Ident::parse(s.as_bytes()).unwrap()
}

fn entrants(pools: &[(&str, usize, bool)]) -> Vec<Entrant> {
    let mut out = Vec::new();
    for &(pharmacy, count, flexible) in pools {
        for _ in 0..count {
            let i = out.len() as u128;
            out.push(Entrant {
                ticket_id: TicketId::from_u128((i + 1) << 60),
                pharmacy_id: ident(pharmacy),
                product_id: ident("KN95"),
                flexible,
                person_tag: PersonTag(i.to_be_bytes()),
            });
        }
    }
    out.sort_by_key(|e| e.ticket_id);
    out
}

fn statistic(counts: &[u64], seeds: u64, k: u64) -> f64 {
    let e = counts.len() as f64;
    let p = k as f64 / e;
    let expected = seeds as f64 * p;
    let sum: f64 = counts.iter().map(|&o| (o as f64 - expected).powi(2)).sum();
    (e - 1.0) / e * sum / (seeds as f64 * p * (1.0 - p))
}

fn seed(s: u64) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"fairness")
        .chain_update(s.to_le_bytes())
        .finalize()
        .into()
}

#[test]
fn each_entrant_of_an_oversubscribed_pool_wins_about_packs_over_entrants_of_the_time() {
    // One pool, E = 20 entrants, K = 5 packs, S = 4000 seeds.
    let (e, k, seeds) = (20usize, 5u64, 4000u64);
    let people = entrants(&[("PH1", e, false)]);
    let stock = [StockLine {
        pharmacy_id: ident("PH1"),
        district_id: ident("D1"),
        product_id: ident("KN95"),
        packs: k,
    }];
    let mut counts = vec![0u64; e];
    for s in 0..seeds {
        let out = draw(&people, &stock, &seed(s)).unwrap();
        assert_eq!(out.winners.len() as u64, k);
        for w in &out.winners {
            counts[w.entrant_index as usize] += 1;
        }
    }
    let t = statistic(&counts, seeds, k);
    assert!(
        t < CHI2_0_999_DF19,
        "T = {t:.2} ≥ {CHI2_0_999_DF19} with counts {counts:?}"
    );
    // And no entrant is far from S·K/E = 1000.
    assert!(
        counts.iter().all(|&c| (800..1200).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn each_flexible_loser_wins_the_spill_about_equally_often() {
    // PH1 has 30 flexible entrants and 0 packs; PH2 in the same district has
    // 6 packs and no entrants: roll two offers 6 packs to 30 candidates.
    let (e, k, seeds) = (30usize, 6u64, 3000u64);
    let people = entrants(&[("PH1", e, true)]);
    let stock = [
        StockLine {
            pharmacy_id: ident("PH1"),
            district_id: ident("D1"),
            product_id: ident("KN95"),
            packs: 0,
        },
        StockLine {
            pharmacy_id: ident("PH2"),
            district_id: ident("D1"),
            product_id: ident("KN95"),
            packs: k,
        },
    ];
    let mut counts = vec![0u64; e];
    for s in 0..seeds {
        let out = draw(&people, &stock, &seed(s)).unwrap();
        assert_eq!(out.winners.len() as u64, k);
        for w in &out.winners {
            assert_eq!(w.roll, Roll::Two);
            counts[w.entrant_index as usize] += 1;
        }
    }
    let t = statistic(&counts, seeds, k);
    assert!(
        t < CHI2_0_999_DF29,
        "T = {t:.2} ≥ {CHI2_0_999_DF29} with counts {counts:?}"
    );
}
