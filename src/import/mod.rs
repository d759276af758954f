//! `keystone-rs db import --from URL`: adopt a running Python Keystone's database,
//! keeping every id, password hash and revocation, in one transaction.

use crate::config::SourceUrl;
use crate::error::{Error, Result};
use crate::model::{ImportProgress, ImportTable};
use crate::store::{ImportWrite, KeystoneSource, Store};

/// One line of the final table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyReport {
    pub family: &'static str,
    pub read: usize,
    pub written: usize,
    pub skipped: usize,
    /// Why rows were skipped (distinct reasons, first few).
    pub why: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ImportReport {
    pub revisions: Vec<String>,
    pub families: Vec<FamilyReport>,
    /// False for `--dry-run`.
    pub written: bool,
}

fn report(tables: &[ImportTable], written: bool) -> Vec<FamilyReport> {
    tables
        .iter()
        .map(|t| {
            let mut why: Vec<String> = Vec::new();
            for reason in &t.skipped {
                if !why.contains(reason) && why.len() < 3 {
                    why.push(reason.clone());
                }
            }
            FamilyReport {
                family: t.family,
                read: t.read,
                written: if written { t.rows.len() } else { 0 },
                skipped: t.skipped.len(),
                why,
            }
        })
        .collect()
}

/// Reads everything (refusing an unknown schema), then, unless `dry_run`, writes it
/// all in one transaction. A non-empty target is refused without `replace`.
pub async fn import(
    target: &Store,
    from: &SourceUrl,
    replace: bool,
    dry_run: bool,
    progress: &dyn ImportProgress,
) -> Result<ImportReport> {
    progress.reading();
    let result = run(target, from, replace, dry_run, progress).await;
    progress.finished();
    result
}

async fn run(
    target: &Store,
    from: &SourceUrl,
    replace: bool,
    dry_run: bool,
    progress: &dyn ImportProgress,
) -> Result<ImportReport> {
    let source = KeystoneSource::open(from).await.map_err(source_error)?;
    let revisions = source.check_schema().await.map_err(source_error)?;
    let tables = source.read_all().await.map_err(source_error)?;
    if dry_run {
        return Ok(ImportReport {
            revisions,
            families: report(&tables, false),
            written: false,
        });
    }
    match target
        .import_tables(&tables, replace, progress)
        .await
        .map_err(source_error)?
    {
        ImportWrite::Written => Ok(ImportReport {
            revisions,
            families: report(&tables, true),
            written: true,
        }),
        ImportWrite::TargetNotEmpty { rows } => Err(Error::validation(format!(
            "the target database already holds {rows} identity rows; nothing was imported (--replace empties it first)"
        ))),
    }
}

/// Source problems are the operator's to fix: a clear message, not a 500-style error.
fn source_error(e: crate::store::StoreError) -> Error {
    match e {
        crate::store::StoreError::Corrupt { detail, .. } => Error::validation(detail),
        other => other.into(),
    }
}

impl ImportReport {
    /// The final table: family, read, written, skipped (why).
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<28} {:>8} {:>8} {:>8}  why skipped\n",
            "family", "read", "written", "skipped"
        );
        for f in &self.families {
            out.push_str(&format!(
                "{:<28} {:>8} {:>8} {:>8}  {}\n",
                f.family,
                f.read,
                f.written,
                f.skipped,
                f.why.join("; ")
            ));
        }
        out
    }
}
