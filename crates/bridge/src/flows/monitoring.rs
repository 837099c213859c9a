//! Coupa's integration monitoring as the flows keep it (seed 001, option 3): each document's
//! outcome is one record in Coupa, a history record or an integration error with an alert to
//! the Integration's contacts, and a new outcome resolves the records of the earlier ones.
//!
//! Creating a record and noting it in the journal cannot be one step, so a crash between the
//! two would create the record twice. The flows prevent that with a snapshot: before creating,
//! they journal the document's unresolved records (`recording`). A resumed attempt passes that
//! snapshot back as `before`, and a record of the right kind that is not in it is the one the
//! crashed attempt created: it is kept, not created again.

use std::collections::HashMap;

use coupa_api::client::NewMonitoringRecord;
use coupa_api::query::{Fields, Query};
use coupa_api::{Client, HistoryRecordId, IntegrationErrorId};

/// A document's unresolved Coupa records, by kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct Unresolved {
    pub history: Vec<i64>,
    pub errors: Vec<i64>,
}

impl Unresolved {
    /// Every record id, for the journal's snapshot.
    pub fn all(&self) -> Vec<i64> {
        self.history.iter().chain(&self.errors).copied().collect()
    }
}

/// Which record a cycle leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// A history record (a success).
    History,
    /// A history record that alerts the contacts (a failure, under option 2).
    HistoryAlert,
    /// An integration error that alerts the contacts (a failure, in a run).
    ErrorAlert,
}

/// The unresolved records of `ids` (all of `document_type`): one listing per kind for the lot,
/// not one per document. Errors are listed only when `with_errors`.
pub(crate) async fn unresolved(
    client: &Client,
    document_type: &str,
    ids: &[i64],
    with_errors: bool,
) -> Result<HashMap<i64, Unresolved>, coupa_api::Error> {
    let mut map: HashMap<i64, Unresolved> = HashMap::new();
    if ids.is_empty() {
        return Ok(map);
    }
    let q = || {
        Query::new()
            .eq("resolved", false)
            .eq("document-type", document_type)
            .is_in("document-id", ids.iter().copied())
            .fields(Fields::new(["id", "document-id", "resolved"]))
    };
    for item in client.history_records().list(q()).collect_all().await? {
        if let Ok(h) = item
            && let Some(doc) = h.document_id
        {
            map.entry(doc).or_default().history.push(h.id.get());
        }
    }
    if with_errors {
        for item in client.integration_errors().list(q()).collect_all().await? {
            if let Ok(e) = item
                && let Some(doc) = e.document_id
            {
                map.entry(doc).or_default().errors.push(e.id.get());
            }
        }
    }
    Ok(map)
}

/// Resolves the records of a document's earlier cycles (`open`) and creates this cycle's
/// record, returning its id. `before` is the journal's snapshot when resuming an attempt that
/// got as far as `recording`: the record that attempt created is found and kept.
pub(crate) async fn replace_records(
    client: &Client,
    open: &Unresolved,
    before: Option<&[i64]>,
    kind: RecordKind,
    record: &NewMonitoringRecord,
) -> Result<i64, coupa_api::Error> {
    let same_kind = match kind {
        RecordKind::ErrorAlert => &open.errors,
        RecordKind::History | RecordKind::HistoryAlert => &open.history,
    };
    let already_created =
        before.and_then(|before| same_kind.iter().copied().find(|r| !before.contains(r)));
    for rid in &open.history {
        if Some(*rid) != already_created {
            client
                .history_records()
                .resolve(HistoryRecordId(*rid))
                .await?;
        }
    }
    for rid in &open.errors {
        if Some(*rid) != already_created {
            client
                .integration_errors()
                .resolve(IntegrationErrorId(*rid))
                .await?;
        }
    }
    if let Some(id) = already_created {
        return Ok(id);
    }
    Ok(match kind {
        RecordKind::History => client.history_records().create(record).await?.id.get(),
        RecordKind::HistoryAlert => client
            .history_records()
            .create_alert(record)
            .await?
            .id
            .get(),
        RecordKind::ErrorAlert => client
            .integration_errors()
            .create_alert(record)
            .await?
            .id
            .get(),
    })
}
