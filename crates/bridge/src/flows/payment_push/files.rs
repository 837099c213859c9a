//! The CSV transport: payment files uploaded to Coupa's SFTP server, then followed to the
//! `data_file_sources` record Coupa's loader makes for each, whose per-row errors are mapped back
//! to the ERP rows.
//!
//! A file's life is kept in the journal under `file:<name>`, each step written before the next
//! action:
//!
//! 1. `prepared`: the rows (ERP payment, Coupa invoice) the file holds. Its payments are now
//!    *in flight*: no other file takes them.
//! 2. `uploaded`: the file is in the incoming folder (uploaded under a temporary name, then
//!    renamed, so the loader never sees half a file).
//! 3. `settled`: the loader's record was read and every row's outcome written to the ERP; or
//!    `abandoned`: the file never arrived (or Coupa stopped its load), and its payments are
//!    free for a new file, where they are compared with the invoice's payments first.
//!
//! A crash between upload and confirmation leaves `prepared` or `uploaded`; the next pass looks
//! for the file in the incoming folder, then in the archive, then for its record, in the order
//! Coupa moves it, so a file on its way is never missed and its payments never go out twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use coupa_api::query::{Op, Query};
use coupa_api::wire::DataFileSource;
use coupa_api::{Client, DataFileStatus};
use serde::{Deserialize, Serialize};

use super::csv_file::PaymentFile;
use super::{FLOW, Outcomes};
use crate::erp::PaymentSync;
use crate::failpoint;
use crate::flows::FlowError;
use crate::sftp::{Sftp, SftpError, SftpTarget};
use crate::store::Store;

pub mod step {
    pub const PREPARED: &str = "prepared";
    pub const UPLOADED: &str = "uploaded";
    pub const SETTLED: &str = "settled";
    pub const ABANDONED: &str = "abandoned";
    /// Steps of a file Coupa has not answered for yet.
    pub const OPEN: [&str; 2] = [PREPARED, UPLOADED];
}

/// What the journal keeps of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    /// `rows[i]` is CSV row `i + 2`.
    pub rows: Vec<FileRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRow {
    pub payment_id: i64,
    pub payment_ref: String,
    pub invoice_id: i64,
}

fn key(name: &str) -> String {
    format!("file:{name}")
}

/// How a row error reads when the payment was already on the invoice (the simulator's and
/// Coupa's loader both start it so): the payment is there, which is what was wanted.
const DUPLICATE_PREFIX: &str = "Duplicate payment";

/// The outcome of every row of a file from the loader's record, or `None` while the load is
/// not finished. A stopped load gives `Some` with no outcomes: its rows are compared again.
pub fn outcomes(entry: &FileEntry, record: &DataFileSource) -> Option<Vec<(i64, PaymentSync)>> {
    let status = record.status.as_ref()?;
    if !status.is_final() {
        return None;
    }
    let synced = |r: &FileRow| PaymentSync::Synced {
        coupa_invoice_id: r.invoice_id,
    };
    match status {
        DataFileStatus::Done => {
            let mut errors: HashMap<i64, Vec<String>> = HashMap::new();
            for e in &record.upload_errors {
                if let Some(row) = e.row {
                    let messages = errors.entry(row).or_default();
                    if e.field_errors.is_empty() {
                        messages.push(format!(
                            "{} '{}'",
                            e.field_with_error.as_deref().unwrap_or("row"),
                            e.value.as_deref().unwrap_or("")
                        ));
                    }
                    messages.extend(e.field_errors.iter().cloned());
                }
            }
            Some(
                entry
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let row = i as i64 + 2;
                        let outcome = match errors.get(&row) {
                            None => synced(r),
                            Some(m) if m.iter().all(|m| m.starts_with(DUPLICATE_PREFIX)) => {
                                synced(r)
                            }
                            Some(m) => PaymentSync::Failed {
                                reason: format!(
                                    "Coupa's loader refused row {row} of {}: {}",
                                    entry.name,
                                    m.join("; ")
                                ),
                                coupa_invoice_id: Some(r.invoice_id),
                            },
                        };
                        (r.payment_id, outcome)
                    })
                    .collect(),
            )
        }
        DataFileStatus::Failed => {
            let mut why = record
                .result_text
                .clone()
                .unwrap_or_else(|| "the file was rejected".into());
            let header: Vec<String> = record
                .upload_errors
                .iter()
                .flat_map(|e| e.field_errors.iter().cloned())
                .collect();
            if !header.is_empty() {
                why = format!("{why} ({})", header.join("; "));
            }
            Some(
                entry
                    .rows
                    .iter()
                    .map(|r| {
                        (
                            r.payment_id,
                            PaymentSync::Failed {
                                reason: format!("Coupa's loader rejected {}: {why}", entry.name),
                                coupa_invoice_id: Some(r.invoice_id),
                            },
                        )
                    })
                    .collect(),
            )
        }
        _ => Some(Vec::new()),
    }
}

/// Rows the loader found on the invoice already: synced, but not added by this file.
fn duplicate_rows(record: &DataFileSource) -> usize {
    let rows: HashSet<i64> = record
        .upload_errors
        .iter()
        .filter(|e| {
            !e.field_errors.is_empty()
                && e.field_errors
                    .iter()
                    .all(|m| m.starts_with(DUPLICATE_PREFIX))
        })
        .filter_map(|e| e.row)
        .collect();
    rows.len()
}

/// The CSV transport of one pass.
pub struct Files {
    pub client: Client,
    pub store: Store,
    /// Needed to upload, and to look for a file a crash left `prepared`.
    pub sftp: Option<SftpTarget>,
    pub incoming_dir: String,
    pub run: i64,
    /// How long [`Files::follow`] waits for the loader's records.
    pub wait: Duration,
    /// Ends that wait early (shutdown): what is unanswered is followed by the next pass.
    pub stop: crate::flows::Stop,
}

/// A connection opened on first use, so following files already uploaded costs no SFTP login.
struct Lazy {
    target: Option<SftpTarget>,
    conn: Option<Sftp>,
}

impl Lazy {
    async fn get(&mut self) -> Result<&Sftp, SftpError> {
        if self.conn.is_none() {
            let Some(target) = &self.target else {
                return Err(SftpError::Io {
                    op: "connect",
                    path: String::new(),
                    reason: "payments.sftp is not configured".into(),
                });
            };
            self.conn = Some(Sftp::connect(target).await?);
        }
        // Set just above when it was empty.
        self.conn
            .as_ref()
            .ok_or(SftpError::Timeout { op: "connect" })
    }

    async fn close(self) {
        if let Some(c) = self.conn {
            c.close().await;
        }
    }
}

fn sftp_failure(e: SftpError) -> FlowError {
    FlowError::Sftp(e.to_string())
}

impl Files {
    fn archive_dir(&self) -> String {
        format!("/Archive{}", self.incoming_dir)
    }

    fn lazy(&self) -> Lazy {
        Lazy {
            target: self.sftp.clone(),
            conn: None,
        }
    }

    /// Journals and uploads `files`. A file whose upload fails stays `prepared`; [`Files::follow`]
    /// finds out whether it arrived. Refused credentials or host key end the pass.
    pub async fn upload(&self, files: Vec<PaymentFile>) -> Result<(), FlowError> {
        let mut sftp = self.lazy();
        let result = self.upload_on(&mut sftp, files).await;
        sftp.close().await;
        result
    }

    async fn upload_on(&self, sftp: &mut Lazy, files: Vec<PaymentFile>) -> Result<(), FlowError> {
        let now = chrono::Utc::now();
        let mut n = 1;
        for file in files {
            let name = loop {
                let name = super::csv_file::file_name(now, n);
                n += 1;
                if self.store.journal_get(FLOW, &key(&name)).await?.is_none() {
                    break name;
                }
            };
            let entry = FileEntry {
                name: name.clone(),
                rows: file
                    .rows
                    .iter()
                    .map(|r| FileRow {
                        payment_id: r.payment.id,
                        payment_ref: r.payment.payment_ref.clone(),
                        invoice_id: r.invoice_id,
                    })
                    .collect(),
            };
            self.put(&entry, step::PREPARED).await?;
            failpoint::hit("file-prepared");
            let uploaded = match sftp.get().await {
                Ok(conn) => conn.upload(&self.incoming_dir, &name, &file.bytes).await,
                Err(e) => Err(e),
            };
            match uploaded {
                Ok(()) => {
                    failpoint::hit("file-renamed");
                    self.put(&entry, step::UPLOADED).await?;
                    tracing::info!(file = %name, rows = entry.rows.len(), "payment file uploaded");
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(file = %name, error = %e, "payment file upload failed");
                }
                Err(e) => return Err(sftp_failure(e)),
            }
        }
        Ok(())
    }

    async fn put(&self, entry: &FileEntry, step: &str) -> Result<(), FlowError> {
        // A FileEntry is plain data; serialising it cannot fail.
        let detail = serde_json::to_string(entry).unwrap_or_default();
        self.store
            .journal_put(FLOW, &key(&entry.name), step, &detail, Some(self.run))
            .await?;
        Ok(())
    }

    /// The payment ids in files Coupa has not answered for: never put in another file.
    pub async fn in_flight(store: &Store) -> Result<HashSet<i64>, FlowError> {
        let mut ids = HashSet::new();
        for (_, e) in store.journal_at_steps(FLOW, &step::OPEN).await? {
            if let Ok(entry) = serde_json::from_str::<FileEntry>(&e.detail) {
                ids.extend(entry.rows.iter().map(|r| r.payment_id));
            }
        }
        Ok(ids)
    }

    /// Follows every open file until Coupa answered for it or the wait is over. Answered files
    /// come back in `files_done` with their rows' outcomes in `settled`; the caller writes the
    /// outcomes to the ERP, then marks the files settled.
    pub async fn follow(&self) -> Result<Outcomes, FlowError> {
        let open = self.store.journal_at_steps(FLOW, &step::OPEN).await?;
        let mut out = Outcomes::default();
        if open.is_empty() {
            return Ok(out);
        }
        let mut sftp = self.lazy();
        let result = self.follow_on(&mut sftp, open, &mut out).await;
        sftp.close().await;
        result.map(|()| out)
    }

    async fn follow_on(
        &self,
        sftp: &mut Lazy,
        open: Vec<(String, crate::store::JournalEntry)>,
        out: &mut Outcomes,
    ) -> Result<(), FlowError> {
        let mut waiting: Vec<FileEntry> = Vec::new();
        for (k, j) in open {
            let entry: FileEntry = match serde_json::from_str(&j.detail) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(key = %k, error = %e, "unreadable payment file journal entry; left as it is");
                    continue;
                }
            };
            if j.step == step::PREPARED {
                match self.arrived(sftp, &entry.name).await {
                    Ok(true) => self.put(&entry, step::UPLOADED).await?,
                    Ok(false) => {
                        tracing::info!(file = %entry.name, "payment file never arrived; its payments go in a new file");
                        self.remove_temp(sftp, &entry.name).await;
                        self.put(&entry, step::ABANDONED).await?;
                        continue;
                    }
                    Err(e) if e.is_transient() => {
                        out.transient.extend(
                            entry
                                .rows
                                .iter()
                                .map(|r| (r.payment_id, format!("file {}: {e}", entry.name))),
                        );
                        continue;
                    }
                    Err(e) => return Err(sftp_failure(e)),
                }
            }
            waiting.push(entry);
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut pause = Duration::from_millis(100);
        loop {
            let mut still = Vec::new();
            for entry in waiting {
                let rec = match self.record(&entry.name).await {
                    Ok(Some(rec)) => rec,
                    Ok(None) => {
                        still.push(entry);
                        continue;
                    }
                    Err(FlowError::Coupa(e)) if e.class() != coupa_api::ErrorClass::Auth => {
                        tracing::warn!(file = %entry.name, error = %e, "cannot read the load record yet");
                        still.push(entry);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match outcomes(&entry, &rec) {
                    None => still.push(entry),
                    Some(settled) if settled.is_empty() => {
                        tracing::warn!(file = %entry.name, status = ?rec.status, "Coupa stopped the load; its payments are compared again");
                        self.put(&entry, step::ABANDONED).await?;
                    }
                    Some(settled) => {
                        let synced = settled
                            .iter()
                            .filter(|(_, s)| matches!(s, PaymentSync::Synced { .. }))
                            .count();
                        out.added += synced.saturating_sub(duplicate_rows(&rec)) as u64;
                        out.settled.extend(settled);
                        out.refs.extend(
                            entry
                                .rows
                                .iter()
                                .map(|r| (r.payment_id, r.payment_ref.clone())),
                        );
                        out.files_done.push(entry);
                    }
                }
            }
            waiting = still;
            if waiting.is_empty()
                || self.stop.requested()
                || tokio::time::Instant::now() + pause > deadline
            {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.stop.wait() => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        for entry in waiting {
            out.transient.extend(entry.rows.iter().map(|r| {
                (
                    r.payment_id,
                    format!("file {} awaits Coupa's loader", entry.name),
                )
            }));
        }
        Ok(())
    }

    /// Whether a `prepared` file reached Coupa: looked for where Coupa moves it, in that order
    /// (incoming, archive, load record), so a file moving meanwhile is still seen.
    async fn arrived(&self, sftp: &mut Lazy, name: &str) -> Result<bool, SftpError> {
        let conn = sftp.get().await?;
        if conn
            .exists(&format!("{}/{name}", self.incoming_dir))
            .await?
        {
            return Ok(true);
        }
        if conn
            .exists(&format!("{}/{name}", self.archive_dir()))
            .await?
        {
            return Ok(true);
        }
        match self.record(name).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(SftpError::Io {
                op: "looking up the load record",
                path: name.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// Removes what a crashed upload may have left under the temporary name; best effort.
    async fn remove_temp(&self, sftp: &mut Lazy, name: &str) {
        let path = format!("{}/.{name}.part", self.incoming_dir);
        if let Ok(conn) = sftp.get().await
            && let Err(e) = conn.remove(&path).await
        {
            tracing::debug!(%path, error = %e, "no temporary upload to remove");
        }
    }

    /// The loader's record of a file, found by its name.
    async fn record(&self, name: &str) -> Result<Option<DataFileSource>, FlowError> {
        let q = Query::new().filter("file-file-name", Op::EndsWith, name);
        let found = self
            .client
            .data_file_sources()
            .list(q)
            .collect_all()
            .await?;
        // The newest record is the load that counts.
        Ok(found.into_iter().flatten().max_by_key(|r| r.id.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupa_doc::json;

    fn entry() -> FileEntry {
        FileEntry {
            name: "payments_20261121_090000Z_.csv".into(),
            rows: (1..=3)
                .map(|i| FileRow {
                    payment_id: i,
                    payment_ref: format!("PAY-{i}"),
                    invoice_id: 100 + i,
                })
                .collect(),
        }
    }

    fn record(body: &str) -> DataFileSource {
        coupa_api::wire::decode(&json::parse(body.as_bytes()).expect("json")).expect("record")
    }

    #[test]
    fn row_errors_fail_their_rows_and_duplicates_count_as_there() {
        let rec = record(
            r#"{"id":5,"status":"done","upload-errors":[
                {"type":"UploadRowError","row":3,"field-errors":["Duplicate payment: invoice 'X' (id 102) already has it"]},
                {"type":"UploadRowError","row":4,"field-with-error":"Check Amount Paid","value":"x","field-errors":["Check Amount Paid is not a number"]}]}"#,
        );
        let got = outcomes(&entry(), &rec).expect("final");
        assert_eq!(
            got,
            vec![
                (
                    1,
                    PaymentSync::Synced {
                        coupa_invoice_id: 101
                    }
                ),
                (
                    2,
                    PaymentSync::Synced {
                        coupa_invoice_id: 102
                    }
                ),
                (
                    3,
                    PaymentSync::Failed {
                        reason: "Coupa's loader refused row 4 of payments_20261121_090000Z_.csv: \
                                 Check Amount Paid is not a number"
                            .into(),
                        coupa_invoice_id: Some(103)
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_rejected_file_fails_every_row_and_unfinished_loads_wait() {
        let rec = record(
            r#"{"id":5,"status":"failed","result-text":"File rejected: bad header.","upload-errors":[
                {"type":"UploadHeaderError","row":1,"field-errors":["Column header X is not valid."]}]}"#,
        );
        let got = outcomes(&entry(), &rec).expect("final");
        assert_eq!(got.len(), 3);
        assert!(
            got.iter()
                .all(|(_, s)| matches!(s, PaymentSync::Failed { reason, .. }
            if reason.contains("File rejected: bad header. (Column header X is not valid.)")))
        );
        assert_eq!(
            outcomes(&entry(), &record(r#"{"id":5,"status":"loading"}"#)),
            None
        );
        assert_eq!(outcomes(&entry(), &record(r#"{"id":5}"#)), None);
        assert_eq!(
            outcomes(&entry(), &record(r#"{"id":5,"status":"stopped"}"#)),
            Some(Vec::new())
        );
    }
}
