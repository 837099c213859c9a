//! The words of each message: subject, plain-text body (email) and a one-paragraph summary
//! (the webhook's Slack-compatible `text`), built from an incident or a pass's rejections.
//! Nothing here sees a secret: the inputs are error texts (which the clients keep free of
//! credentials), counts and times.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::incidents::{IncidentKind, UNREADABLE};
use crate::flows::FlowName;
use crate::store::notifications::IncidentRecord;

/// Lines of a rejection message before "and N more".
pub const MAX_REJECTION_LINES: usize = 10;

/// Why a message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Problem,
    Reminder,
    Recovered,
    Rejected,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Problem => "problem",
            MessageKind::Reminder => "reminder",
            MessageKind::Recovered => "recovered",
            MessageKind::Rejected => "rejected",
        }
    }
}

/// One message, as every channel sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageKind,
    pub flow: FlowName,
    pub subject: String,
    /// The email body.
    pub body: String,
    /// A one-paragraph summary (the webhook's `text`).
    pub text: String,
    /// Failed passes or documents so far (incidents), documents rejected (rejections).
    pub count: u64,
    /// When the problem started.
    pub since: DateTime<Utc>,
    /// The latest error text or reason.
    pub detail: String,
    pub dashboard_url: Option<String>,
    /// The incident it is about, recorded with each send.
    pub incident: Option<i64>,
}

/// What the messages of an incident need besides the incident.
pub struct Context<'a> {
    pub flow: FlowName,
    pub now: DateTime<Utc>,
    pub dashboard_url: Option<&'a str>,
}

/// A message before the parts every kind shares (subject, dashboard link) are added.
struct Draft<'a> {
    kind: MessageKind,
    /// Subject after the flow's title.
    what: &'a str,
    /// Body lines.
    facts: Vec<String>,
    /// The one-paragraph summary after the flow's title.
    summary: String,
    count: u64,
    since: DateTime<Utc>,
    detail: &'a str,
    incident: Option<i64>,
}

impl Context<'_> {
    fn finish(&self, draft: Draft<'_>) -> Message {
        let Draft {
            kind,
            what,
            facts,
            summary,
            count,
            since,
            detail,
            incident,
        } = draft;
        let title = self.flow.title();
        let mut body = format!("{title}: {what}\n\n");
        for fact in facts {
            body.push_str(&fact);
            body.push('\n');
        }
        let mut text = format!("coupa-bridge {title}: {summary}");
        if let Some(url) = self.dashboard_url {
            body.push_str(&format!("\nDashboard: {url}\n"));
            text.push_str(&format!(" Dashboard: {url}"));
        }
        Message {
            kind,
            flow: self.flow,
            subject: format!("[coupa-bridge] {title}: {what}"),
            body,
            text,
            count,
            since,
            detail: detail.to_owned(),
            dashboard_url: self.dashboard_url.map(str::to_owned),
            incident,
        }
    }

    /// The first message of `incident`; `headline` says what happened in a few words.
    pub fn problem(&self, incident: &IncidentRecord, headline: &str) -> Message {
        let kind = IncidentKind::parse(&incident.kind);
        let what = match kind {
            Some(IncidentKind::DocumentsWaiting) => {
                "documents are left for a later pass \
                 (they are retried on each pass; nothing is lost)"
            }
            Some(IncidentKind::AnswersOverdue) => {
                "invoices delivered to the ERP have had no answer by the deadline (they stay \
                 unexported in Coupa and are acknowledged when the answer comes; check the \
                 ERP's import job and its result files)"
            }
            _ => "the pass failed and stopped early; it is tried again on schedule",
        };
        let facts = vec![
            format!("What happened: {what}."),
            format!("Count: {}", counted(kind, incident.count)),
            format!("Since: {}", human_time(incident.opened_at)),
            format!("Latest detail: {}", incident.detail),
        ];
        let summary = format!(
            "{headline} since {} ({}). Latest: {}",
            human_time(incident.opened_at),
            counted(kind, incident.count),
            incident.detail
        );
        self.finish(Draft {
            kind: MessageKind::Problem,
            what: headline,
            facts,
            summary,
            count: incident.count,
            since: incident.opened_at,
            detail: &incident.detail,
            incident: Some(incident.id),
        })
    }

    /// A reminder that `incident` still lasts.
    pub fn reminder(&self, incident: &IncidentRecord, headline: &str) -> Message {
        let kind = IncidentKind::parse(&incident.kind);
        let lasted = human_duration(self.now - incident.opened_at);
        let what = match kind {
            Some(IncidentKind::DocumentsWaiting) => "documents still waiting".to_owned(),
            Some(IncidentKind::AnswersOverdue) => {
                "invoices still waiting for the ERP's answer".to_owned()
            }
            _ => format!("still failing: {headline}"),
        };
        let facts = vec![
            format!("What happened: {headline}, for {lasted} now."),
            format!("Count so far: {}", counted(kind, incident.count)),
            format!("Since: {} ({lasted})", human_time(incident.opened_at)),
            format!("Latest detail: {}", incident.detail),
        ];
        let summary = format!(
            "{what}, for {lasted} since {} ({} so far). Latest: {}",
            human_time(incident.opened_at),
            counted(kind, incident.count),
            incident.detail
        );
        self.finish(Draft {
            kind: MessageKind::Reminder,
            what: &what,
            facts,
            summary,
            count: incident.count,
            since: incident.opened_at,
            detail: &incident.detail,
            incident: Some(incident.id),
        })
    }

    /// `incident` is over.
    pub fn recovered(&self, incident: &IncidentRecord) -> Message {
        let kind = IncidentKind::parse(&incident.kind);
        let end = incident.closed_at.unwrap_or(self.now);
        let lasted = human_duration(end - incident.opened_at);
        let what = match kind {
            Some(IncidentKind::DocumentsWaiting) => {
                format!("recovered: no documents waiting any more, after {lasted}")
            }
            Some(IncidentKind::AnswersOverdue) => {
                format!("recovered: the ERP has answered for every overdue invoice, after {lasted}")
            }
            _ => format!("recovered: passes succeed again, after {lasted}"),
        };
        let facts = vec![
            format!(
                "What happened: the problem lasted {lasted}, from {} to {}.",
                human_time(incident.opened_at),
                human_time(end)
            ),
            format!("Total: {}", counted(kind, incident.count)),
            format!("Last detail: {}", incident.detail),
        ];
        let summary = format!(
            "{what} (since {}, {} in total). Last detail: {}",
            human_time(incident.opened_at),
            counted(kind, incident.count),
            incident.detail
        );
        self.finish(Draft {
            kind: MessageKind::Recovered,
            what: &what,
            facts,
            summary,
            count: incident.count,
            since: incident.opened_at,
            detail: &incident.detail,
            incident: Some(incident.id),
        })
    }

    /// Documents of one pass that a person must fix: `items` (document, reason) not reported
    /// before; `already` more were reported in earlier messages.
    pub fn rejected(&self, items: &[(String, String)], already: usize) -> Message {
        let n = items.len();
        let documents = if n == 1 { "document" } else { "documents" };
        let what = format!("{n} {documents} rejected");
        let mut facts = vec![
            format!(
                "What happened: {n} {documents} could not be taken and need a person \
                 (Coupa has an alert for each); fix them in Coupa or the ERP."
            ),
            format!("Count: {n}"),
            format!("When: {}", human_time(self.now)),
            String::new(),
        ];
        facts.extend(items.iter().take(MAX_REJECTION_LINES).map(line));
        if n > MAX_REJECTION_LINES {
            facts.push(format!("  ... and {} more", n - MAX_REJECTION_LINES));
        }
        if already > 0 {
            facts.push(format!(
                "({already} more rejected again, already reported in an earlier message)"
            ));
        }
        let detail = items.first().map(|(_, r)| r.as_str()).unwrap_or_default();
        let shown: Vec<String> = items
            .iter()
            .take(3)
            .map(|i| line(i).trim().to_owned())
            .collect();
        let mut summary = format!("{what}: {}", shown.join("; "));
        if n > shown.len() {
            summary.push_str(&format!("; and {} more", n - shown.len()));
        }
        summary.push('.');
        self.finish(Draft {
            kind: MessageKind::Rejected,
            what: &what,
            facts,
            summary,
            count: n as u64,
            since: self.now,
            detail,
            incident: None,
        })
    }
}

fn line((document, reason): &(String, String)) -> String {
    if document == UNREADABLE {
        format!("  - (unreadable record): {reason}")
    } else {
        format!("  - {document}: {reason}")
    }
}

fn counted(kind: Option<IncidentKind>, n: u64) -> String {
    let plural = n != 1;
    match kind {
        Some(IncidentKind::DocumentsWaiting) => format!(
            "{n} {} left for a later pass",
            if plural { "documents" } else { "document" }
        ),
        Some(IncidentKind::AnswersOverdue) => format!(
            "{n} overdue {} counted over the passes",
            if plural { "answers" } else { "answer" }
        ),
        _ => format!("{n} failed {}", if plural { "passes" } else { "pass" }),
    }
}

/// `2026-11-21 06:30 UTC`.
pub fn human_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `rfc3339` to the second, for machines.
pub fn machine_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2d 3h`, `3h 5m`, `12m`, `under a minute`: as precise as a person needs.
pub fn human_duration(d: Duration) -> String {
    let minutes = d.num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, mins) {
        (0, 0, 0) => "under a minute".to_owned(),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0)
            .single()
            .expect("valid")
    }

    fn incident(kind: &str, count: u64) -> IncidentRecord {
        IncidentRecord {
            id: 3,
            flow: "invoices".into(),
            kind: kind.into(),
            opened_at: at(6, 30),
            last_seen_at: at(8, 0),
            last_sent_at: Some(at(6, 30)),
            count,
            detail: "Coupa: connection refused".into(),
            closed_at: None,
        }
    }

    fn ctx(now: DateTime<Utc>) -> Context<'static> {
        Context {
            flow: FlowName::Invoices,
            now,
            dashboard_url: Some("https://bridge.example.com"),
        }
    }

    #[test]
    fn a_problem_names_flow_headline_count_since_and_detail() {
        let m = ctx(at(6, 30)).problem(&incident("pass-failed", 1), "Coupa unreachable");
        assert_eq!(
            m.subject,
            "[coupa-bridge] invoice export: Coupa unreachable"
        );
        assert_eq!(m.kind.as_str(), "problem");
        for part in [
            "invoice export",
            "1 failed pass",
            "2026-11-21 06:30 UTC",
            "Coupa: connection refused",
            "Dashboard: https://bridge.example.com",
        ] {
            assert!(m.body.contains(part), "body lacks {part}: {}", m.body);
            assert!(m.text.contains(part), "text lacks {part}: {}", m.text);
        }
        assert!(!m.text.contains('\n'), "one paragraph: {}", m.text);
        assert_eq!((m.count, m.incident), (1, Some(3)));
    }

    #[test]
    fn a_reminder_says_how_long_and_how_many() {
        let m = ctx(at(8, 35)).reminder(&incident("pass-failed", 40), "Coupa unreachable");
        assert_eq!(
            m.subject,
            "[coupa-bridge] invoice export: still failing: Coupa unreachable"
        );
        assert!(m.body.contains("40 failed passes"), "{}", m.body);
        assert!(m.body.contains("2h 5m"), "{}", m.body);
        let w = ctx(at(8, 35)).reminder(&incident("documents-waiting", 120), "x");
        assert!(w.body.contains("120 documents left"), "{}", w.body);
    }

    #[test]
    fn recovery_gives_duration_and_total() {
        let mut i = incident("documents-waiting", 1);
        i.closed_at = Some(at(6, 42));
        let m = ctx(at(7, 0)).recovered(&i);
        assert!(
            m.subject.contains("recovered") && m.subject.contains("12m"),
            "{}",
            m.subject
        );
        assert!(
            m.body.contains("1 document left for a later pass"),
            "{}",
            m.body
        );
    }

    #[test]
    fn rejections_show_at_most_ten_lines() {
        let items: Vec<(String, String)> = (1..=13)
            .map(|i| (i.to_string(), format!("reason {i}")))
            .chain([(UNREADABLE.to_owned(), "bad row".to_owned())])
            .collect();
        let m = ctx(at(9, 0)).rejected(&items, 2);
        assert_eq!(
            m.subject,
            "[coupa-bridge] invoice export: 14 documents rejected"
        );
        assert_eq!(m.count, 14);
        assert_eq!(m.body.lines().filter(|l| l.starts_with("  - ")).count(), 10);
        assert!(m.body.contains("  - 10: reason 10"));
        assert!(!m.body.contains("reason 11"));
        assert!(m.body.contains("and 4 more") && m.body.contains("2 more rejected again"));
        let one = ctx(at(9, 0)).rejected(&items[13..], 0);
        assert!(
            one.body.contains("(unreadable record): bad row"),
            "{}",
            one.body
        );
        assert_eq!(
            one.subject,
            "[coupa-bridge] invoice export: 1 document rejected"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::seconds(30)), "under a minute");
        assert_eq!(human_duration(Duration::minutes(12)), "12m");
        assert_eq!(human_duration(Duration::minutes(125)), "2h 5m");
        assert_eq!(human_duration(Duration::minutes(3 * 1440 + 61)), "3d 1h");
        assert_eq!(human_duration(Duration::minutes(-5)), "under a minute");
        assert_eq!(machine_time(at(6, 30)), "2026-11-21T06:30:00Z");
    }
}
