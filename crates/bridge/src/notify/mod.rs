//! Notifications: a person hears about problems by email and webhook, grouped so that one
//! outage is one message with a count, with reminders while it lasts and a message when it ends.
//!
//! - [`incidents`]: what a finished pass means (a pure function of its result).
//! - [`message`]: the words of each message.
//! - [`email`], [`webhook`]: the channels.
//! - The incidents themselves, the send log and the rejections already reported live in the
//!   state store ([`crate::store::notifications`]), so a `sync` from cron and the daemon group
//!   the same outage together and a restart does not repeat a message.
//!
//! A message is marked due in the store before it is sent, and each channel gets one attempt
//! bounded by [`SEND_TIMEOUT`]: a channel that is down costs each pass at most that long, is
//! logged and recorded, and never makes the problem message go out again on every pass.

pub mod email;
pub mod incidents;
pub mod message;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::config::NotifyConfig;
use crate::daemon::schedule::{SharedClock, SystemClock};
use crate::flows::{FlowError, FlowName, PassReport};
use crate::store::Store;
use crate::store::notifications::{IncidentStep, NewNotification, Sighting};

use email::EmailChannel;
use incidents::assess;
use message::{Context, Message};
use webhook::WebhookChannel;

/// The longest one send may take, per channel.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the messages a pass's outcome calls for. Never fails the pass: a notifier that cannot
/// deliver is recorded.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    remind_every: chrono::Duration,
    dashboard_url: Option<String>,
    email: Option<EmailChannel>,
    webhook: Option<WebhookChannel>,
    send_timeout: Duration,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("remind_every", &self.inner.remind_every)
            .field("email", &self.inner.email)
            .field("webhook", &self.inner.webhook)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(config: &NotifyConfig, store: Store) -> Notifier {
        Notifier::with_email_roots(config, store, None)
    }

    /// Like [`Notifier::new`], trusting also the root certificates in `extra_roots_pem` for
    /// the SMTP server's TLS (a private CA; the tests' loopback server).
    pub fn with_email_roots(
        config: &NotifyConfig,
        store: Store,
        extra_roots_pem: Option<&[u8]>,
    ) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                store,
                clock: Arc::new(SystemClock),
                remind_every: chrono::Duration::minutes(i64::from(config.reminder_minutes)),
                dashboard_url: config
                    .dashboard_url
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                email: EmailChannel::new(&config.email, extra_roots_pem, SEND_TIMEOUT),
                webhook: WebhookChannel::new(&config.webhook, SEND_TIMEOUT),
                send_timeout: SEND_TIMEOUT,
            }),
        }
    }

    /// The same notifier reading time from `clock` (tests move it by hand).
    pub fn with_clock(self, clock: SharedClock) -> Notifier {
        self.rebuild(|inner| inner.clock = clock)
    }

    /// The same notifier giving each send at most `timeout` instead of [`SEND_TIMEOUT`].
    pub fn with_send_timeout(self, timeout: Duration) -> Notifier {
        self.rebuild(|inner| inner.send_timeout = timeout)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Notifier {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                store: shared.store.clone(),
                clock: shared.clock.clone(),
                remind_every: shared.remind_every,
                dashboard_url: shared.dashboard_url.clone(),
                email: shared.email.clone(),
                webhook: shared.webhook.clone(),
                send_timeout: shared.send_timeout,
            },
        };
        change(&mut inner);
        Notifier {
            inner: Arc::new(inner),
        }
    }

    /// Whether any channel is configured; without one, incidents are kept but nothing is sent.
    pub fn sends(&self) -> bool {
        self.inner.email.is_some() || self.inner.webhook.is_some()
    }

    /// Looks at a finished pass and sends what it calls for. Never fails, never panics: store
    /// and channel problems are logged (and send failures recorded).
    pub async fn after_pass(&self, flow: FlowName, result: &Result<PassReport, FlowError>) {
        let assessment = assess(result);
        let inner = &self.inner;
        let sending = self.sends();
        let dashboard_url = inner.dashboard_url.as_deref();
        let context = |now| Context {
            flow,
            now,
            dashboard_url,
        };
        let mut messages = Vec::new();

        for kind in assessment.cleared {
            let now = inner.clock.now();
            match inner
                .store
                .close_incident(flow.as_str(), kind.as_str(), now)
                .await
            {
                Ok(Some(incident)) => {
                    tracing::info!(
                        flow = %flow, kind = kind.as_str(), count = incident.count,
                        "incident closed"
                    );
                    if sending {
                        messages.push(context(now).recovered(&incident));
                    }
                }
                Ok(None) => {}
                Err(e) => store_failed(flow, "closing an incident", &e),
            }
        }

        for problem in assessment.problems {
            let now = inner.clock.now();
            let seen = Sighting {
                flow: flow.as_str(),
                kind: problem.kind.as_str(),
                count: problem.count,
                detail: &problem.detail,
                at: now,
            };
            let step = match inner
                .store
                .incident_seen(&seen, inner.remind_every, sending)
                .await
            {
                Ok(step) => step,
                Err(e) => {
                    store_failed(flow, "recording an incident", &e);
                    continue;
                }
            };
            let message = match &step {
                IncidentStep::Opened(incident) => {
                    tracing::info!(
                        flow = %flow, kind = problem.kind.as_str(), detail = %problem.detail,
                        "incident opened"
                    );
                    context(now).problem(incident, &problem.headline)
                }
                IncidentStep::Reminder(incident) => {
                    context(now).reminder(incident, &problem.headline)
                }
                IncidentStep::Ongoing(_) => continue,
            };
            if sending {
                messages.push(message);
            }
        }

        if sending && !assessment.rejections.is_empty() {
            let now = inner.clock.now();
            match inner
                .store
                .claim_rejections(flow.as_str(), &assessment.rejections, now)
                .await
            {
                Ok(new) if new.is_empty() => {}
                Ok(new) => {
                    let already = distinct(&assessment.rejections).saturating_sub(new.len());
                    messages.push(context(now).rejected(&new, already));
                }
                Err(e) => store_failed(flow, "recording reported rejections", &e),
            }
        }
        self.deliver(&messages).await;
    }

    /// Sends `messages` in order on every channel, the channels side by side, each channel
    /// bounded by the send timeout for the whole batch (a pass may call for a recovery and a
    /// new problem at once, and a dead channel must not cost it more than one timeout), and
    /// records each attempt.
    async fn deliver(&self, messages: &[Message]) {
        if messages.is_empty() {
            return;
        }
        let inner = &self.inner;
        let email = async {
            let channel = inner.email.as_ref()?;
            Some(
                self.batch("email", channel.describe(), messages, |m| channel.send(m))
                    .await,
            )
        };
        let webhook = async {
            let channel = inner.webhook.as_ref()?;
            Some(
                self.batch("webhook", channel.describe(), messages, |m| channel.send(m))
                    .await,
            )
        };
        let (email, webhook) = tokio::join!(email, webhook);
        for (channel, outcomes) in [("email", email), ("webhook", webhook)] {
            let Some(outcomes) = outcomes else { continue };
            for (message, outcome) in messages.iter().zip(outcomes) {
                let record = NewNotification {
                    at: inner.clock.now(),
                    channel: channel.to_owned(),
                    flow: message.flow.as_str().to_owned(),
                    kind: message.kind.as_str().to_owned(),
                    subject: message.subject.clone(),
                    error: outcome.err(),
                    incident: message.incident,
                };
                if let Err(e) = inner.store.record_notification(&record).await {
                    store_failed(message.flow, "recording a notification", &e);
                }
            }
        }
    }

    /// One attempt per message on one channel, all within one send timeout.
    async fn batch<'m, F, Fut>(
        &self,
        channel: &str,
        target: String,
        messages: &'m [Message],
        send: F,
    ) -> Vec<Result<(), String>>
    where
        F: Fn(&'m Message) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let timeout = self.inner.send_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut outcomes = Vec::with_capacity(messages.len());
        for message in messages {
            let outcome = if tokio::time::Instant::now() >= deadline {
                Err(format!(
                    "{target}: not attempted: earlier messages of the pass used up {timeout:?}"
                ))
            } else {
                match tokio::time::timeout_at(deadline, send(message)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("{target}: no answer within {timeout:?}")),
                }
            };
            match &outcome {
                Ok(()) => {
                    tracing::debug!(channel, kind = message.kind.as_str(), "notification sent")
                }
                Err(e) => tracing::warn!(
                    channel, flow = %message.flow, kind = message.kind.as_str(), error = %e,
                    "notification not delivered"
                ),
            }
            outcomes.push(outcome);
        }
        outcomes
    }
}

fn store_failed(flow: FlowName, what: &str, e: &crate::store::StoreError) {
    tracing::warn!(flow = %flow, error = %e, "notifications: {what} failed");
}

/// Distinct (document, reason) pairs, as the store counts them.
fn distinct(items: &[(String, String)]) -> usize {
    items.iter().collect::<std::collections::HashSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EmailConfig, WebhookConfig};
    use crate::erp::ErpError;

    async fn store() -> Store {
        Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store")
    }

    fn down() -> Result<PassReport, FlowError> {
        Err(FlowError::Erp(ErpError::Unavailable("refused".into())))
    }

    #[tokio::test]
    async fn without_channels_incidents_are_kept_and_nothing_is_sent() {
        let store = store().await;
        let notifier = Notifier::new(&NotifyConfig::default(), store.clone());
        assert!(!notifier.sends());
        for _ in 0..3 {
            notifier.after_pass(FlowName::Invoices, &down()).await;
        }
        let open = store.open_incidents().await.expect("list");
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].kind.as_str(), open[0].count), ("pass-failed", 3));
        assert_eq!(open[0].last_sent_at, None);
        notifier
            .after_pass(FlowName::Invoices, &Ok(PassReport::new("invoices", 1)))
            .await;
        assert!(store.open_incidents().await.expect("list").is_empty());
        assert!(store.notifications(10).await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn a_refused_connection_is_recorded_and_the_incident_moves_on() {
        let store = store().await;
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = NotifyConfig {
            email: EmailConfig {
                host: Some("127.0.0.1".into()),
                port,
                security: crate::config::SmtpSecurity::None,
                from: "bridge@example.com".into(),
                to: vec!["ap@example.com".into()],
                ..EmailConfig::default()
            },
            webhook: WebhookConfig {
                url: Some(format!("http://127.0.0.1:{port}/hook")),
                secret: None,
            },
            ..NotifyConfig::default()
        };
        let notifier = Notifier::new(&config, store.clone());
        notifier.after_pass(FlowName::Payments, &down()).await;
        notifier.after_pass(FlowName::Payments, &down()).await;
        let sent = store.notifications(10).await.expect("list");
        assert_eq!(
            sent.len(),
            2,
            "one attempt per channel, not one per pass: {sent:?}"
        );
        for n in &sent {
            assert_eq!((n.status.as_str(), n.kind.as_str()), ("failed", "problem"));
            let error = n.error.as_deref().unwrap_or_default();
            assert!(
                error.contains(&format!("127.0.0.1:{port}")) || error.contains("127.0.0.1"),
                "{error}"
            );
        }
        assert!(
            !sent
                .iter()
                .any(|n| n.error.as_deref().unwrap_or("").contains("/hook"))
        );
    }
}
