//! A synthetic, realistic sealed and drawn directory for tests, demos and
//! benchmarks (`notary sample`).
//!
//! Everything is a deterministic function of [`SampleOptions`]: the same
//! options give the same bytes on every machine and with any number of cores.
//! The signing key too is derived from the seed
//! (`SHA-256("maskdraw-sample-key-v1" ‖ seed as 8 little-endian bytes)` is the
//! RFC 8032 private key), so a sample's key is public knowledge: it is a
//! throwaway for tests, never an authority's key.
//!
//! Shape: pharmacies spread over up to 11 districts, two products (`KN95`,
//! `SURG`), Zipf-like pharmacy popularity (exponent 1.1 over a random ranking)
//! and stock that ignores popularity, so popular pools are oversubscribed while
//! quiet ones keep packs that roll two hands to flexible losers nearby.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::dir::{write_draw, write_seal_with_progress, DirError, SealFields};
use crate::merkle::Hash;
use crate::sign::public_key_file;
use crate::snapshot::{Entrant, Ident, PersonTag, StockLine, TicketId};
use crate::text::{commitment, Commit, Reveal};
use crate::Progress;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleOptions {
    /// Number of entrants (at most 500 million).
    pub entrants: u64,
    /// Number of pharmacies (1 to 99,999).
    pub pharmacies: u32,
    /// Seed of every random choice and of the key.
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// Entrants sealed.
    pub entrants: u64,
    /// Pharmacies.
    pub pharmacies: u32,
    /// Districts.
    pub districts: u32,
    /// Stock lines (pools).
    pub pools: usize,
    /// Packs on offer in total.
    pub packs: u64,
    /// Pools with more entrants than packs (and packs > 0).
    pub oversubscribed_pools: usize,
    /// Roll-one winners.
    pub winners_roll_one: u64,
    /// Roll-two winners.
    pub winners_roll_two: u64,
    /// Groups listed in `spill.csv`.
    pub spill_groups: usize,
    /// `entrants_root`.
    pub root: Hash,
    /// `seal_id`.
    pub seal_id: Hash,
    /// The throwaway public key (also written as `authority.pub`).
    pub public_key: VerifyingKey,
}

/// Why a sample could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Options out of range.
    #[error("{0}")]
    Options(String),
    /// Writing failed.
    #[error(transparent)]
    Dir(#[from] DirError),
}

/// The sample's throwaway signing key for `seed`.
#[must_use]
pub fn sample_key(seed: u64) -> SigningKey {
    let mut h = Sha256::new();
    h.update(b"maskdraw-sample-key-v1");
    h.update(seed.to_le_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

fn master_seed(seed: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"maskdraw-sample-v1");
    h.update(seed.to_le_bytes());
    h.finalize().into()
}

fn uniform(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A bijection of u128 (xor, odd multiplications, xor-shifts), so distinct
/// indices give distinct person tags.
fn mix(i: u64, key: u128) -> u128 {
    let mut x = u128::from(i) ^ key;
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    x ^= x >> 67;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9_94d0_49bb_1331_11eb);
    x ^= x >> 59;
    x
}

fn ident(text: &str) -> Result<Ident, SampleError> {
    Ident::parse(text.as_bytes()).map_err(|e| SampleError::Options(format!("{text}: {e}")))
}

/// The entrants and stock [`generate`] seals, without writing anything: the same values for
/// the same options (tests draw them under many seeds).
///
/// # Errors
/// [`SampleError::Options`] for options out of range.
pub fn sample_data(options: &SampleOptions) -> Result<(Vec<Entrant>, Vec<StockLine>), SampleError> {
    let (entrants, stock, _, _) = build(options, &crate::NoProgress)?;
    Ok((entrants, stock))
}

type Built = (Vec<Entrant>, Vec<StockLine>, u32, ChaCha20Rng);

fn build(options: &SampleOptions, progress: &dyn Progress) -> Result<Built, SampleError> {
    let n = options.entrants;
    let p = options.pharmacies;
    if n > 500_000_000 {
        return Err(SampleError::Options("at most 500,000,000 entrants".into()));
    }
    if p == 0 || p > 99_999 {
        return Err(SampleError::Options(
            "pharmacies must be 1 to 99,999".into(),
        ));
    }
    let master = master_seed(options.seed);
    let mut rng = ChaCha20Rng::from_seed(master);
    let districts = (p / 8).clamp(1, 11);
    let width = p.saturating_sub(1).to_string().len().max(4);
    let products = [ident("KN95")?, ident("SURG")?];
    let product_share = [0.4f64, 0.6];

    // Popularity: weight 1/rank^1.1 over a random ranking of pharmacies.
    let mut ranks: Vec<u32> = (0..p).collect();
    for i in (1..ranks.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        ranks.swap(i, j);
    }
    let weights: Vec<f64> = ranks
        .iter()
        .map(|&r| 1.0 / f64::from(r + 1).powf(1.1))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }

    // Stock: packs independent of popularity, about 8% of entrants in all.
    let mut stock = Vec::with_capacity(p as usize * 2);
    for ph in 0..p {
        let pharmacy_id = ident(&format!("PH{ph:0width$}"))?;
        let district_id = ident(&format!("D{:02}", rng.next_u64() % u64::from(districts)))?;
        for (k, product_id) in products.iter().enumerate() {
            // Deliveries ignore popularity: most pools get a little, some a
            // large delivery (which quiet pharmacies cannot use up), a few none.
            let base = 0.04 * n as f64 * product_share[k] / f64::from(p);
            let draw = rng.next_u64() % 20;
            let packs = if draw == 0 {
                0
            } else if draw < 14 {
                (base * uniform(&mut rng)).round() as u64
            } else {
                (base * (3.0 + 5.0 * uniform(&mut rng))).round() as u64
            };
            stock.push(StockLine {
                pharmacy_id,
                district_id,
                product_id: *product_id,
                packs,
            });
        }
    }

    // Entrants, in parallel chunks each with its own ChaCha stream.
    let start_ms: u128 = 1_795_442_400_000 - 10 * 86_400_000; // ten days before the cutoff
    let span_ms: u128 = 10 * 86_400_000;
    let tag_key = u128::from_le_bytes(master[..16].try_into().unwrap_or([0; 16]));
    const CHUNK: u64 = 1 << 16;
    progress.start("generate entrants", n);
    let done = AtomicU64::new(0);
    let chunks = n.div_ceil(CHUNK);
    let entrants: Vec<Entrant> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut rng = ChaCha20Rng::from_seed(master);
            rng.set_stream(1000 + c);
            let lo = c * CHUNK;
            let hi = (lo + CHUNK).min(n);
            let cdf = &cdf;
            let stock = &stock;
            let out: Vec<Entrant> = (lo..hi)
                .map(|i| {
                    let u = uniform(&mut rng);
                    let ph = cdf.partition_point(|&x| x < u).min(cdf.len() - 1);
                    let k = usize::from(uniform(&mut rng) >= product_share[0]);
                    let flexible = rng.next_u64() & 1 == 1;
                    let random80 = (u128::from(rng.next_u64()) << 16
                        | u128::from(rng.next_u64() >> 48))
                        & ((1u128 << 80) - 1);
                    // Strictly increasing milliseconds, so tickets ascend with i.
                    let time = start_ms + u128::from(i) * span_ms / u128::from(n.max(1));
                    let line = &stock[ph * 2 + k];
                    Entrant {
                        ticket_id: TicketId::from_u128(time << 80 | random80),
                        pharmacy_id: line.pharmacy_id,
                        product_id: line.product_id,
                        flexible,
                        person_tag: PersonTag(mix(i, tag_key).to_be_bytes()),
                    }
                })
                .collect();
            progress.set(done.fetch_add(hi - lo, Ordering::Relaxed) + (hi - lo));
            out
        })
        .collect();
    progress.finish();

    Ok((entrants, stock, districts, rng))
}

/// Generates a sealed and drawn directory in `outdir`, with `authority.pub`.
///
/// # Errors
/// [`SampleError`] for options out of range or a failed write.
pub fn generate(
    outdir: &Path,
    options: &SampleOptions,
    progress: &dyn Progress,
) -> Result<SampleSummary, SampleError> {
    let (entrants, stock, districts, mut rng) = build(options, progress)?;
    let (n, p) = (options.entrants, options.pharmacies);
    let key = sample_key(options.seed);
    let mut secrets = Vec::new();
    for party in ["notary", "officials"] {
        let mut s = vec![0u8; 32];
        rng.fill_bytes(&mut s);
        secrets.push((party.to_string(), s));
    }
    let fields = SealFields {
        draw_date: "2026-11-24".into(),
        cutoff: "2026-11-23T14:00:00Z".into(),
        previous: None,
        commits: secrets
            .iter()
            .map(|(party, s)| Commit {
                party: party.clone(),
                digest: commitment(s),
            })
            .collect(),
    };
    let seal = write_seal_with_progress(outdir, &entrants, &stock, &fields, &key, progress)?;
    progress.start("draw", 0);
    let reveals = secrets
        .into_iter()
        .map(|(party, secret)| Reveal { party, secret })
        .collect();
    let (_, outcome) = write_draw(
        outdir,
        &entrants,
        &stock,
        &seal,
        reveals,
        format!("sample seed {}", options.seed),
        &key,
    )?;
    progress.finish();
    let pub_path = outdir.join("authority.pub");
    std::fs::write(&pub_path, public_key_file(&key.verifying_key())).map_err(|source| {
        DirError::Io {
            path: pub_path,
            source,
        }
    })?;

    let winners_roll_two = outcome
        .winners
        .iter()
        .filter(|w| w.roll == crate::draw::Roll::Two)
        .count() as u64;
    Ok(SampleSummary {
        entrants: n,
        pharmacies: p,
        districts,
        pools: stock.len(),
        packs: stock.iter().map(|s| s.packs).sum(),
        oversubscribed_pools: outcome.pools.iter().filter(|x| x.cutoff.is_some()).count(),
        winners_roll_one: outcome.winners.len() as u64 - winners_roll_two,
        winners_roll_two,
        spill_groups: outcome.spill.len(),
        root: seal.entrants_root,
        seal_id: seal.seal_id(),
        public_key: key.verifying_key(),
    })
}
