//! What a finished pass means for incidents and rejections: a pure reading of the pass's result,
//! so the rules (which problem opens what, which clears what) are tested without a store.

use crate::flows::{FlowError, PassReport};

/// The kinds of incident, by the name they carry in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentKind {
    /// The pass returned an error: Coupa unreachable, credentials, the state store.
    PassFailed,
    /// The pass left documents for a later pass (an ERP outage, Coupa refusing one write).
    DocumentsWaiting,
    /// Invoices delivered to an ERP that answers later have waited past
    /// `invoices.answer_deadline_secs` for its answer.
    AnswersOverdue,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 3] = [
        IncidentKind::PassFailed,
        IncidentKind::DocumentsWaiting,
        IncidentKind::AnswersOverdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::PassFailed => "pass-failed",
            IncidentKind::DocumentsWaiting => "documents-waiting",
            IncidentKind::AnswersOverdue => "answers-overdue",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentKind> {
        IncidentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A problem one pass had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: IncidentKind,
    /// Added to the incident's count: 1 failed pass, or the documents left this pass.
    pub count: u64,
    /// The error text, or the first document's reason.
    pub detail: String,
    /// A few words for a subject line: `Coupa unreachable`.
    pub headline: String,
}

/// Everything a pass calls for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    pub problems: Vec<Problem>,
    /// Kinds of incident the pass shows to be over.
    pub cleared: Vec<IncidentKind>,
    /// (document, reason) a person must fix; unreadable records have the document `unreadable`.
    pub rejections: Vec<(String, String)>,
}

/// The document key of a record that could not be read (it carries no id).
pub const UNREADABLE: &str = "unreadable";

pub fn assess(result: &Result<PassReport, FlowError>) -> Assessment {
    let report = match result {
        Err(e) => {
            // A failed pass says nothing about documents waiting: it did not get to them.
            return Assessment {
                problems: vec![Problem {
                    kind: IncidentKind::PassFailed,
                    count: 1,
                    detail: e.to_string(),
                    headline: headline(e),
                }],
                ..Assessment::default()
            };
        }
        Ok(report) => report,
    };
    let mut out = Assessment {
        cleared: vec![IncidentKind::PassFailed],
        ..Assessment::default()
    };
    match report.transient.first() {
        None => out.cleared.push(IncidentKind::DocumentsWaiting),
        Some((_, reason)) => {
            let n = report.transient.len();
            out.problems.push(Problem {
                kind: IncidentKind::DocumentsWaiting,
                count: n as u64,
                detail: reason.clone(),
                headline: format!(
                    "{n} {} waiting for the next pass",
                    if n == 1 { "document" } else { "documents" }
                ),
            });
        }
    }
    match report.overdue.first() {
        None => out.cleared.push(IncidentKind::AnswersOverdue),
        Some((id, since)) => {
            let n = report.overdue.len();
            out.problems.push(Problem {
                kind: IncidentKind::AnswersOverdue,
                count: n as u64,
                detail: format!("invoice {id}: {since}"),
                headline: format!(
                    "{n} {} waiting for the ERP's answer past the deadline",
                    if n == 1 { "invoice" } else { "invoices" }
                ),
            });
        }
    }
    out.rejections = report
        .rejected
        .iter()
        .map(|(id, reason)| (id.to_string(), reason.clone()))
        .chain(
            report
                .unreadable
                .iter()
                .map(|what| (UNREADABLE.to_owned(), what.clone())),
        )
        .collect();
    out
}

/// What went wrong, in a few words a person recognises.
fn headline(e: &FlowError) -> String {
    match e {
        FlowError::Coupa(e) if e.status() == Some(403) => "Coupa refused: a scope is missing",
        FlowError::Coupa(e) => match e.class() {
            coupa_api::ErrorClass::Auth => "Coupa refused the credentials",
            coupa_api::ErrorClass::Retryable => "Coupa unreachable",
            coupa_api::ErrorClass::Permanent | coupa_api::ErrorClass::NotFound => {
                "Coupa refused a request"
            }
        },
        FlowError::Store(_) => "state store unavailable",
        FlowError::Erp(_) => "ERP unavailable",
        FlowError::Sftp(_) => "SFTP refused",
        FlowError::Setup(_) => "Coupa is not set up for the flow",
        FlowError::Disabled(_) => "flow disabled",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erp::ErpError;

    fn report() -> PassReport {
        PassReport::new("invoices", 7)
    }

    #[test]
    fn a_failed_pass_is_one_failure_and_clears_nothing() {
        let a = assess(&Err(FlowError::Erp(ErpError::Unavailable(
            "connection refused".into(),
        ))));
        assert_eq!(
            a.problems,
            vec![Problem {
                kind: IncidentKind::PassFailed,
                count: 1,
                detail: "ERP: ERP unavailable: connection refused".into(),
                headline: "ERP unavailable".into(),
            }]
        );
        assert!(a.cleared.is_empty());
        assert!(a.rejections.is_empty());
    }

    #[test]
    fn a_clean_pass_clears_both_kinds() {
        let a = assess(&Ok(report()));
        assert!(a.problems.is_empty());
        assert_eq!(a.cleared, IncidentKind::ALL.to_vec());
    }

    #[test]
    fn waiting_documents_clear_the_other_kinds_not_their_own() {
        let mut r = report();
        r.transient = vec![(11, "ERP down".into()), (12, "ERP slow".into())];
        let a = assess(&Ok(r));
        assert_eq!(
            a.cleared,
            vec![IncidentKind::PassFailed, IncidentKind::AnswersOverdue]
        );
        assert_eq!(a.problems.len(), 1);
        let p = &a.problems[0];
        assert_eq!(
            (p.kind, p.count, p.detail.as_str()),
            (IncidentKind::DocumentsWaiting, 2, "ERP down")
        );
        assert_eq!(p.headline, "2 documents waiting for the next pass");
    }

    #[test]
    fn rejections_and_unreadable_records_are_listed() {
        let mut r = report();
        r.rejected = vec![(5, "closed period".into())];
        r.unreadable = vec!["page 2 record 3: bad total".into()];
        let a = assess(&Ok(r));
        assert_eq!(
            a.rejections,
            vec![
                ("5".to_owned(), "closed period".to_owned()),
                (
                    UNREADABLE.to_owned(),
                    "page 2 record 3: bad total".to_owned()
                )
            ]
        );
        assert_eq!(
            IncidentKind::parse("documents-waiting"),
            Some(IncidentKind::DocumentsWaiting)
        );
        assert_eq!(IncidentKind::parse("other"), None);
    }

    #[test]
    fn an_overdue_answer_opens_its_incident_and_a_pass_without_clears_it() {
        let mut r = report();
        r.awaiting = 3;
        r.overdue = vec![(41, "sent to the ERP at 2026-11-21 06:30:00 UTC".into())];
        let a = assess(&Ok(r.clone()));
        assert_eq!(a.problems.len(), 1, "{a:?}");
        assert_eq!(a.problems[0].kind, IncidentKind::AnswersOverdue);
        assert_eq!(a.problems[0].count, 1);
        assert!(a.problems[0].detail.contains("invoice 41"), "{a:?}");
        assert!(!a.cleared.contains(&IncidentKind::AnswersOverdue));
        // Awaiting within the deadline is a normal state: nothing to report, and it clears.
        r.overdue.clear();
        let a = assess(&Ok(r));
        assert!(a.problems.is_empty(), "{a:?}");
        assert!(a.cleared.contains(&IncidentKind::AnswersOverdue));
    }
}
