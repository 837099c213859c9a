//! The email channel: one plain-text message to every `to` address over SMTP (lettre), with
//! STARTTLS required, implicit TLS, or plain for a local relay, as `notify.email.security` says.
//!
//! The transport is built once; a configuration lettre cannot use (a host name TLS cannot
//! verify, a bad root certificate) is kept as an error and reported on each send, so a bad
//! email setup shows up in the notifications log instead of stopping the connector.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::message::Message;
use crate::config::{EmailConfig, SmtpSecurity};

/// Sends messages by email.
#[derive(Clone)]
pub struct EmailChannel {
    transport: Result<AsyncSmtpTransport<Tokio1Executor>, String>,
    /// `host:port`, to say where a failure happened.
    server: String,
    from: String,
    to: Vec<String>,
}

impl std::fmt::Debug for EmailChannel {
    // The transport holds the SMTP password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("server", &self.server)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// The channel `config` describes, or `None` when email is off (no host). `extra_roots_pem`
    /// adds trusted root certificates (PEM, one or more) to the usual ones, for a server with a
    /// private CA (and the tests' loopback server). `timeout` bounds each SMTP command.
    pub fn new(
        config: &EmailConfig,
        extra_roots_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Option<EmailChannel> {
        let host = config.host.as_deref()?.trim();
        let server = format!("{host}:{}", config.port);
        let transport = build_transport(config, host, extra_roots_pem, timeout)
            .map_err(|e| format!("SMTP {server}: setting up: {e}"));
        Some(EmailChannel {
            transport,
            server,
            from: config.from.clone(),
            to: config.to.clone(),
        })
    }

    /// Sends `message` to every recipient in one SMTP transaction.
    pub async fn send(&self, message: &Message) -> Result<(), String> {
        let transport = self.transport.as_ref().map_err(Clone::clone)?;
        let email = self.compose(message)?;
        transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP {}: {}", self.server, error_chain(&e)))
    }

    fn compose(&self, message: &Message) -> Result<lettre::Message, String> {
        let mailbox = |what: &str, address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|e| format!("notify.email.{what}: '{address}' is not an address: {e}"))
        };
        let mut builder = lettre::Message::builder()
            .from(mailbox("from", &self.from)?)
            .subject(message.subject.as_str())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(mailbox("to", to)?);
        }
        builder
            .body(message.body.clone())
            .map_err(|e| format!("composing the email: {e}"))
    }
}

fn build_transport(
    config: &EmailConfig,
    host: &str,
    extra_roots_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = || -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(host.to_owned());
        if let Some(pem) = extra_roots_pem {
            let root = Certificate::from_pem(pem)
                .map_err(|e| format!("reading the extra root certificates: {e}"))?;
            builder = builder.add_root_certificate(root);
        }
        builder.build_rustls().map_err(|e| error_chain(&e))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(config.port)
        .timeout(Some(timeout));
    builder = match config.security {
        SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
        SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        SmtpSecurity::None => builder.tls(Tls::None),
    };
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

/// `e` and its causes on one line (lettre's own message often just says "Connection error"),
/// without the repeats that lettre's messages and their sources make together.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in out.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

impl EmailChannel {
    /// Where messages go, for errors: `SMTP host:port`.
    pub fn describe(&self) -> String {
        format!("SMTP {}", self.server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Connection error: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chains_lose_their_repeats() {
        let e = Outer(std::io::Error::other("Connection error: refused"));
        assert_eq!(error_chain(&e), "Connection error: refused");
    }

    #[test]
    fn the_channel_is_off_without_a_host_and_hides_its_password() {
        let mut config = EmailConfig::default();
        assert!(EmailChannel::new(&config, None, Duration::from_secs(1)).is_none());
        config.host = Some("smtp.example.com".into());
        config.username = Some("bridge".into());
        config.password = Some(secrecy::SecretString::from("hunter2"));
        let channel = EmailChannel::new(&config, None, Duration::from_secs(1)).expect("on");
        assert_eq!(channel.describe(), "SMTP smtp.example.com:587");
        assert!(!format!("{channel:?}").contains("hunter2"));
    }
}
