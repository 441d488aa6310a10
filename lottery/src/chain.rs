//! The whole chain at once (`notary verify-chain`, SPEC.md §14): every `YYYY-MM-DD` directory
//! of a snapshots directory verified on its own, each seal's `previous` checked against the day
//! before it, and gaps, forks and breaks named, one summary line per day.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::limits::{read_at_most, TEXT_MAX};
use crate::merkle::Hash;
use crate::text::{check_date, date_from_days, days_from_date, SealText};
use crate::verify::{verify_dir_with_progress, Report, DRAW_FILES};
use crate::Progress;

/// Why the chain could not be walked at all.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The snapshots directory cannot be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// How a day's seal links to the day before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// `previous:-` on the first day: the chain starts here.
    Start,
    /// The first day present links to a seal not in the directory: the chain starts earlier
    /// (a download of recent days); not a failure.
    StartsEarlier(Hash),
    /// `previous` is the seal id of the day before it in the directory.
    Linked {
        /// That day.
        previous_date: String,
    },
    /// `previous` matches no day in the directory: a sealed day is missing in between.
    Gap {
        /// The seal id it names.
        previous: Hash,
        /// The day before it in the directory.
        previous_date: String,
    },
    /// `previous` is the seal id of an earlier day that another day also links to.
    Fork {
        /// The day both link to.
        previous_date: String,
        /// The other day.
        other: String,
    },
    /// `previous` names a seal that is not of the day before it, nor shared with another day
    /// (e.g. `previous:-` after the first day, or a link that skips a present day).
    Broken(String),
    /// `seal.txt` is unreadable or invalid, so no link can be read.
    Unreadable,
}

impl Link {
    /// Whether the link is sound.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Link::Start | Link::StartsEarlier(_) | Link::Linked { .. }
        )
    }
}

/// One day of the chain.
#[derive(Debug, Clone)]
pub struct ChainDay {
    /// The directory name (`YYYY-MM-DD`).
    pub date: String,
    /// `SHA-256(seal.txt)`, when readable.
    pub seal_id: Option<Hash>,
    /// The link to the day before.
    pub link: Link,
    /// Dates without a directory between the day before and this one.
    pub missing_dates: Vec<String>,
    /// The day's own verification (`verify_dir` without `--previous`).
    pub report: Report,
    /// Whether the day has draw files.
    pub drawn: bool,
}

impl ChainDay {
    /// Whether the day verified and links soundly.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.report.all_passed() && self.link.is_ok()
    }
}

/// The whole chain.
#[derive(Debug, Clone, Default)]
pub struct ChainReport {
    /// Every date directory, ascending.
    pub days: Vec<ChainDay>,
    /// Entries of the directory that look like a date but are not one.
    pub bad_names: Vec<String>,
}

impl ChainReport {
    /// Whether every day verified and linked, and no name was invalid.
    #[must_use]
    pub fn all_passed(&self) -> bool {
        !self.days.is_empty() && self.bad_names.is_empty() && self.days.iter().all(ChainDay::is_ok)
    }
}

fn short(h: &Hash) -> String {
    hex::encode(&h[..6])
}

impl fmt::Display for ChainReport {
    /// One line per day, `<date> PASS|FAIL seal <12 hex> <link>; <checks>`, a line per
    /// missing date, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for name in &self.bad_names {
            writeln!(f, "{name} FAIL not a calendar date")?;
        }
        for d in &self.days {
            let seal = d.seal_id.as_ref().map_or_else(|| "-".to_string(), short);
            let link = match &d.link {
                Link::Start => "starts the chain".to_string(),
                Link::StartsEarlier(p) => {
                    format!("links to {}, before the first day here", short(p))
                }
                Link::Linked { previous_date } => format!("links to {previous_date}"),
                Link::Gap {
                    previous,
                    previous_date,
                } => format!(
                    "GAP: links to {}, no day here (a sealed day after {previous_date} is missing)",
                    short(previous)
                ),
                Link::Fork {
                    previous_date,
                    other,
                } => format!("FORK: links to {previous_date}, as {other} does"),
                Link::Broken(why) => format!("BREAK: {why}"),
                Link::Unreadable => "BREAK: seal.txt is unreadable or invalid".to_string(),
            };
            let total = d.report.checks.len();
            let failed: Vec<_> = d.report.failures().collect();
            let checks = match failed.first() {
                None => format!(
                    "{total} checks passed{}",
                    if d.drawn { ", drawn" } else { ", sealed only" }
                ),
                Some(first) => match &first.outcome {
                    crate::verify::Outcome::Failed(why) => format!(
                        "{} of {total} checks failed, first: {}: {why}",
                        failed.len(),
                        first.name
                    ),
                    crate::verify::Outcome::Ok => String::new(),
                },
            };
            for m in &d.missing_dates {
                writeln!(f, "{m} ---- no directory")?;
            }
            writeln!(
                f,
                "{} {} seal {seal} {link}; {checks}",
                d.date,
                if d.is_ok() { "PASS" } else { "FAIL" }
            )?;
        }
        let failed = self.days.iter().filter(|d| !d.is_ok()).count() + self.bad_names.len();
        match (self.days.first(), self.days.last()) {
            (Some(first), Some(last)) => writeln!(
                f,
                "chain: {} days from {} to {}, {} failed",
                self.days.len(),
                first.date,
                last.date,
                failed
            ),
            _ => writeln!(f, "chain: no YYYY-MM-DD directory, nothing verified"),
        }
    }
}

fn looks_like_date(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Verifies every `YYYY-MM-DD` directory of `snapshots` and the links between them.
///
/// # Errors
/// [`ChainError`] when the directory cannot be listed; everything else is in the report.
pub fn verify_chain(
    snapshots: &Path,
    key: &VerifyingKey,
    progress: &dyn Progress,
) -> Result<ChainReport, ChainError> {
    let list_err = |source| ChainError::List {
        path: snapshots.to_path_buf(),
        source,
    };
    let mut names: Vec<String> = Vec::new();
    let mut bad_names = Vec::new();
    for entry in std::fs::read_dir(snapshots).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !looks_like_date(&name) || !entry.path().is_dir() {
            continue;
        }
        if check_date(&name) {
            names.push(name);
        } else {
            bad_names.push(name);
        }
    }
    names.sort();
    bad_names.sort();

    // Seal ids and previous links first, so that forks can name both days.
    let seals: Vec<(Option<Hash>, Option<SealText>)> = names
        .iter()
        .map(
            |n| match read_at_most(&snapshots.join(n).join("seal.txt"), TEXT_MAX) {
                Ok(bytes) => {
                    let id: Hash = Sha256::digest(&bytes).into();
                    (Some(id), SealText::parse(&bytes).ok())
                }
                Err(_) => (None, None),
            },
        )
        .collect();
    let by_id: BTreeMap<Hash, usize> = seals
        .iter()
        .enumerate()
        .filter_map(|(i, (id, _))| id.map(|id| (id, i)))
        .collect();
    let mut claims: BTreeMap<Hash, Vec<usize>> = BTreeMap::new();
    for (i, (_, seal)) in seals.iter().enumerate() {
        if let Some(Some(p)) = seal.as_ref().map(|s| s.previous) {
            claims.entry(p).or_default().push(i);
        }
    }

    let mut days = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let dir = snapshots.join(name);
        let report = verify_dir_with_progress(&dir, key, None, progress);
        let link = match &seals[i].1 {
            None => Link::Unreadable,
            Some(seal) => match (seal.previous, i) {
                (None, 0) => Link::Start,
                (None, _) => {
                    Link::Broken(format!("previous:- but {} comes before it", names[i - 1]))
                }
                (Some(p), 0) if !by_id.contains_key(&p) => Link::StartsEarlier(p),
                (Some(p), _) => {
                    let others: Vec<usize> = claims
                        .get(&p)
                        .map(|v| v.iter().copied().filter(|&j| j != i).collect())
                        .unwrap_or_default();
                    match by_id.get(&p) {
                        _ if !others.is_empty() && by_id.contains_key(&p) => Link::Fork {
                            previous_date: names[by_id[&p]].clone(),
                            other: names[others[0]].clone(),
                        },
                        Some(&j) if i > 0 && j == i - 1 => Link::Linked {
                            previous_date: names[j].clone(),
                        },
                        Some(&j) => Link::Broken(format!(
                            "links to {}, not to {}, the day before it here",
                            names[j],
                            if i > 0 { names[i - 1].as_str() } else { "-" }
                        )),
                        None => Link::Gap {
                            previous: p,
                            previous_date: if i > 0 {
                                names[i - 1].clone()
                            } else {
                                "-".into()
                            },
                        },
                    }
                }
            },
        };
        let missing_dates = if i > 0 {
            let (a, b) = (
                days_from_date(&names[i - 1]).unwrap_or(0),
                days_from_date(name).unwrap_or(0),
            );
            // A long pause between seals is listed as its bounds only.
            if b - a - 1 > 31 {
                vec![format!(
                    "{}..{}",
                    date_from_days(a + 1),
                    date_from_days(b - 1)
                )]
            } else {
                (a + 1..b).map(date_from_days).collect()
            }
        } else {
            Vec::new()
        };
        let drawn = DRAW_FILES.iter().any(|f| dir.join(f).exists());
        days.push(ChainDay {
            date: name.clone(),
            seal_id: seals[i].0,
            link,
            missing_dates,
            report,
            drawn,
        });
    }
    Ok(ChainReport { days, bad_names })
}
