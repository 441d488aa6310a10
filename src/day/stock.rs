//! `maskdraw stock import|show`: the day's packs per pharmacy and product.

use chrono::NaiveDate;

use super::{DayContext, DayError};
use crate::catalog::Catalog;
use crate::domain::{PharmacyId, ProductId};
use crate::store::day::{self, StockRow};

/// Parses an officials' stock file: `pharmacy_id,product_id,packs` per line, an optional
/// header line, blank lines ignored. Checked against the catalog; errors name the line.
///
/// # Errors
/// `Refused` with every bad line (up to 20) listed by number.
pub fn parse(text: &str, catalog: &Catalog) -> Result<Vec<StockRow>, DayError> {
    let mut rows: Vec<StockRow> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || (n == 1 && line.starts_with("pharmacy_id")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [ph, pr, packs] = fields.as_slice() else {
            errors.push(format!("line {n}: expected pharmacy_id,product_id,packs"));
            continue;
        };
        let pharmacy = match PharmacyId::parse(ph)
            .ok()
            .and_then(|p| catalog.pharmacy(p.as_str()))
        {
            Some(p) => p,
            None => {
                errors.push(format!("line {n}: unknown pharmacy {ph:?}"));
                continue;
            }
        };
        if ProductId::parse(pr)
            .ok()
            .and_then(|p| catalog.product(p.as_str()))
            .is_none()
        {
            errors.push(format!("line {n}: unknown product {pr:?}"));
            continue;
        }
        let Ok(packs) = packs.parse::<u32>() else {
            errors.push(format!(
                "line {n}: packs {packs:?} is not a whole number from 0 to 4294967295"
            ));
            continue;
        };
        if !seen.insert((ph.to_string(), pr.to_string())) {
            errors.push(format!("line {n}: {ph},{pr} is listed twice"));
            continue;
        }
        rows.push(StockRow {
            pharmacy_id: ph.to_string(),
            district_id: pharmacy.district.to_string(),
            product_id: pr.to_string(),
            packs: i64::from(packs),
        });
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(20);
        let mut msg = errors.into_iter().take(20).collect::<Vec<_>>().join("\n");
        if more > 0 {
            msg.push_str(&format!("\n… and {more} more"));
        }
        return Err(DayError::Refused(msg));
    }
    Ok(rows)
}

/// Imports the stock of `date`, replacing any earlier import; refused once the date is sealed.
///
/// # Errors
/// When the file breaks a rule, the date is sealed, or the database fails.
pub async fn import(
    ctx: &DayContext,
    date: NaiveDate,
    text: &str,
) -> Result<Vec<StockRow>, DayError> {
    let rows = parse(text, &ctx.catalog)?;
    if day::seal(&ctx.db, date).await?.is_some() {
        return Err(DayError::Refused(format!(
            "{date} is sealed already; its stock can no longer change"
        )));
    }
    day::replace_stock(&ctx.db, date, &rows).await?;
    Ok(rows)
}

/// A table of the day's stock with totals by district and product.
pub fn render(date: NaiveDate, rows: &[StockRow]) -> String {
    let mut out = format!("stock for {date}: {} line(s)\n", rows.len());
    let mut by: std::collections::BTreeMap<(&str, &str), i64> = std::collections::BTreeMap::new();
    for r in rows {
        *by.entry((&r.district_id, &r.product_id)).or_default() += r.packs;
    }
    out.push_str(&format!(
        "{:<12} {:<10} {:>10}\n",
        "district", "product", "packs"
    ));
    for ((d, p), n) in &by {
        out.push_str(&format!("{d:<12} {p:<10} {n:>10}\n"));
    }
    out.push_str(&format!(
        "{:<12} {:<10} {:>10}\n",
        "total",
        "",
        rows.iter().map(|r| r.packs).sum::<i64>()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/static"
        )))
        .unwrap()
    }

    #[test]
    fn a_good_file_with_a_header_imports_with_districts_from_the_catalog() {
        let cat = catalog();
        let (id, ph) = cat.pharmacies.iter().next().unwrap();
        let rows = parse(
            &format!("pharmacy_id,product_id,packs\n{id},KN95,12\n\n{id},MED-SURG,0\n"),
            &cat,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].district_id, ph.district.to_string());
        assert_eq!(rows[1].packs, 0);
    }

    #[test]
    fn every_bad_line_is_reported_by_number() {
        let cat = catalog();
        let id = cat.pharmacies.keys().next().unwrap();
        let err = parse(
            &format!("{id},KN95,1\nNOPE,KN95,1\n{id},N100,1\n{id},KN95,-3\n{id},KN95,1\nfoo\n"),
            &cat,
        )
        .unwrap_err()
        .to_string();
        for want in [
            "line 2: unknown pharmacy",
            "line 3: unknown product",
            "line 4: packs",
            "line 5:",
            "line 6: expected",
        ] {
            assert!(err.contains(want), "{want} not in {err}");
        }
    }
}
