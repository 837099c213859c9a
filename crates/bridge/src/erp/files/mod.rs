//! The `files` adapter (`erp.kind = "files"`): an ERP fed through folders, local or on its SFTP
//! server. Each document is written, mapped ([`Mapping`]), into the outbox for the ERP's import
//! job; the ERP answers later with result files in the inbox; it may drop payment files into the
//! payments inbox. The ledger (`erp.url`) keeps what was delivered and what the ERP answered.
//!
//! # Exactly-once delivery
//!
//! Outbox names are deterministic: `invoice-<coupa id>.<ext>`, `cancel-<coupa id>.<ext>`,
//! `coupa-pay-<id>-<updated-at, compact>.<ext>`. A document D (ledger key `invoice:<id>`,
//! `cancel:<id>`, `pay:<id>`) goes out in steps, each recorded before the next:
//!
//! 1. The ledger holds D `staged` (in whatever version): step 3 first, since its file may
//!    already be visible. Then, D `sent` or `answered`: nothing is written.
//! 2. The ledger holds nothing: the bytes go to `.<name>.part` (replacing any leftover: a dot
//!    file is never picked up by the ERP; flushed to disk locally), then D is recorded `staged`
//!    (failpoint `erp-file-staged`).
//! 3. D `staged`: if `.<name>.part` is there it is renamed to `<name>` (atomic, locally and on
//!    SFTP) (failpoint `erp-file-published`), and D is recorded `sent`. If the `.part` is gone,
//!    the rename already happened (only this adapter touches `.part` files), so D is just
//!    recorded `sent`. A crash anywhere resumes at the recorded step and never makes a second
//!    visible file.
//!
//! # Answers
//!
//! An invoice or a cancellation is then `Pending` until the ERP answers. Asking again (the
//! invoice flow does on each pass) first reads the inbox (at most once a second, once per
//! batch, and only when something delivered awaits an answer: a result file arriving when
//! nothing waits stays until something does): each result file's records
//! ([`Mapping::read_results`]) are kept in the ledger as D's answer (failpoint
//! `erp-result-kept`), then the file moves to `inbox/processed/`. A file that cannot be read
//! moves to `inbox/unreadable/`. A file with records that cannot be taken (unreadable, or for a
//! document never delivered) has its good records kept and moves to `inbox/unreadable/` as a
//! whole, each problem logged with the file and the record: `processed/` only ever holds files
//! taken whole, and a person sees every file that had a problem, complete. Nothing stops the
//! pass. A crash before the move reads the file again: keeping an answer twice is harmless, and
//! the first answer kept is never replaced by a different one (the flow may have acted on it).
//! A `pending` record changes nothing.
//!
//! An invoice the ERP rejected can be delivered again once it changed in Coupa (its version is
//! a hash of the rendered file): the same content is answered with the kept rejection.
//!
//! A document the mapping cannot render is [`ErpError::Refused`] (left for the next pass, seen
//! as a document waiting): a mapping line or a value map is as likely at fault as the invoice,
//! and nothing half-mapped is ever written.
//!
//! # Coupa Pay and payments
//!
//! Coupa Pay payments are delivered the same way, one file per version (Coupa's `updated-at`;
//! a newer `updated-at` with the same content, as marking a payment exported makes, is no new
//! version), and answered at once. Payment files (`payments_inbox`) are read into the ledger
//! ([`SqlErp::accept_payments`], committed, idempotent by payment_ref; failpoint
//! `erp-payments-kept`), then moved to `processed/`, or to `unreadable/` when nothing in them
//! could be taken; each refused record is named (file, record, why) in [`Received::refused`].

mod folder;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use self::folder::{Folder, Remote};
use super::mapping::{MapError, Mapping};
use super::payments::Accepted;
use super::{
    BoxFuture, CancelOutcome, Delivery, DeliveryState, Erp, ErpAction, ErpCancel, ErpError,
    ErpInvoice, ErpPayPayment, ErpPayment, MalformedPayment, PayBooking, PayBookingChange,
    PaymentSync, PostOutcome, Received, SqlErp,
};
use crate::config::FilesErpConfig;
use crate::failpoint;
use crate::sftp::SftpTarget;

/// The inbox is read at most this often (a batch of invoices awaiting answers reads it once).
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Sub-folders of an inbox: files whose content is kept, and files a person must look at.
const PROCESSED: &str = "processed";
const UNREADABLE: &str = "unreadable";

/// An ERP reached through an outbox and an inbox folder.
pub struct FileErp {
    outbox: Folder,
    inbox: Folder,
    payments_inbox: Option<Folder>,
    mapping: Arc<Mapping>,
    ledger: Arc<SqlErp>,
    /// When the inbox was last read; held while reading, so two callers never both take the
    /// same file.
    refreshed: Mutex<Option<Instant>>,
}

/// What a Coupa Pay delivery keeps as its answer: the status delivered, and the one the ERP
/// held before (for `Updated`).
#[derive(Serialize, Deserialize)]
struct PayAnswer {
    status: String,
    previous_status: Option<String>,
    /// [`pay_content`] of the payment delivered: a newer `updated-at` with the same content
    /// (Coupa moves it when the payment is marked exported) is not a new version.
    #[serde(default)]
    content: String,
}

impl FileErp {
    /// Builds the adapter; `Err` names the setting that cannot be used. Nothing is connected
    /// or read here: the SFTP session opens on first use.
    pub async fn connect(
        settings: &FilesErpConfig,
        mapping: Arc<Mapping>,
        ledger: Arc<SqlErp>,
    ) -> Result<FileErp, ErpError> {
        let required = |value: &Option<String>, key: &str| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| ErpError::Refused(format!("{key} is not set")))
        };
        let outbox = required(&settings.outbox, "erp.files.outbox")?;
        let inbox = required(&settings.inbox, "erp.files.inbox")?;
        let payments_inbox = settings
            .payments_inbox
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let remote = match settings.sftp.host.as_deref() {
            Some(host) if !host.trim().is_empty() => Some(Remote::new(
                SftpTarget::from_config(&settings.sftp).map_err(|e| {
                    ErpError::Refused(e.replace("payments.sftp.", "erp.files.sftp."))
                })?,
            )),
            _ => None,
        };
        let folder = |role: &'static str, path: &str| match &remote {
            Some(server) => Folder::remote(role, path, server.clone()),
            None => Folder::local(role, path),
        };
        Ok(FileErp {
            outbox: folder("outbox", &outbox),
            inbox: folder("inbox", &inbox),
            payments_inbox: payments_inbox.map(|p| folder("payments inbox", p)),
            mapping,
            ledger,
            refreshed: Mutex::new(None),
        })
    }

    /// The delivery of `document` as the ledger holds it, a staged one first published (step
    /// 3): whatever version it is, its file may already be visible, so it is never staged
    /// again.
    async fn held(&self, document: &str) -> Result<Option<Delivery>, ErpError> {
        match self.ledger.delivery(document).await? {
            Some(d) if d.state == DeliveryState::Staged => Ok(Some(self.publish(d).await?)),
            held => Ok(held),
        }
    }

    /// Steps 2 and 3 for a document the ledger does not hold (or holds in an earlier version
    /// that is to be replaced): `answer` is kept with the delivery until the ERP's replaces it.
    async fn stage_and_publish(
        &self,
        document: &str,
        file: String,
        bytes: &[u8],
        version: String,
        answer: Option<String>,
    ) -> Result<Delivery, ErpError> {
        self.outbox.write(&part(&file), bytes).await?;
        let mut d = Delivery::new(document, DeliveryState::Staged);
        d.version = version;
        d.file = Some(file);
        d.answer = answer;
        let d = self.ledger.put_delivery(&d).await?;
        failpoint::hit("erp-file-staged");
        self.publish(d).await
    }

    /// Step 3: makes a staged file visible, then records it sent.
    async fn publish(&self, staged: Delivery) -> Result<Delivery, ErpError> {
        let Some(file) = staged.file.clone() else {
            return Err(ErpError::Unavailable(format!(
                "the ledger's delivery of {} names no file",
                staged.document
            )));
        };
        if self.outbox.exists(&part(&file)).await? {
            self.outbox.rename(&part(&file), &file).await?;
            tracing::info!(file = %self.outbox.shown_file(&file), document = %staged.document, "delivered to the ERP");
        }
        failpoint::hit("erp-file-published");
        let sent = Delivery {
            state: DeliveryState::Sent,
            sent_at: Some(crate::db::now()),
            ..staged
        };
        self.ledger.put_delivery(&sent).await
    }

    /// Reads the inbox unless it was read less than [`REFRESH_EVERY`] ago.
    async fn refresh(&self) -> Result<(), ErpError> {
        let mut last = self.refreshed.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
            return Ok(());
        }
        let names = self.inbox.list().await?;
        for name in names {
            self.take_result_file(&name).await?;
        }
        *last = Some(Instant::now());
        Ok(())
    }

    /// One result file: its answers kept, then the file moved out of the way.
    async fn take_result_file(&self, name: &str) -> Result<(), ErpError> {
        let shown = self.inbox.shown_file(name);
        let bytes = self.inbox.read(name).await?;
        let records = match self.mapping.read_results(&bytes, &shown) {
            Ok(records) => records,
            Err(why) => {
                let to = self.inbox.move_into(name, UNREADABLE).await?;
                tracing::error!(file = %shown, moved_to = %to, error = %why, "an ERP result file cannot be read; moved aside for a person to look at");
                return Ok(());
            }
        };
        let mut problems = 0usize;
        for (i, record) in records.into_iter().enumerate() {
            let at = i + 1;
            let result = match record {
                Ok(r) => r,
                Err(why) => {
                    tracing::error!(file = %shown, record = at, error = %why, "an unreadable record in an ERP result file");
                    problems += 1;
                    continue;
                }
            };
            let document = match result.action {
                ErpAction::Post => invoice_key(result.coupa_invoice_id),
                ErpAction::Cancel => cancel_key(result.coupa_invoice_id),
            };
            let Some(held) = self.ledger.delivery(&document).await? else {
                tracing::error!(file = %shown, record = at, document = %document, "an ERP result for a document never delivered");
                problems += 1;
                continue;
            };
            if result.outcome == PostOutcome::Pending {
                // The ERP has it and says so: still awaiting.
                continue;
            }
            let answer = serde_json::to_string(&result.outcome).unwrap_or_default();
            match (&held.state, &held.answer) {
                (DeliveryState::Answered, Some(kept)) if *kept != answer => {
                    tracing::warn!(file = %shown, record = at, document = %document, kept = %kept, ignored = %answer, "the ERP answered again differently; the first answer stands");
                    continue;
                }
                (DeliveryState::Answered, _) => continue,
                _ => {}
            }
            let answered = Delivery {
                state: DeliveryState::Answered,
                answer: Some(answer),
                answered_at: Some(crate::db::now()),
                ..held
            };
            self.ledger.put_delivery(&answered).await?;
        }
        failpoint::hit("erp-result-kept");
        if problems == 0 {
            self.inbox.move_into(name, PROCESSED).await?;
        } else {
            let to = self.inbox.move_into(name, UNREADABLE).await?;
            tracing::error!(file = %shown, moved_to = %to, problems, "an ERP result file had records that could not be taken (logged above); its good records are kept, the file is moved aside for a person to look at");
        }
        Ok(())
    }

    /// One invoice, without reading the inbox: delivered unless the ledger holds it. A
    /// rejected invoice goes again once its file would differ (it was fixed in Coupa); the same
    /// file keeps its rejection.
    async fn deliver_invoice(&self, invoice: &ErpInvoice) -> Result<Delivery, ErpError> {
        let document = invoice_key(invoice.coupa_invoice_id);
        let held = self.held(&document).await?;
        let rejected =
            |d: &Delivery| matches!(outcome_of(d), Some(Ok(PostOutcome::Rejected { .. })));
        if let Some(d) = &held
            && !rejected(d)
        {
            return Ok(d.clone());
        }
        let rendered = self.mapping.invoice(invoice).map_err(refused_mapping)?;
        let version = hash(&rendered.bytes);
        if let Some(d) = held
            && d.version == version
        {
            return Ok(d);
        }
        let file = format!(
            "invoice-{}.{}",
            invoice.coupa_invoice_id,
            rendered.format.extension()
        );
        self.stage_and_publish(&document, file, &rendered.bytes, version, None)
            .await
    }

    async fn post_many(&self, invoices: &[ErpInvoice]) -> Vec<Result<PostOutcome, ErpError>> {
        // Those already sent and awaiting answers learn them from one read of the inbox.
        let documents: Vec<String> = invoices
            .iter()
            .map(|i| invoice_key(i.coupa_invoice_id))
            .collect();
        let awaiting = match self.ledger.deliveries(&documents).await {
            Ok(held) => held.values().any(|d| d.state == DeliveryState::Sent),
            Err(e) => return invoices.iter().map(|_| Err(e.clone())).collect(),
        };
        let refreshed = if awaiting {
            self.refresh().await
        } else {
            Ok(())
        };
        let mut out = Vec::with_capacity(invoices.len());
        for invoice in invoices {
            let answer = match self.deliver_invoice(invoice).await {
                Err(e) => Err(e),
                Ok(d) => match (d.state, &refreshed) {
                    // Awaiting, and the inbox could not be read: say why.
                    (DeliveryState::Sent, Err(e)) => Err(e.clone()),
                    _ => answer_of(&d),
                },
            };
            out.push(answer);
        }
        out
    }

    async fn cancel(&self, coupa_invoice_id: i64) -> Result<CancelOutcome, ErpError> {
        let document = cancel_key(coupa_invoice_id);
        let held = match self.held(&document).await? {
            Some(d) => {
                if d.state == DeliveryState::Sent {
                    self.refresh().await?;
                    self.ledger.delivery(&document).await?.unwrap_or(d)
                } else {
                    d
                }
            }
            None => {
                // Never delivered, or rejected: the ERP does not hold the invoice.
                let invoice = self.ledger.delivery(&invoice_key(coupa_invoice_id)).await?;
                if invoice
                    .as_ref()
                    .is_none_or(|d| matches!(outcome_of(d), Some(Ok(PostOutcome::Rejected { .. }))))
                {
                    return Ok(CancelOutcome::NotPosted);
                }
                let rendered = self
                    .mapping
                    .cancel(&ErpCancel { coupa_invoice_id })
                    .map_err(refused_mapping)?;
                let file = format!("cancel-{coupa_invoice_id}.{}", rendered.format.extension());
                self.stage_and_publish(&document, file, &rendered.bytes, String::new(), None)
                    .await?
            }
        };
        match answer_of(&held)? {
            PostOutcome::Pending => Ok(CancelOutcome::Pending),
            PostOutcome::Accepted {
                document_number, ..
            } => Ok(CancelOutcome::Cancelled { document_number }),
            PostOutcome::Rejected { reasons } => Err(ErpError::Refused(format!(
                "the ERP refused to cancel invoice {coupa_invoice_id}: {}",
                reasons.join("; ")
            ))),
        }
    }

    async fn book(&self, payment: &ErpPayPayment) -> Result<PayBooking, ErpError> {
        let document = pay_key(payment.coupa_payment_id);
        let version = crate::db::timestamp(payment.coupa_updated_at);
        let booking = |change| PayBooking {
            change,
            unapplied: Vec::new(),
            paid: Vec::new(),
            reopened: Vec::new(),
        };
        // A staged version is published first; if it is this one, this call delivered it.
        let (held, fresh) = match self.ledger.delivery(&document).await? {
            Some(d) if d.state == DeliveryState::Staged => {
                let fresh = d.version == version;
                (Some(self.publish(d).await?), fresh)
            }
            held => (held, false),
        };
        let kept = |d: &Delivery| -> Option<PayAnswer> {
            d.answer
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
        };
        if let Some(d) = &held {
            if d.version == version {
                return Ok(booking(match kept(d).and_then(|a| a.previous_status) {
                    _ if !fresh => PayBookingChange::Unchanged,
                    Some(previous_status) => PayBookingChange::Updated { previous_status },
                    None => PayBookingChange::Inserted,
                }));
            }
            let newer_held = crate::db::parse_timestamp(&d.version)
                .is_ok_and(|held_at| held_at > payment.coupa_updated_at);
            if newer_held || kept(d).is_some_and(|a| a.content == pay_content(payment)) {
                return Ok(booking(PayBookingChange::Unchanged));
            }
        }
        let rendered = self.mapping.pay_payment(payment).map_err(refused_mapping)?;
        let previous_status = held.as_ref().and_then(kept).map(|a| a.status);
        let answer = PayAnswer {
            status: payment.status.clone(),
            previous_status: previous_status.clone(),
            content: pay_content(payment),
        };
        let file = format!(
            "coupa-pay-{}-{}.{}",
            payment.coupa_payment_id,
            payment.coupa_updated_at.format("%Y%m%dT%H%M%S%6fZ"),
            rendered.format.extension()
        );
        self.stage_and_publish(
            &document,
            file,
            &rendered.bytes,
            version,
            serde_json::to_string(&answer).ok(),
        )
        .await?;
        Ok(booking(match previous_status {
            None => PayBookingChange::Inserted,
            Some(previous_status) => PayBookingChange::Updated { previous_status },
        }))
    }

    async fn receive(&self) -> Result<Received, ErpError> {
        let mut received = Received::default();
        let Some(folder) = &self.payments_inbox else {
            return Ok(received);
        };
        for name in folder.list().await? {
            let shown = folder.shown_file(&name);
            let bytes = folder.read(&name).await?;
            let records = match self.mapping.read_payments(&bytes, &shown) {
                Ok(r) => r,
                Err(why) => {
                    let to = folder.move_into(&name, UNREADABLE).await?;
                    tracing::error!(file = %shown, moved_to = %to, error = %why, "an ERP payment file cannot be read; moved aside for a person to look at");
                    received
                        .refused
                        .push(format!("{shown}: cannot be read ({why}); moved to {to}"));
                    continue;
                }
            };
            let mut payments = Vec::new();
            let mut at = Vec::new();
            let mut refused = Vec::new();
            for (i, record) in records.into_iter().enumerate() {
                match record {
                    Ok(p) => {
                        payments.push(p);
                        at.push(i + 1);
                    }
                    Err(why) => refused.push(format!("{shown}: record {}: {why}", i + 1)),
                }
            }
            let accepted = self.ledger.accept_payments(&payments).await?;
            let mut taken = 0usize;
            for ((outcome, p), record) in accepted.iter().zip(&payments).zip(&at) {
                match outcome {
                    Accepted::Recorded { .. } => {
                        received.new += 1;
                        taken += 1;
                    }
                    Accepted::AlreadyRecorded { .. } => taken += 1,
                    Accepted::Conflict { reason, .. } => refused.push(format!(
                        "{shown}: record {record}: payment {}: {reason}",
                        p.payment_ref
                    )),
                }
            }
            failpoint::hit("erp-payments-kept");
            let nothing_taken = taken == 0 && !refused.is_empty();
            let to = folder
                .move_into(&name, if nothing_taken { UNREADABLE } else { PROCESSED })
                .await?;
            for why in &refused {
                tracing::error!(file = %shown, moved_to = %to, error = %why, "an ERP payment could not be taken");
            }
            received.refused.extend(refused);
        }
        Ok(received)
    }

    async fn problems(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, ErpError> {
        let documents: Vec<String> = ids.iter().map(|id| pay_key(*id)).collect();
        let held = self.ledger.deliveries(&documents).await?;
        Ok(ids
            .iter()
            .filter(|id| {
                held.get(&pay_key(**id))
                    .is_some_and(|d| d.state >= DeliveryState::Sent)
            })
            .map(|id| (*id, Vec::new()))
            .collect())
    }
}

/// The temporary name a file is written under: a dot file, which the ERP never picks up.
fn part(file: &str) -> String {
    format!(".{file}.part")
}

fn invoice_key(id: i64) -> String {
    format!("invoice:{id}")
}

fn cancel_key(id: i64) -> String {
    format!("cancel:{id}")
}

fn pay_key(id: i64) -> String {
    format!("pay:{id}")
}

/// The version of an invoice delivery: what was written, so a changed invoice can go again.
fn hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What a Coupa Pay payment says, apart from when Coupa last touched it: a hash of its
/// canonical JSON without `coupa_updated_at`.
fn pay_content(payment: &ErpPayPayment) -> String {
    let mut value = serde_json::to_value(payment).unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.remove("coupa_updated_at");
    }
    hash(value.to_string().as_bytes())
}

/// The ERP's answer a delivery holds, if any (`Err` when the ledger's text is not one).
fn outcome_of(d: &Delivery) -> Option<Result<PostOutcome, ErpError>> {
    if d.state != DeliveryState::Answered {
        return None;
    }
    Some(
        d.answer
            .as_deref()
            .and_then(|a| serde_json::from_str::<PostOutcome>(a).ok())
            .ok_or_else(|| {
                ErpError::Unavailable(format!(
                    "the ledger's answer for {} is not readable",
                    d.document
                ))
            }),
    )
}

/// The answer to give for a delivery: the ERP's, or `Pending` until it gave one.
fn answer_of(d: &Delivery) -> Result<PostOutcome, ErpError> {
    match outcome_of(d) {
        None => Ok(PostOutcome::Pending),
        Some(Ok(PostOutcome::Accepted {
            document_number, ..
        })) => Ok(PostOutcome::Accepted {
            document_number,
            already_posted: false,
        }),
        Some(answer) => answer,
    }
}

/// A document the mapping cannot render: the setup (the mapping) or the document must be fixed;
/// until then the document is tried again each pass, never written half-mapped.
fn refused_mapping(e: MapError) -> ErpError {
    ErpError::Refused(format!("the ERP mapping cannot render the document: {e}"))
}

impl Erp for FileErp {
    fn post_invoice<'a>(
        &'a self,
        invoice: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>> {
        Box::pin(async move {
            let mut answers = self.post_many(std::slice::from_ref(invoice)).await;
            answers.pop().unwrap_or(Ok(PostOutcome::Pending))
        })
    }

    fn post_invoices<'a>(
        &'a self,
        invoices: &'a [ErpInvoice],
    ) -> BoxFuture<'a, Vec<Result<PostOutcome, ErpError>>> {
        Box::pin(self.post_many(invoices))
    }

    fn cancel_invoice<'a>(
        &'a self,
        coupa_invoice_id: i64,
    ) -> BoxFuture<'a, Result<CancelOutcome, ErpError>> {
        Box::pin(self.cancel(coupa_invoice_id))
    }

    fn receive_payments(&self) -> BoxFuture<'_, Result<Received, ErpError>> {
        Box::pin(self.receive())
    }

    fn pending_payments(
        &self,
        after_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>> {
        self.ledger.pending_payments(after_id, limit)
    }

    fn settle_payments<'a>(
        &'a self,
        outcomes: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>> {
        self.ledger.settle_payments(outcomes)
    }

    fn book_pay_payment<'a>(
        &'a self,
        payment: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>> {
        Box::pin(self.book(payment))
    }

    fn pay_problems<'a>(
        &'a self,
        coupa_payment_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<String>>, ErpError>> {
        Box::pin(self.problems(coupa_payment_ids))
    }
}
