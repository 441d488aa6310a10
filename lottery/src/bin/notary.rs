//! `notary`: verify, replay and prove a sealed snapshot directory with no
//! database, broker or network (DESIGN.md, "Who uses it": notary, pharma group).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lottery::sample::{generate, SampleOptions};
use lottery::sign::parse_public_key_file;
use lottery::verify::{replay_dir, verify_dir_with_progress};

#[derive(Parser)]
#[command(
    name = "notary",
    version,
    about = "Verify, replay and prove maskdraw's sealed snapshot directories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every check on a sealed (or sealed and drawn) directory; one line per
    /// check, `PASS <check>` or `FAIL <check>: <why>`; exit 0 only if all pass.
    Verify {
        /// The snapshot directory.
        dir: PathBuf,
        /// The authority's pinned public key file (64 hex + LF).
        #[arg(long)]
        key: PathBuf,
        /// The previous day's directory, to check the seal chain link.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// A witness whose cosignature seal.cosig.PARTY must hold: PARTY=PUBFILE (repeatable).
        #[arg(long = "witness", value_name = "PARTY=PUBFILE")]
        witnesses: Vec<String>,
    },
    /// As a witness, countersign a sealed, not yet drawn directory: verify it under the
    /// authority's key, refuse a date the state file holds with another seal, record the
    /// (date, seal id) in the state, write DIR/seal.cosig.PARTY.
    Cosign {
        /// The sealed directory.
        dir: PathBuf,
        /// The witness's secret key file (64 hex + LF; `notary keygen` makes one).
        #[arg(long)]
        key: PathBuf,
        /// The witness's party name, [a-z0-9-]{1,32}.
        #[arg(long)]
        party: String,
        /// The witness's own state file of cosigned (date, seal id) lines (created if missing).
        #[arg(long)]
        state: PathBuf,
        /// The authority's pinned public key file.
        #[arg(long)]
        authority: PathBuf,
    },
    /// Make a new Ed25519 key pair for a witness: SECRETFILE (mode 0600, must not exist, name
    /// ending in .key) and its public key beside it (.pub).
    Keygen {
        /// Where to write the secret key, e.g. notary.key.
        secret: PathBuf,
    },
    /// Verify every YYYY-MM-DD directory of a snapshots directory and the seal chain between
    /// them: one summary line per day (gaps, forks and breaks named), then a total; exit 0 only
    /// if every day verified and linked.
    VerifyChain {
        /// The snapshots directory (holding one directory per draw date).
        dir: PathBuf,
        /// The authority's pinned public key file (64 hex + LF).
        #[arg(long)]
        key: PathBuf,
    },
    /// Check an intake receipt: its signature under the intake key, then, for every sealed day
    /// of SNAPSHOTS it was guaranteed to enter, that the ticket is in entrants.csv, or the
    /// published rule that kept it out; exit 1 on an omission.
    Receipt {
        /// The receipt file (maskdraw-receipt-v1).
        receipt: PathBuf,
        /// The intake's public key file (intake.pub, published beside authority.pub).
        #[arg(long)]
        key: PathBuf,
        /// The snapshots directory (one YYYY-MM-DD directory per draw date).
        #[arg(long)]
        snapshots: PathBuf,
        /// The authority's pinned public key: tie every day used to its signatures.
        #[arg(long)]
        authority: Option<PathBuf>,
    },
    /// Recompute result.csv, pools.csv and spill.csv into OUTDIR from seal.txt,
    /// stock.csv, entrants.csv and draw.txt's reveal:/material: lines.
    Replay {
        /// The snapshot directory.
        dir: PathBuf,
        /// Where to write the three files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print one ticket's inclusion proof, rolls, cutoffs and result as JSON.
    Proof {
        /// The snapshot directory.
        dir: PathBuf,
        /// The ticket id (ULID).
        ticket_id: String,
    },
    /// (Re)write the proof tiles entrants.tiles from entrants.csv alone (for a day
    /// received without them); with seal.txt in DIR, only if they match its root.
    Tiles {
        /// The snapshot directory.
        dir: PathBuf,
        /// Where to write entrants.tiles (default: DIR).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compute the fairness audit of a drawn directory from entrants.csv, stock.csv and
    /// result.csv alone, write it to DIR/audit.txt (or --out) and print it; exit 1 when a
    /// deviation is beyond the bound.
    Audit {
        /// The snapshot directory.
        dir: PathBuf,
        /// Where to write audit.txt (default: DIR/audit.txt; `-` prints only).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a synthetic sealed and drawn directory, signed by a throwaway key
    /// derived from the seed (authority.pub is written beside the files).
    Sample {
        /// Where to write it.
        outdir: PathBuf,
        /// Number of entrants.
        #[arg(long)]
        entrants: u64,
        /// Number of pharmacies (two products each).
        #[arg(long)]
        pharmacies: u32,
        /// Seed of every random choice and of the key.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// An indicatif bar behind the library's progress trait; hidden when stderr
/// is not a terminal.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }
}

impl lottery::Progress for Bar {
    fn start(&self, stage: &str, total: u64) {
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.reset();
        if total == 0 {
            self.bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            self.bar.enable_steady_tick(Duration::from_millis(120));
        } else {
            self.bar.set_length(total);
            self.bar.set_style(
                ProgressStyle::with_template(
                    "{msg:<20} [{bar:40}] {percent:>3}% {elapsed} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
        }
        self.bar.set_message(stage.to_string());
    }
    fn set(&self, done: u64) {
        self.bar.set_position(done);
    }
    fn finish(&self) {
        self.bar.disable_steady_tick();
        self.bar.finish_and_clear();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify {
            dir,
            key,
            previous,
            witnesses,
        } => verify(&dir, &key, previous.as_deref(), &witnesses),
        Command::Cosign {
            dir,
            key,
            party,
            state,
            authority,
        } => cosign(&dir, &key, &party, &state, &authority),
        Command::Keygen { secret } => keygen(&secret).map(|()| ExitCode::SUCCESS),
        Command::VerifyChain { dir, key } => verify_chain(&dir, &key),
        Command::Receipt {
            receipt,
            key,
            snapshots,
            authority,
        } => check_receipt(&receipt, &key, &snapshots, authority.as_deref()),
        Command::Replay { dir, out } => replay(&dir, &out).map(|()| ExitCode::SUCCESS),
        Command::Proof { dir, ticket_id } => proof(&dir, &ticket_id),
        Command::Tiles { dir, out } => {
            tiles(&dir, out.as_deref().unwrap_or(&dir)).map(|()| ExitCode::SUCCESS)
        }
        Command::Audit { dir, out } => audit(&dir, out.as_deref()),
        Command::Sample {
            outdir,
            entrants,
            pharmacies,
            seed,
        } => sample(&outdir, entrants, pharmacies, seed).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("notary: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read_public_key(path: &Path) -> anyhow::Result<lottery::sign::PublicKey> {
    let bytes = lottery::limits::read_at_most(path, lottery::limits::KEY_OR_SIGNATURE_MAX)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    parse_public_key_file(&bytes).with_context(|| format!("key file {}", path.display()))
}

fn verify_chain(dir: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    let key = read_public_key(key)?;
    let report = lottery::chain::verify_chain(dir, &key, &Bar::new())?;
    print!("{report}");
    Ok(if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify(
    dir: &Path,
    key: &Path,
    previous: Option<&Path>,
    witness_args: &[String],
) -> anyhow::Result<ExitCode> {
    let key = read_public_key(key)?;
    let mut witnesses = Vec::new();
    for w in witness_args {
        let (party, file) = w
            .split_once('=')
            .with_context(|| format!("--witness {w:?}: expected PARTY=PUBFILE"))?;
        if !lottery::text::check_party(party) {
            anyhow::bail!("--witness {w:?}: the party must match [a-z0-9-]{{1,32}}");
        }
        witnesses.push((party.to_string(), read_public_key(Path::new(file))?));
    }
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut report = verify_dir_with_progress(dir, &key, previous, &Bar::new());
    report
        .checks
        .extend(lottery::cosign::witness_checks(dir, &witnesses));
    print!("{report}");
    Ok(if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cosign(
    dir: &Path,
    key: &Path,
    party: &str,
    state: &Path,
    authority: &Path,
) -> anyhow::Result<ExitCode> {
    let authority = read_public_key(authority)?;
    let bytes = lottery::limits::read_at_most(key, lottery::limits::KEY_OR_SIGNATURE_MAX)
        .with_context(|| format!("cannot read key file {}", key.display()))?;
    let secret = lottery::sign::parse_secret_key_file(&bytes)
        .with_context(|| format!("key file {}", key.display()))?;
    match lottery::cosign::cosign_dir(dir, &authority, &secret, party, state) {
        Ok(done) => {
            println!(
                "{} {} seal {} for {}: wrote {}",
                party,
                if done.repeated {
                    "had cosigned"
                } else {
                    "cosigned"
                },
                hex::encode(done.seal_id),
                done.draw_date,
                done.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        // The one refusal that is evidence against the authority gets its own exit status.
        Err(e @ lottery::cosign::CosignError::Equivocation { .. }) => {
            eprintln!("notary: {e}");
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e.into()),
    }
}

fn keygen(secret: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let name = secret
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let Some(stem) = name.strip_suffix(".key").filter(|s| !s.is_empty()) else {
        anyhow::bail!(
            "{}: the secret key file's name must end in .key",
            secret.display()
        );
    };
    let public = secret.with_file_name(format!("{stem}.pub"));
    if public.exists() {
        anyhow::bail!(
            "{} exists already; refusing to overwrite a key",
            public.display()
        );
    }
    let key = lottery::sign::SecretKey::generate(&mut rand_core::OsRng);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(secret).with_context(|| {
        format!(
            "cannot create {} (refusing to overwrite a key)",
            secret.display()
        )
    })?;
    f.write_all(lottery::sign::secret_key_file(&key).as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", secret.display()))?;
    std::fs::write(
        &public,
        lottery::sign::public_key_file(&key.verifying_key()),
    )
    .with_context(|| format!("cannot write {}", public.display()))?;
    println!(
        "wrote {} (secret, 0600) and {}",
        secret.display(),
        public.display()
    );
    Ok(())
}

fn check_receipt(
    file: &Path,
    key: &Path,
    snapshots: &Path,
    authority: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let intake = read_public_key(key)?;
    let authority = authority.map(read_public_key).transpose()?;
    let bytes = lottery::limits::read_at_most(file, lottery::limits::TEXT_MAX)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let signed = lottery::receipt::SignedReceipt::parse(&bytes)
        .with_context(|| format!("{}", file.display()))?;
    signed
        .verify(&intake)
        .with_context(|| format!("{}", file.display()))?;
    let report = lottery::receipt::check_receipt(&signed, snapshots, authority.as_ref())?;
    print!("{report}");
    Ok(if report.all_kept() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn replay(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let replayed = replay_dir(dir, &Bar::new())?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, bytes) in [
        ("result.csv", &replayed.result_csv),
        ("pools.csv", &replayed.pools_csv),
        ("spill.csv", &replayed.spill_csv),
    ] {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "replayed with seed {}: {} winners written to {}",
        hex::encode(replayed.seed),
        replayed.winners,
        out.display()
    );
    Ok(())
}

fn proof(dir: &Path, ticket_id: &str) -> anyhow::Result<ExitCode> {
    use lottery::proof::{DayProofs, FullReadReason, ProofError, ProofSource};
    // A malformed id is refused before any file is read.
    if lottery::snapshot::TicketId::parse(ticket_id.as_bytes()).is_err() {
        return Err(ProofError::BadTicketId(ticket_id.to_string()).into());
    }
    let (result, source) = DayProofs::open(dir)?.proof_with_source(ticket_id);
    // Tiles that are missing are optional; tiles that are there but wrong are damage.
    if let ProofSource::FullRead(
        why @ (FullReadReason::Unusable(_) | FullReadReason::Disagrees(_)),
    ) = &source
    {
        eprintln!(
            "notary: warning: {why}; answered from entrants.csv alone (run `notary verify`; \
             `notary tiles` rewrites {})",
            lottery::tiles::TILES_FILE
        );
    }
    match result {
        Ok(p) => {
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ProofError::UnknownTicket(_)) => {
            eprintln!("notary: {e}");
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e.into()),
    }
}

fn audit(dir: &Path, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let audit = lottery::audit::audit_dir(dir)?;
    let default = dir.join(lottery::audit::AUDIT_FILE);
    let path = out.unwrap_or(&default);
    if path != Path::new("-") {
        std::fs::write(path, &audit.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    print!("{}", String::from_utf8_lossy(&audit.text));
    Ok(if audit.is_flagged() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn tiles(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let tiles = lottery::tiles::rebuild(dir, out, &Bar::new())?;
    println!(
        "wrote {}: {} entrants, {} bytes ({:.2} per entrant), root {}",
        out.join(lottery::tiles::TILES_FILE).display(),
        tiles.entrants(),
        tiles.len(),
        tiles.len() as f64 / tiles.entrants().max(1) as f64,
        hex::encode(tiles.root())
    );
    Ok(())
}

fn sample(outdir: &Path, entrants: u64, pharmacies: u32, seed: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let options = SampleOptions {
        entrants,
        pharmacies,
        seed,
    };
    let s = generate(outdir, &options, &Bar::new())?;
    println!("sample written to {}", outdir.display());
    println!("  entrants            {}", s.entrants);
    println!(
        "  pharmacies          {} in {} districts, {} pools",
        s.pharmacies, s.districts, s.pools
    );
    println!("  packs               {}", s.packs);
    println!("  oversubscribed      {} pools", s.oversubscribed_pools);
    println!(
        "  winners             {} in roll one, {} in roll two",
        s.winners_roll_one, s.winners_roll_two
    );
    println!("  spill groups        {}", s.spill_groups);
    println!("  entrants_root       {}", hex::encode(s.root));
    println!("  seal_id             {}", hex::encode(s.seal_id));
    println!(
        "  key                 {} (throwaway, derived from --seed {seed})",
        hex::encode(s.public_key.to_bytes())
    );
    println!(
        "  took                {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
