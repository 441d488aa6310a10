//! The two-roll draw, version 1 (DESIGN.md, "The two-roll draw (version 1)").
//!
//! Roll one ranks each pool's entrants by (`roll_1(i)`, `ticket_id`); the first
//! `packs` win. Roll two offers each (`district_id`, `product_id`) group's
//! leftover packs to the group's flexible roll-one losers ranked by
//! (`roll_2(i)`, `ticket_id`); each in turn wins at the group's pharmacy with
//! the most packs left (ties: smallest `pharmacy_id`).
//!
//! Entrants are strictly ascending by `ticket_id`, so ranking by (roll,
//! entrant index) is ranking by (roll, `ticket_id`); the core below works on
//! indices and never needs the ticket text until it writes `result.csv`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use rayon::prelude::*;

use crate::rolls::{rolls, POOL_ROLL, SPILL_ROLL};
use crate::snapshot::{Entrant, Ident, PoolIndex, StockLine, TicketId};

/// Why a draw could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    /// More entrants than the u32 index space of the draw core.
    #[error("{count} entrants exceed the draw's limit of 4294967295")]
    TooManyEntrants {
        /// How many were given.
        count: u64,
    },
    /// Entrants are not strictly ascending by `ticket_id`.
    #[error("entrant {index} is not after entrant {} by ticket_id", index - 1)]
    EntrantsNotSorted {
        /// 0-based index of the first entrant out of order.
        index: u64,
    },
    /// Stock lines are not strictly ascending by (`pharmacy_id`, `product_id`).
    #[error("stock line {index} is not after stock line {} by (pharmacy_id, product_id)", index - 1)]
    StockNotSorted {
        /// 0-based index.
        index: u64,
    },
    /// An entrant names a pool missing from the stock.
    #[error(
        "entrant {index} names pool ({pharmacy_id}, {product_id}), which the stock does not list"
    )]
    UnknownPool {
        /// 0-based entrant index.
        index: u64,
        /// Pharmacy.
        pharmacy_id: String,
        /// Product.
        product_id: String,
    },
    /// The entrants given are not the whole snapshot (a scan that stopped at a
    /// broken rule or had no pool index).
    #[error("the entrants are incomplete: the scan stopped at a broken rule or had no stock")]
    Incomplete,
    /// A group's leftover packs do not fit in a u64.
    #[error("leftover packs of group ({district_id}, {product_id}) overflow")]
    PacksOverflow {
        /// District.
        district_id: String,
        /// Product.
        product_id: String,
    },
}

/// Which roll a winner won in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Roll {
    /// Roll one, the pool roll: at the entrant's own pharmacy.
    One = 1,
    /// Roll two, the spill roll: at a pharmacy of the same district.
    Two = 2,
}

impl Roll {
    /// `1` or `2`.
    #[must_use]
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// One winner of the draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Winner {
    /// 0-based index of the entrant (its line in `entrants.csv`, minus one).
    pub entrant_index: u64,
    /// The entrant's ticket.
    pub ticket_id: TicketId,
    /// Where the pack is picked up (the assigned pharmacy in roll two).
    pub pharmacy_id: Ident,
    /// The product.
    pub product_id: Ident,
    /// Roll won in.
    pub roll: Roll,
}

/// One line of `pools.csv`, with the pool's district and leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    /// Pharmacy.
    pub pharmacy_id: Ident,
    /// District.
    pub district_id: Ident,
    /// Product.
    pub product_id: Ident,
    /// Entrants naming this pool.
    pub entrants: u64,
    /// Packs on offer.
    pub packs: u64,
    /// Roll-one winners.
    pub winners: u64,
    /// Largest winning `roll_1`; `None` when entrants ≤ packs or packs = 0.
    pub cutoff: Option<u64>,
    /// Packs left after roll one.
    pub leftover: u64,
}

/// One line of `spill.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpillSummary {
    /// District.
    pub district_id: Ident,
    /// Product.
    pub product_id: Ident,
    /// The group's packs left after roll one.
    pub leftover: u64,
    /// The group's flexible roll-one losers.
    pub candidates: u64,
    /// Roll-two winners.
    pub winners: u64,
    /// Largest winning `roll_2`; `None` without winners.
    pub cutoff: Option<u64>,
}

/// Everything a draw produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawOutcome {
    /// Bytes of `result.csv`.
    pub result_csv: Vec<u8>,
    /// Bytes of `pools.csv`.
    pub pools_csv: Vec<u8>,
    /// Bytes of `spill.csv`.
    pub spill_csv: Vec<u8>,
    /// Winners ascending by `ticket_id`.
    pub winners: Vec<Winner>,
    /// Per stock line, in stock order.
    pub pools: Vec<PoolSummary>,
    /// Per group with leftover packs, ascending by (`district_id`, `product_id`).
    pub spill: Vec<SpillSummary>,
}

/// Runs both rolls over parsed entrants and stock with a 32-byte seed.
///
/// `person_tag` uniqueness is a rule of the snapshot, checked by
/// [`crate::snapshot::parse_entrants`]; the draw does not depend on it.
///
/// # Errors
/// [`DrawError`] when entrants or stock are out of order, an entrant names an
/// unlisted pool, or counts overflow.
pub fn draw(
    entrants: &[Entrant],
    stock: &[StockLine],
    seed: &[u8; 32],
) -> Result<DrawOutcome, DrawError> {
    if entrants.len() as u64 > u64::from(u32::MAX) {
        return Err(DrawError::TooManyEntrants {
            count: entrants.len() as u64,
        });
    }
    for (i, w) in stock.windows(2).enumerate() {
        if w[1].pool() <= w[0].pool() {
            return Err(DrawError::StockNotSorted {
                index: i as u64 + 1,
            });
        }
    }
    for (i, w) in entrants.windows(2).enumerate() {
        if w[1].ticket_id <= w[0].ticket_id {
            return Err(DrawError::EntrantsNotSorted {
                index: i as u64 + 1,
            });
        }
    }
    let index = PoolIndex::new(stock);
    let mut entries = Vec::with_capacity(entrants.len());
    for (i, e) in entrants.iter().enumerate() {
        let pool =
            index
                .get(&e.pharmacy_id, &e.product_id)
                .ok_or_else(|| DrawError::UnknownPool {
                    index: i as u64,
                    pharmacy_id: e.pharmacy_id.to_string(),
                    product_id: e.product_id.to_string(),
                })?;
        entries.push(pack_entry(pool, e.flexible));
    }
    let core = run(&entries, stock, seed)?;
    Ok(core.into_outcome(stock, |i| entrants[i as usize].ticket_id))
}

/// [`draw`] over a streaming scan of `entrants.csv` ([`crate::scan::scan_entrants_file`] with the
/// stock's [`PoolIndex`]): the same outcome, without building a `Vec<Entrant>` (the fast path for
/// days of millions of entrants; the scan parses on every core).
///
/// # Errors
/// [`DrawError::Incomplete`] when the scan found a broken line or has no pool entries, and the
/// errors of [`draw`].
pub fn draw_scanned(
    scan: &crate::scan::EntrantScan,
    stock: &[StockLine],
    seed: &[u8; 32],
) -> Result<DrawOutcome, DrawError> {
    if scan.error.is_some()
        || scan.entries.len() as u64 != scan.lines
        || scan.tickets.len() as u64 != scan.lines
    {
        return Err(DrawError::Incomplete);
    }
    let core = run(&scan.entries, stock, seed)?;
    Ok(core.into_outcome(stock, |i| TicketId::from_u128(scan.tickets[i as usize])))
}

/// An entrant as the core sees it: pool index and flexible flag.
pub(crate) fn pack_entry(pool: u32, flexible: bool) -> u32 {
    (pool << 1) | u32::from(flexible)
}

/// A winner as the core records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CoreWinner {
    pub index: u32,
    pub pool: u32,
    pub roll: Roll,
}

/// The draw's result before any ticket text is attached.
#[derive(Debug)]
pub(crate) struct Core {
    pub winners: Vec<CoreWinner>,
    pub pools: Vec<PoolSummary>,
    pub spill: Vec<SpillSummary>,
}

/// The draw over packed entries (`pool << 1 | flexible`, pools valid for
/// `stock`, entrants in ticket order).
pub(crate) fn run(
    entries: &[u32],
    stock: &[StockLine],
    seed: &[u8; 32],
) -> Result<Core, DrawError> {
    let n = entries.len();
    let pools_n = stock.len();
    // Counting sort of entrants by pool; each pool's members stay ascending.
    let mut offsets = vec![0usize; pools_n + 1];
    for &e in entries {
        offsets[(e >> 1) as usize + 1] += 1;
    }
    for p in 0..pools_n {
        offsets[p + 1] += offsets[p];
    }
    let mut members = vec![0u32; n];
    {
        let mut cursor = offsets.clone();
        for (i, &e) in entries.iter().enumerate() {
            let p = (e >> 1) as usize;
            members[cursor[p]] = i as u32;
            cursor[p] += 1;
        }
    }
    let pool_members = |p: usize| &members[offsets[p]..offsets[p + 1]];

    // Roll one.
    let roll1 = rolls(seed, POOL_ROLL, n);
    let roll_one: Vec<(Vec<u32>, Option<u64>, u64)> = (0..pools_n)
        .into_par_iter()
        .map(|p| {
            let m = pool_members(p);
            let packs = stock[p].packs;
            let entrants = m.len() as u64;
            if entrants <= packs {
                (m.to_vec(), None, packs - entrants)
            } else if packs == 0 {
                (Vec::new(), None, 0)
            } else {
                let k = packs as usize;
                let mut keys: Vec<(u64, u32)> = m.iter().map(|&i| (roll1[i as usize], i)).collect();
                keys.select_nth_unstable(k - 1);
                let cutoff = keys[k - 1].0;
                (keys[..k].iter().map(|&(_, i)| i).collect(), Some(cutoff), 0)
            }
        })
        .collect();
    drop(roll1);

    let mut won = vec![false; n];
    let mut winners: Vec<CoreWinner> = Vec::new();
    let mut pools = Vec::with_capacity(pools_n);
    for (p, (ws, cutoff, leftover)) in roll_one.iter().enumerate() {
        for &i in ws {
            won[i as usize] = true;
            winners.push(CoreWinner {
                index: i,
                pool: p as u32,
                roll: Roll::One,
            });
        }
        let s = &stock[p];
        pools.push(PoolSummary {
            pharmacy_id: s.pharmacy_id,
            district_id: s.district_id,
            product_id: s.product_id,
            entrants: pool_members(p).len() as u64,
            packs: s.packs,
            winners: ws.len() as u64,
            cutoff: *cutoff,
            leftover: *leftover,
        });
    }
    drop(roll_one);

    // Roll two: groups by (district, product), ascending.
    let mut groups: BTreeMap<(Ident, Ident), Vec<u32>> = BTreeMap::new();
    for (p, s) in stock.iter().enumerate() {
        groups
            .entry((s.district_id, s.product_id))
            .or_default()
            .push(p as u32);
    }
    let mut open: Vec<((Ident, Ident), Vec<u32>, u64)> = Vec::new();
    for (key, group_pools) in groups {
        let mut leftover = 0u64;
        for &p in &group_pools {
            leftover = leftover
                .checked_add(pools[p as usize].leftover)
                .ok_or_else(|| DrawError::PacksOverflow {
                    district_id: key.0.to_string(),
                    product_id: key.1.to_string(),
                })?;
        }
        if leftover > 0 {
            open.push((key, group_pools, leftover));
        }
    }
    let roll2 = if open.is_empty() {
        Vec::new()
    } else {
        rolls(seed, SPILL_ROLL, n)
    };
    let roll_two: Vec<(SpillSummary, Vec<CoreWinner>)> = open
        .par_iter()
        .map(|((district_id, product_id), group_pools, leftover)| {
            let mut keys: Vec<(u64, u32)> = Vec::new();
            for &p in group_pools {
                for &i in pool_members(p as usize) {
                    if !won[i as usize] && entries[i as usize] & 1 == 1 {
                        keys.push((roll2[i as usize], i));
                    }
                }
            }
            let candidates = keys.len() as u64;
            let k = (*leftover).min(candidates) as usize;
            let mut spill_winners = Vec::with_capacity(k);
            let mut cutoff = None;
            if k > 0 {
                keys.select_nth_unstable(k - 1);
                let ranked = &mut keys[..k];
                ranked.sort_unstable();
                cutoff = Some(ranked[k - 1].0);
                // Most packs left first; among equals the smallest pool index,
                // which within a group is the smallest pharmacy_id.
                let mut heap: BinaryHeap<(u64, Reverse<u32>)> = group_pools
                    .iter()
                    .filter(|&&p| pools[p as usize].leftover > 0)
                    .map(|&p| (pools[p as usize].leftover, Reverse(p)))
                    .collect();
                for &(_, i) in ranked.iter() {
                    let Some((left, Reverse(p))) = heap.pop() else {
                        break;
                    };
                    spill_winners.push(CoreWinner {
                        index: i,
                        pool: p,
                        roll: Roll::Two,
                    });
                    if left > 1 {
                        heap.push((left - 1, Reverse(p)));
                    }
                }
            }
            (
                SpillSummary {
                    district_id: *district_id,
                    product_id: *product_id,
                    leftover: *leftover,
                    candidates,
                    winners: spill_winners.len() as u64,
                    cutoff,
                },
                spill_winners,
            )
        })
        .collect();
    let mut spill = Vec::with_capacity(roll_two.len());
    for (summary, ws) in roll_two {
        spill.push(summary);
        winners.extend(ws);
    }
    winners.par_sort_unstable_by_key(|w| w.index);
    Ok(Core {
        winners,
        pools,
        spill,
    })
}

fn cutoff_text(c: Option<u64>) -> String {
    c.map_or_else(|| "-".to_string(), |v| format!("{v:016x}"))
}

impl Core {
    /// Bytes of `result.csv`, given each winner's ticket.
    pub(crate) fn result_csv(
        &self,
        stock: &[StockLine],
        ticket: impl Fn(u32) -> TicketId,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.winners.len() * 48);
        for w in &self.winners {
            let s = &stock[w.pool as usize];
            out.extend_from_slice(ticket(w.index).as_bytes());
            out.push(b',');
            out.extend_from_slice(s.pharmacy_id.as_bytes());
            out.push(b',');
            out.extend_from_slice(s.product_id.as_bytes());
            out.push(b',');
            out.push(b'0' + w.roll.number());
            out.push(b'\n');
        }
        out
    }

    /// Bytes of `pools.csv`.
    pub(crate) fn pools_csv(&self) -> Vec<u8> {
        let mut out = String::new();
        for p in &self.pools {
            out.push_str(&format!(
                "{},{},{},{},{},{}\n",
                p.pharmacy_id,
                p.product_id,
                p.entrants,
                p.packs,
                p.winners,
                cutoff_text(p.cutoff)
            ));
        }
        out.into_bytes()
    }

    /// Bytes of `spill.csv`.
    pub(crate) fn spill_csv(&self) -> Vec<u8> {
        let mut out = String::new();
        for g in &self.spill {
            out.push_str(&format!(
                "{},{},{},{},{},{}\n",
                g.district_id,
                g.product_id,
                g.leftover,
                g.candidates,
                g.winners,
                cutoff_text(g.cutoff)
            ));
        }
        out.into_bytes()
    }

    pub(crate) fn into_outcome(
        self,
        stock: &[StockLine],
        ticket: impl Fn(u32) -> TicketId,
    ) -> DrawOutcome {
        let result_csv = self.result_csv(stock, &ticket);
        let pools_csv = self.pools_csv();
        let spill_csv = self.spill_csv();
        let winners = self
            .winners
            .iter()
            .map(|w| Winner {
                entrant_index: u64::from(w.index),
                ticket_id: ticket(w.index),
                pharmacy_id: stock[w.pool as usize].pharmacy_id,
                product_id: stock[w.pool as usize].product_id,
                roll: w.roll,
            })
            .collect();
        DrawOutcome {
            result_csv,
            pools_csv,
            spill_csv,
            winners,
            pools: self.pools,
            spill: self.spill,
        }
    }
}
