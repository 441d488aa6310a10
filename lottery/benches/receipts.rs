//! Receipts (issue 12, item 1): CPU per receipt when the intake signs each reservation, and
//! when it signs one group-commit batch of 256 with an RFC 6962 audit path per receipt. Both
//! include forming the receipt and its file bytes, single-threaded.
//!
//! ```text
//! cargo bench -p lottery --bench receipts
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use lottery::receipt::{sign_batch, Receipt};
use lottery::sample::sample_key;
use lottery::snapshot::{Ident, PersonTag, TicketId};

const BATCH: usize = 256;

fn receipts(n: usize) -> Vec<Receipt> {
    (0..n)
        .map(|i| Receipt {
            ticket_id: TicketId::from_u128((1_795_341_600_000u128 << 80) | i as u128),
            person_tag: PersonTag((i as u128 * 0x9e37_79b9_7f4a_7c15).to_be_bytes()),
            pharmacy_id: Ident::parse(b"PH0042").unwrap_or_else(|_| unreachable!()),
            product_id: Ident::parse(b"KN95").unwrap_or_else(|_| unreachable!()),
            flexible: i % 2 == 0,
            accepted_ms: 1_795_341_600_000 + i as u64,
            valid_until_ms: 1_795_341_600_000 + 10 * 86_400_000 + i as u64,
            first_draw: "2026-11-24".into(),
            cooldown_days: 3,
        })
        .collect()
}

/// Runs `f` on batches until `budget` has passed; returns µs per receipt.
fn per_receipt(budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < budget {
        n += f();
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let key = sample_key(1);
    let rs = receipts(BATCH);
    let budget = Duration::from_secs(2);
    let each = per_receipt(budget, || {
        for r in &rs {
            let signed = sign_batch(&key, std::slice::from_ref(r)).unwrap_or_default();
            black_box(signed[0].to_bytes());
        }
        rs.len()
    });
    let batched = per_receipt(budget, || {
        let signed = sign_batch(&key, &rs).unwrap_or_default();
        for s in &signed {
            black_box(s.to_bytes());
        }
        rs.len()
    });
    let batched_only = per_receipt(budget, || {
        black_box(sign_batch(&key, &rs).unwrap_or_default());
        rs.len()
    });
    let statements = per_receipt(budget, || {
        for r in &rs {
            black_box(r.statement());
        }
        rs.len()
    });
    let verify = {
        let signed = sign_batch(&key, &rs).unwrap_or_default();
        let public = key.verifying_key();
        per_receipt(budget, || {
            for s in &signed {
                black_box(s.verify(&public).is_ok());
            }
            signed.len()
        })
    };
    println!("receipts, one core, {BATCH} per batch");
    println!("  signed one by one          {each:8.2} µs per receipt");
    println!(
        "  signed per batch + path    {batched:8.2} µs per receipt ({:.1}x less)",
        each / batched
    );
    println!("    of which sign_batch       {batched_only:8.2} µs, forming a statement {statements:.2} µs");
    println!("  verified alone (page/notary) {verify:6.2} µs per receipt");
}
