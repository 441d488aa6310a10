//! Roll values (DESIGN.md, "The two-roll draw (version 1)").
//!
//! `roll_s(i)` is the little-endian u64 word `i` of the ChaCha20 keystream of
//! `rand_chacha`'s `ChaCha20Rng::from_seed(seed)` after `set_stream(s)`: the
//! RFC 8439 block function with a 64-bit block counter (from 0) in state words
//! 12–13 and the 64-bit stream id in words 14–15. Word `i` lives in block
//! `i / 8`, so any entrant's roll is computable on its own.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

/// Stream id of roll one, the pool roll.
pub const POOL_ROLL: u64 = 1;
/// Stream id of roll two, the spill roll.
pub const SPILL_ROLL: u64 = 2;

/// `roll_stream(index)`: word `index` of stream `stream` of the seed's keystream.
#[must_use]
pub fn roll(seed: &[u8; 32], stream: u64, index: u64) -> u64 {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    rng.set_stream(stream);
    // The word position counts 32-bit words.
    rng.set_word_pos(u128::from(index) * 2);
    rng.next_u64()
}

/// Fills `out` with `roll_stream(start)`, `roll_stream(start + 1)`, ….
pub fn fill_rolls(seed: &[u8; 32], stream: u64, start: u64, out: &mut [u64]) {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    rng.set_stream(stream);
    rng.set_word_pos(u128::from(start) * 2);
    let mut buf = [0u8; 4096];
    for chunk in out.chunks_mut(512) {
        let bytes = &mut buf[..chunk.len() * 8];
        rng.fill_bytes(bytes);
        for (slot, word) in chunk.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            *slot = u64::from_le_bytes(w);
        }
    }
}

/// `roll_stream(0..n)` computed on every core.
#[must_use]
pub fn rolls(seed: &[u8; 32], stream: u64, n: usize) -> Vec<u64> {
    let mut out = vec![0u64; n];
    const CHUNK: usize = 1 << 16;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            fill_rolls(seed, stream, (c * CHUNK) as u64, chunk);
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_and_single_rolls_agree_across_block_and_chunk_edges() {
        let seed = [7u8; 32];
        let bulk = rolls(&seed, POOL_ROLL, 70_000);
        for i in [0usize, 1, 7, 8, 9, 65_535, 65_536, 69_999] {
            assert_eq!(bulk[i], roll(&seed, POOL_ROLL, i as u64), "index {i}");
        }
        assert_ne!(roll(&seed, POOL_ROLL, 3), roll(&seed, SPILL_ROLL, 3));
    }
}
