//! `trunkguard complaints`: import a CSV file of complaints, list them.

use std::io::Write;
use std::path::Path;

use chrono::{Duration, Utc};

use super::args::Period;
use super::CliError;
use crate::config::TrunkConfig;
use crate::monitor::complaint_csv::read_complaints;
use crate::monitor::persist::complaint_rollup;
use crate::policy::number_owners;
use crate::store::{NewComplaint, Store};

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub stored: usize,
    pub already_stored: usize,
    pub linked_calls: usize,
    /// About a number no trunk owns (stored, but no trunk's figures count them).
    pub unmatched: usize,
}

/// Reads the whole file (all or nothing), stores each complaint once with the calls it is about
/// (from `link_days` before it) and counts it in the KPI buckets. The running gateway feeds new
/// complaints to its rules within a second.
pub async fn import(
    store: &Store,
    trunks: &[TrunkConfig],
    file: &Path,
    link_days: i64,
    out: &mut impl Write,
) -> Result<Imported, CliError> {
    let f = std::fs::File::open(file)
        .map_err(|e| CliError::io(format!("opening {}", file.display()), e))?;
    let rows = read_complaints(std::io::BufReader::new(f))?;
    let owner = number_owners(trunks);
    let now = Utc::now();
    let mut done = Imported::default();
    for row in rows {
        let trunk = owner.get(&row.caller_id).cloned();
        let deltas = match &trunk {
            Some(t) => complaint_rollup(t, &row.caller_id, row.time),
            None => {
                done.unmatched += 1;
                Vec::new()
            }
        };
        let c = NewComplaint {
            complainant: row.complainant,
            caller_id: row.caller_id,
            trunk,
            received_at: row.time,
            category: row.category,
            source: row.source,
            text: row.text,
        };
        match store
            .insert_complaint_counted(&c, Duration::days(link_days), now, deltas)
            .await?
        {
            Some(s) => {
                done.stored += 1;
                done.linked_calls += s.cdr_ids.len();
            }
            None => done.already_stored += 1,
        }
    }
    writeln!(
        out,
        "{} complaint(s) stored, {} already stored, {} call(s) linked, {} about numbers of no trunk",
        done.stored, done.already_stored, done.linked_calls, done.unmatched
    )
    .map_err(|e| CliError::io("writing", e))?;
    Ok(done)
}

/// Complaints of a period as JSON lines, with the calls they are linked to.
/// `number` is normalized (`values::number_value`).
pub async fn list(
    store: &Store,
    period: &Period,
    number: Option<&str>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    for s in store.complaints(period.from, period.to, number).await? {
        let c = &s.complaint;
        let line = serde_json::json!({
            "id": s.id, "complainant": c.complainant, "caller_id": c.caller_id,
            "trunk": c.trunk, "time": c.received_at, "category": c.category,
            "source": c.source, "text": c.text, "calls": s.cdr_ids,
        });
        writeln!(out, "{line}").map_err(|e| CliError::io("writing", e))?;
    }
    Ok(())
}
