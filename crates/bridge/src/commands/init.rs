//! `coupa-bridge init`: writes a commented `coupa-bridge.toml` for the user's choices.
//!
//! The same questions are answered from a terminal ([`Prompter`]) or from flags
//! (`--non-interactive`, or stdin not a terminal); whether stdin is a terminal is the only
//! difference between the two, so the tests drive the interactive path in-process with scripted
//! answers. Secrets are never taken as flags (they would show in `ps`), never printed, and
//! written into the file only with `--write-secrets` (the file is then created with mode 0600);
//! otherwise the file names the environment variable to set.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{self, Config, Monitoring};

/// Where the OAuth2 client secret goes when it is not in the file.
pub const CLIENT_SECRET_VAR: &str = "COUPA_BRIDGE__COUPA__CLIENT_SECRET";
/// Where the SFTP password goes when it is not in the file.
pub const SFTP_PASSWORD_VAR: &str = "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD";

const DEFAULT_ERP_URL: &str = "sqlite://erp.db";
const DEFAULT_STATE_URL: &str = "sqlite://coupa-bridge.db";
const DEFAULT_SFTP_PORT: u16 = 22;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The file to write.
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Replace the file if it exists (without it, an existing file is left alone).
    #[arg(long)]
    pub force: bool,
    /// Take every answer from the flags, even on a terminal; a missing required one is an
    /// error naming its flag. Also the mode when stdin is not a terminal.
    #[arg(long)]
    pub non_interactive: bool,
    /// The Coupa instance: https://acme.coupahost.com (a trailing / or /api is dropped).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The OAuth2 client id (Setup > Integrations > OAuth2/OpenID Connect Clients).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The flows to run, comma-separated [default: all three].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_enum)]
    pub flows: Option<Vec<FlowChoice>>,
    /// How invoice outcomes are reported in Coupa [default: runs].
    #[arg(long, value_enum)]
    pub monitoring: Option<Monitoring>,
    /// How ERP payments reach Coupa [default: api].
    #[arg(long, value_enum)]
    pub payment_transport: Option<Transport>,
    /// Coupa's SFTP server (csv transport).
    #[arg(long, value_name = "HOST")]
    pub sftp_host: Option<String>,
    /// Its SSH port (csv transport) [default: 22].
    #[arg(long, value_name = "PORT")]
    pub sftp_port: Option<u16>,
    /// The SFTP user (csv transport).
    #[arg(long, value_name = "USER")]
    pub sftp_username: Option<String>,
    /// The SFTP server's public host key, pinned: "ssh-ed25519 AAAA..." (csv transport).
    #[arg(long, value_name = "KEY")]
    pub sftp_host_key: Option<String>,
    /// The reference ERP's database: sqlite://FILE or postgres://... [default: sqlite://erp.db].
    #[arg(long, value_name = "URL")]
    pub erp_url: Option<String>,
    /// coupa-bridge's own state store: sqlite://FILE or postgres://...
    /// [default: sqlite://coupa-bridge.db].
    #[arg(long, value_name = "URL")]
    pub state_url: Option<String>,
    /// Accept an http:// base URL: for the coupa-bridge simulator only, never for Coupa.
    #[arg(long)]
    pub insecure_http_simulator_only: bool,
    /// Write the client secret (and the SFTP password for csv) into the file, mode 0600. They
    /// are read from COUPA_BRIDGE__COUPA__CLIENT_SECRET and COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD
    /// with --non-interactive, asked with hidden input on a terminal; never taken as flags.
    #[arg(long)]
    pub write_secrets: bool,
}

impl Default for InitArgs {
    fn default() -> Self {
        InitArgs {
            config: PathBuf::from(config::DEFAULT_PATH),
            force: false,
            non_interactive: false,
            base_url: None,
            client_id: None,
            flows: None,
            monitoring: None,
            payment_transport: None,
            sftp_host: None,
            sftp_port: None,
            sftp_username: None,
            sftp_host_key: None,
            erp_url: None,
            state_url: None,
            insecure_http_simulator_only: false,
            write_secrets: false,
        }
    }
}

/// A flow, as `--flows` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlowChoice {
    /// Approved and voided invoices from Coupa into the ERP.
    Invoices,
    /// The ERP's payments onto the Coupa invoices.
    Payments,
    /// Coupa Pay payments into the ERP.
    PayPayments,
}

/// `payments.transport`, as `--payment-transport` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// A PUT on each invoice.
    Api,
    /// A CSV file for Coupa's payment loader, over SFTP.
    Csv,
}

pub async fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let env = |name: &str| std::env::var(name).ok();
    // The one difference between the modes.
    if !args.non_interactive && std::io::stdin().is_terminal() {
        let mut prompter = Prompter::terminal();
        init(&args, Some(&mut prompter), &env, &mut stdout.lock())?;
    } else {
        init::<std::io::Empty, std::io::Sink>(&args, None, &env, &mut stdout.lock())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks questions over any reader and writer: the terminal in production, scripted answers in
/// tests. Each question shows its default in brackets, takes Enter for it, and is asked again
/// with the reason after an invalid answer.
pub struct Prompter<R, W> {
    input: R,
    output: W,
    /// Secrets are read with echo off from the terminal (`rpassword`) rather than from `input`.
    hidden_secrets: bool,
}

impl Prompter<std::io::StdinLock<'static>, std::io::Stdout> {
    /// The terminal: questions on stdout, answers from stdin, secrets with echo off.
    pub fn terminal() -> Self {
        Prompter {
            input: std::io::stdin().lock(),
            output: std::io::stdout(),
            hidden_secrets: true,
        }
    }
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    /// Answers from `input` (secrets too, one per line), questions to `output`.
    pub fn new(input: R, output: W) -> Self {
        Prompter {
            input,
            output,
            hidden_secrets: false,
        }
    }

    /// The questions asked so far, and the reasons given for answers refused.
    pub fn into_output(self) -> W {
        self.output
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let read = self
            .input
            .read_line(&mut line)
            .context("cannot read the answer")?;
        if read == 0 {
            bail!("no answer: the input ended");
        }
        Ok(line.trim().to_owned())
    }

    /// Asks until `parse` accepts the answer (Enter takes `default`).
    pub fn ask<T>(
        &mut self,
        question: &str,
        default: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        loop {
            match default {
                Some(d) => write!(self.output, "{question} [{d}]: ")?,
                None => write!(self.output, "{question}: ")?,
            }
            self.output.flush()?;
            let answer = self.line()?;
            let answer = match (answer.is_empty(), default) {
                (false, _) => answer,
                (true, Some(d)) => d.to_owned(),
                (true, None) => {
                    writeln!(self.output, "  an answer is needed")?;
                    continue;
                }
            };
            match parse(&answer) {
                Ok(value) => return Ok(value),
                Err(reason) => writeln!(self.output, "  {reason}")?,
            }
        }
    }

    /// A yes/no question.
    pub fn confirm(&mut self, question: &str, default: bool) -> anyhow::Result<bool> {
        let hint = if default { "Y/n" } else { "y/N" };
        self.ask(question, Some(hint), |answer| {
            match answer.to_ascii_lowercase().as_str() {
                "y/n" => Ok(default),
                "y" | "yes" => Ok(true),
                "n" | "no" => Ok(false),
                _ => Err("answer y or n".to_owned()),
            }
        })
    }

    /// A secret, read with echo off on a terminal; never shown, never empty.
    pub fn secret(&mut self, question: &str) -> anyhow::Result<SecretString> {
        loop {
            let value = if self.hidden_secrets {
                writeln!(self.output, "{question} (typing is not shown)")?;
                self.output.flush()?;
                rpassword::prompt_password("> ").context("cannot read the secret")?
            } else {
                write!(self.output, "{question}: ")?;
                self.output.flush()?;
                self.line()?
            };
            let value = value.trim();
            if value.is_empty() {
                writeln!(self.output, "  must not be empty")?;
                continue;
            }
            return Ok(SecretString::from(value.to_owned()));
        }
    }
}

/// Everything the file is written from.
struct Choices {
    base_url: String,
    insecure_http: bool,
    client_id: String,
    invoices: bool,
    payments: bool,
    pay_payments: bool,
    monitoring: Monitoring,
    sftp: Option<Sftp>,
    erp_url: String,
    state_url: String,
    client_secret: Option<SecretString>,
    sftp_password: Option<SecretString>,
}

struct Sftp {
    host: String,
    port: u16,
    username: String,
    host_key: String,
}

/// Asks the terminal, or reads the flags: the same questions, the same checks.
struct Answers<'p, R, W> {
    prompter: Option<&'p mut Prompter<R, W>>,
}

impl<R: BufRead, W: Write> Answers<'_, R, W> {
    /// The answer to `question`, whose default is the flag's value or `default`; without a
    /// prompter, that value or an error naming `--flag`.
    fn value<T>(
        &mut self,
        flag: &str,
        question: &str,
        given: Option<String>,
        default: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        let default = given.as_deref().or(default);
        match &mut self.prompter {
            Some(prompter) => prompter.ask(question, default, parse),
            None => match default {
                Some(value) => parse(value).map_err(|reason| anyhow!("--{flag}: {reason}")),
                None => Err(anyhow!(
                    "--{flag} is required when not asking on a terminal (--non-interactive, or \
                     stdin is not a terminal)"
                )),
            },
        }
    }

    fn interactive(&self) -> bool {
        self.prompter.is_some()
    }
}

/// `init` as a function: gathers the choices (from `prompter` when given, else from `args`),
/// writes the file, and prints what to do next to `out`. `env` supplies the secrets for
/// `--write-secrets` without a prompter.
pub fn init<R: BufRead, W: Write>(
    args: &InitArgs,
    prompter: Option<&mut Prompter<R, W>>,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = &args.config;
    // Before any question: nobody should answer them all to be refused at the end.
    if !args.force && path.exists() {
        bail!(
            "{} exists: pass --force to replace it, or --config FILE to write another file",
            path.display()
        );
    }
    let mut answers = Answers { prompter };
    let choices = gather(args, &mut answers, env)?;
    let text = render(&choices);
    let holds_secret = choices.client_secret.is_some() || choices.sftp_password.is_some();
    check_rendered(&text, path, &choices)?;
    write_atomically(path, &text, holds_secret, args.force)?;
    summary(out, path, &choices)?;
    Ok(())
}

fn gather<R: BufRead, W: Write>(
    args: &InitArgs,
    answers: &mut Answers<'_, R, W>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Choices> {
    let (base_url, insecure_http) = base_url(args, answers)?;
    let client_id = answers.value(
        "client-id",
        "OAuth2 client id (Setup > Integrations > OAuth2/OpenID Connect Clients)",
        args.client_id.clone(),
        None,
        |s| plain_value(s, "client id"),
    )?;
    let flows_default = args
        .flows
        .as_ref()
        .map(|flows| flow_list(flows))
        .unwrap_or_else(|| "invoices,payments,pay-payments".to_owned());
    let flows = answers.value(
        "flows",
        "Flows to run (comma-separated: invoices, payments, pay-payments)",
        None,
        Some(&flows_default),
        parse_flows,
    )?;
    let [invoices, payments, pay_payments] = [
        FlowChoice::Invoices,
        FlowChoice::Payments,
        FlowChoice::PayPayments,
    ]
    .map(|f| flows.contains(&f));

    let monitoring = if invoices {
        answers.value(
            "monitoring",
            "How invoice outcomes are reported in Coupa (custom-fields, history, runs)",
            args.monitoring.map(|m| m.as_str().to_owned()),
            Some(Monitoring::Runs.as_str()),
            |s| {
                <Monitoring as ValueEnum>::from_str(s, true)
                    .map_err(|_| one_of(s, Monitoring::value_variants()))
            },
        )?
    } else {
        args.monitoring.unwrap_or_default()
    };

    let transport = if payments {
        answers.value(
            "payment-transport",
            "How ERP payments reach Coupa (api: a PUT on each invoice; csv: a file over SFTP)",
            args.payment_transport.map(|t| transport_name(t).to_owned()),
            Some("api"),
            |s| {
                <Transport as ValueEnum>::from_str(s, true)
                    .map_err(|_| one_of(s, Transport::value_variants()))
            },
        )?
    } else {
        Transport::Api
    };
    let sftp = match transport {
        Transport::Api => None,
        Transport::Csv => Some(Sftp {
            host: answers.value(
                "sftp-host",
                "Coupa's SFTP host (Coupa support gives it)",
                args.sftp_host.clone(),
                None,
                |s| plain_value(s, "host"),
            )?,
            port: answers.value(
                "sftp-port",
                "SFTP port",
                args.sftp_port.map(|p| p.to_string()),
                Some(&DEFAULT_SFTP_PORT.to_string()),
                parse_port,
            )?,
            username: answers.value(
                "sftp-username",
                "SFTP user",
                args.sftp_username.clone(),
                None,
                |s| plain_value(s, "user name"),
            )?,
            host_key: answers.value(
                "sftp-host-key",
                "The SFTP server's public host key (\"ssh-ed25519 AAAA...\", from Coupa support \
                 or `ssh-keyscan`, checked with them)",
                args.sftp_host_key.clone(),
                None,
                parse_host_key,
            )?,
        }),
    };

    // A URL's password would be a secret in the file: only with --write-secrets (asked last on
    // a terminal, so there the URL must come without one).
    let url_secrets = args.write_secrets && !answers.interactive();
    let erp_url = answers.value(
        "erp-url",
        "The ERP database (sqlite://FILE, relative to the config file's folder, or postgres://...)",
        args.erp_url.clone(),
        Some(DEFAULT_ERP_URL),
        |s| parse_database_url(s, url_secrets, "COUPA_BRIDGE__ERP__URL"),
    )?;
    let state_url = answers.value(
        "state-url",
        "coupa-bridge's state store (sqlite://FILE or postgres://...)",
        args.state_url.clone(),
        Some(DEFAULT_STATE_URL),
        |s| parse_database_url(s, url_secrets, "COUPA_BRIDGE__STATE__URL"),
    )?;

    let csv = sftp.is_some();
    let (client_secret, sftp_password) = match &mut answers.prompter {
        Some(prompter) => {
            let which = if csv {
                "the client secret and the SFTP password"
            } else {
                "the client secret"
            };
            let question = format!(
                "Write {which} into the file (mode 0600)? Otherwise you set environment \
                 variables"
            );
            if prompter.confirm(&question, args.write_secrets)? {
                let secret = prompter.secret("OAuth2 client secret")?;
                let password = if csv {
                    Some(prompter.secret("SFTP password")?)
                } else {
                    None
                };
                (Some(secret), password)
            } else {
                (None, None)
            }
        }
        None if args.write_secrets => {
            let secret = secret_from_env(env, CLIENT_SECRET_VAR)?;
            let password = if csv {
                Some(secret_from_env(env, SFTP_PASSWORD_VAR)?)
            } else {
                None
            };
            (Some(secret), password)
        }
        None => (None, None),
    };

    Ok(Choices {
        base_url,
        insecure_http,
        client_id,
        invoices,
        payments,
        pay_payments,
        monitoring,
        sftp,
        erp_url,
        state_url,
        client_secret,
        sftp_password,
    })
}

/// The instance URL; an `http://` one only for the simulator (the flag, or a "yes" on the
/// terminal).
fn base_url<R: BufRead, W: Write>(
    args: &InitArgs,
    answers: &mut Answers<'_, R, W>,
) -> anyhow::Result<(String, bool)> {
    const QUESTION: &str = "Coupa instance URL (https://acme.coupahost.com)";
    let Some(prompter) = &mut answers.prompter else {
        let url = answers.value(
            "base-url",
            QUESTION,
            args.base_url.clone(),
            None,
            parse_base_url,
        )?;
        if url.http && !args.insecure_http_simulator_only {
            bail!(
                "--base-url: {} is plain http://: Coupa is reached over https:// only; \
                 --insecure-http-simulator-only accepts it for the coupa-bridge simulator",
                url.url
            );
        }
        return Ok((url.url, url.http));
    };
    loop {
        let url = prompter.ask(QUESTION, args.base_url.as_deref(), parse_base_url)?;
        if !url.http {
            return Ok((url.url, false));
        }
        if args.insecure_http_simulator_only
            || prompter.confirm("Is this the coupa-bridge simulator?", false)?
        {
            return Ok((url.url, true));
        }
        writeln!(
            prompter.output,
            "  Coupa is reached over https:// only: plain http:// is for the coupa-bridge \
             simulator"
        )?;
    }
}

struct BaseUrl {
    url: String,
    http: bool,
}

/// `https://host[:port]`, lower-case scheme, without a trailing `/` or `/api`.
fn parse_base_url(input: &str) -> Result<BaseUrl, String> {
    const EXAMPLE: &str = "e.g. https://acme.coupahost.com";
    let input = input.trim();
    let Some((scheme, rest)) = input.split_once("://") else {
        return Err(format!("expected an https:// URL, {EXAMPLE}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let http = match scheme.as_str() {
        "https" => false,
        "http" => true,
        _ => return Err(format!("expected an https:// URL, {EXAMPLE}")),
    };
    let mut rest = rest.trim_end_matches('/');
    if rest.len() >= 4 && rest[rest.len() - 4..].eq_ignore_ascii_case("/api") {
        rest = rest[..rest.len() - 4].trim_end_matches('/');
    }
    if rest.is_empty() {
        return Err(format!("the URL has no host, {EXAMPLE}"));
    }
    if rest
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'))
    {
        return Err(format!(
            "give the instance's address alone (no path, query or user), {EXAMPLE}"
        ));
    }
    Ok(BaseUrl {
        url: format!("{scheme}://{}", rest.to_ascii_lowercase()),
        http,
    })
}

/// A name or id: one word, not empty.
fn plain_value(input: &str, what: &str) -> Result<String, String> {
    let value = input.trim();
    if value.is_empty() {
        return Err(format!("the {what} must not be empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the {what} must not contain spaces"));
    }
    Ok(value.to_owned())
}

fn parse_port(input: &str) -> Result<u16, String> {
    match input.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "expected a port from 1 to 65535, found \"{input}\""
        )),
    }
}

/// `ssh-ed25519 AAAA... [comment]`; a line as `ssh-keyscan` prints it (the host first) is
/// taken too, without its host.
fn parse_host_key(input: &str) -> Result<String, String> {
    let words: Vec<&str> = input.split_whitespace().collect();
    let is_algorithm = |w: &str| w.starts_with("ssh-") || w.starts_with("ecdsa-sha2-");
    let start = match words.as_slice() {
        [first, ..] if is_algorithm(first) => 0,
        [_, second, ..] if is_algorithm(second) => 1,
        _ => return Err("expected an OpenSSH public key line: \"ssh-ed25519 AAAA...\"".into()),
    };
    let key = &words[start..];
    let blob_ok = key.get(1).is_some_and(|blob| {
        blob.len() >= 16
            && blob
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
    });
    if !blob_ok {
        return Err("expected an OpenSSH public key line: \"ssh-ed25519 AAAA...\"".into());
    }
    Ok(key.join(" "))
}

/// `sqlite:...` or `postgres://...`; one carrying a password is a secret, refused unless
/// secrets may be written.
fn parse_database_url(input: &str, secrets_allowed: bool, var: &str) -> Result<String, String> {
    let url = input.trim();
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return Err(format!(
            "expected a sqlite:// or postgres:// URL, found \"{}\"",
            config::redact_userinfo(url)
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL must not contain spaces".into());
    }
    if !secrets_allowed && config::redact_userinfo(url) != url {
        return Err(format!(
            "this URL carries a password, which init keeps out of the file: give it without \
             the password and set PGPASSWORD, or set {var} to the full URL in the environment \
             (--write-secrets writes it into the file)"
        ));
    }
    Ok(url.to_owned())
}

/// An answer to the flows question: names separated by commas (or spaces), or `all`.
fn parse_flows(input: &str) -> Result<Vec<FlowChoice>, String> {
    let mut flows = Vec::new();
    for name in input
        .split([',', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if name.eq_ignore_ascii_case("all") {
            return Ok(FlowChoice::value_variants().to_vec());
        }
        let flow = <FlowChoice as ValueEnum>::from_str(name, true)
            .map_err(|_| one_of(name, FlowChoice::value_variants()))?;
        if !flows.contains(&flow) {
            flows.push(flow);
        }
    }
    if flows.is_empty() {
        return Err("choose at least one flow: invoices, payments, pay-payments".into());
    }
    Ok(flows)
}

fn flow_list(flows: &[FlowChoice]) -> String {
    flows
        .iter()
        .filter_map(|f| f.to_possible_value())
        .map(|v| v.get_name().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Api => "api",
        Transport::Csv => "csv",
    }
}

/// "unknown value `x`: choose one of a, b, c".
fn one_of<T: ValueEnum>(found: &str, variants: &[T]) -> String {
    let names: Vec<String> = variants
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|v| v.get_name().to_owned())
        .collect();
    format!("unknown `{found}`: choose from {}", names.join(", "))
}

fn secret_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
) -> anyhow::Result<SecretString> {
    match env(var) {
        Some(value) if !value.trim().is_empty() => Ok(SecretString::from(value.trim().to_owned())),
        _ => bail!(
            "--write-secrets: {var} is not set; with --non-interactive the secret is read from \
             it (never from a flag, which would show in `ps`)"
        ),
    }
}

/// A TOML value, escaped by the `toml` crate rather than pasted into quotes.
fn toml_str(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// The file's text: only the keys the choices need, each with what it is and where to find
/// it in Coupa.
fn render(c: &Choices) -> String {
    let mut t = String::new();
    let mut line = |s: &str| {
        t.push_str(s);
        t.push('\n');
    };
    line("# coupa-bridge configuration, written by `coupa-bridge init`.");
    line("#");
    line("# Only the keys your choices need are here. Every other key, with its default and what");
    line("# it does, is in coupa-bridge.example.toml (in coupa-bridge's repository), and");
    line("# `coupa-bridge config check` prints every effective value with where it came from.");
    line("# Any key can be set by an environment variable COUPA_BRIDGE__<SECTION>__<KEY>");
    line("# (COUPA_BRIDGE__PAYMENTS__SFTP__HOST for [payments.sftp]); keep secrets there.");
    if c.client_secret.is_some() || c.sftp_password.is_some() {
        line("#");
        line(
            "# This file holds a secret: keep it readable by coupa-bridge's user only (mode 0600).",
        );
    }
    line("");

    line("[coupa]");
    line("# Your Coupa instance, without /api. Only https:// is accepted, and the server's");
    line("# certificate is always verified.");
    line(&format!("base_url = {}", toml_str(&c.base_url)));
    if c.insecure_http {
        line(
            "# !!! FOR THE SIMULATOR ONLY !!! Accepts the plain http:// base_url above: no TLS, so the",
        );
        line(
            "# token and every document cross the network in clear. `config check` and every start",
        );
        line("# warn while it is true. Delete this line when base_url is a real Coupa instance.");
        line("insecure_http_simulator_only = true");
    }
    line("# The OAuth2 client coupa-bridge signs in with: in Coupa, Setup > Integrations >");
    line(
        "# OAuth2/OpenID Connect Clients, a client with grant type \"client credentials\" and the",
    );
    line("# scopes (coupa.scopes, the default):");
    for scopes in coupa_api::auth::FLOW_SCOPES.chunks(4) {
        line(&format!("#   {}", scopes.join(", ")));
    }
    line(&format!("client_id = {}", toml_str(&c.client_id)));
    match &c.client_secret {
        Some(secret) => {
            line("# The client's secret (shown in Coupa when the client is created).");
            line(&format!(
                "client_secret = {}",
                toml_str(secret.expose_secret())
            ));
        }
        None => line(&format!("# client_secret: set {CLIENT_SECRET_VAR}")),
    }
    line("");

    line("[state]");
    line(
        "# coupa-bridge's own state (runs, the journal, the call log): sqlite://FILE (relative to",
    );
    line("# this file's folder) or postgres://...");
    line(&format!("url = {}", toml_str(&c.state_url)));
    line("");

    line("[erp]");
    line("# \"sql\": the embedded reference ERP, an AP ledger in SQLite or PostgreSQL.");
    line("kind = \"sql\"");
    line("# sqlite://FILE (relative to this file's folder) or postgres://...");
    line(&format!("url = {}", toml_str(&c.erp_url)));
    line("");

    line("[invoices]");
    line("# Approved and voided Coupa invoices into the ERP. false leaves the flow out of");
    line("# `sync all`, `run` and `doctor` (the same key in each flow's section).");
    line(&format!("enabled = {}", c.invoices));
    if c.invoices {
        line(
            "# How outcomes are reported in Coupa: \"custom-fields\" (the ERP number and status in",
        );
        line(
            "# invoice custom fields), \"history\" (integration history records, an alert on failure)",
        );
        line("# or \"runs\" (an integration run per pass, with history records and errors).");
        line(&format!("monitoring = {}", toml_str(c.monitoring.as_str())));
        line("# Invoice header custom fields (Setup > Custom Fields, Invoice Header; `doctor`");
        line("# checks they exist): the ERP's document number is written whatever the option,");
        line("# the integration status under \"custom-fields\".");
        line("erp_number_field = \"cf-erp-invoice-number\"");
        match c.monitoring {
            Monitoring::CustomFields => line("status_field = \"cf-integration-status\""),
            Monitoring::History | Monitoring::Runs => {
                line("# The Coupa Integration (Setup > Integrations) records are filed under; its");
                line("# contacts receive the alerts (`doctor --fix` creates it).");
                line("integration_code = \"ERP-INVOICES\"");
            }
        }
    }
    line("");

    line("[payments]");
    line("# The ERP's payments onto the Coupa invoices they pay.");
    line(&format!("enabled = {}", c.payments));
    if c.payments {
        line(
            "# \"api\" (a PUT on each invoice) or \"csv\" (a file for Coupa's payment loader, over SFTP).",
        );
        let transport = if c.sftp.is_some() { "csv" } else { "api" };
        line(&format!("transport = {}", toml_str(transport)));
        line("# Failed payments are reported to this Coupa Integration's contacts (Setup >");
        line("# Integrations; created when missing).");
        line("integration_code = \"ERP-PAYMENTS\"");
    }
    if let (true, Some(sftp)) = (c.payments, &c.sftp) {
        line("");
        line("[payments.sftp]");
        line(
            "# Coupa's SFTP server for the payment files (Coupa support gives host, user and key).",
        );
        line(&format!("host = {}", toml_str(&sftp.host)));
        line(&format!("port = {}", sftp.port));
        line(&format!("username = {}", toml_str(&sftp.username)));
        match &c.sftp_password {
            Some(password) => line(&format!(
                "password = {}",
                toml_str(password.expose_secret())
            )),
            None => line(&format!("# password: set {SFTP_PASSWORD_VAR}")),
        }
        line(
            "# private_key_path = \"coupa-sftp.key\"   # instead of a password: an OpenSSH private key",
        );
        line("#                                       # file, relative to this file's folder");
        line(
            "# The server's public key, pinned: the connector never trusts a key on first use. Ask",
        );
        line("# Coupa support, or run `ssh-keyscan -p PORT HOST` and check it with them.");
        line(&format!("host_key = {}", toml_str(&sftp.host_key)));
    }
    line("");

    line("[pay_payments]");
    line("# Coupa Pay payments into the ERP, applied to the invoices they settle.");
    line(&format!("enabled = {}", c.pay_payments));
    if c.pay_payments {
        line(
            "# Failures are reported to this Coupa Integration's contacts (created when missing).",
        );
        line("integration_code = \"ERP-COUPA-PAY\"");
    }
    t
}

/// The text must load as the connector will load it: a bug here must not leave a file that
/// `config check` refuses. Secrets left out are stood in for, as the environment will.
fn check_rendered(text: &str, path: &Path, c: &Choices) -> anyhow::Result<()> {
    let mut env = Vec::new();
    if c.client_secret.is_none() {
        env.push((CLIENT_SECRET_VAR.to_owned(), "placeholder".to_owned()));
    }
    if c.sftp.is_some() && c.sftp_password.is_none() {
        env.push((SFTP_PASSWORD_VAR.to_owned(), "placeholder".to_owned()));
    }
    Config::load_str(text, path, env)
        .map(|_| ())
        .context("the configuration init built is invalid (a bug in init); nothing was written")
}

/// Writes `text` to a new file in `path`'s folder, then moves it into place, so `path` is never
/// half-written. Without `force`, an existing `path` is never replaced, even one created since
/// the check at the start.
fn write_atomically(path: &Path, text: &str, secret: bool, force: bool) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    let (temp_path, mut file) = create_temp(dir, &name, secret)?;
    let written = (|| -> anyhow::Result<()> {
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        if force {
            std::fs::rename(&temp_path, path)?;
        } else {
            // A hard link fails when the name is taken: no replacing a file that appeared.
            match std::fs::hard_link(&temp_path, path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    bail!("{} exists: pass --force to replace it", path.display())
                }
                // A file system without hard links.
                Err(_) if !path.exists() => std::fs::rename(&temp_path, path)?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&temp_path);
    written.with_context(|| format!("cannot write {}", path.display()))?;
    // The rename itself is durable once the folder is synced; not every platform allows it.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A new file beside the target, mode 0600 on unix when it will hold a secret.
fn create_temp(dir: &Path, name: &str, secret: bool) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let mut last_error = None;
    for attempt in 0..16u32 {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| anyhow!("no randomness: {e}"))?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let temp_path = dir.join(format!(".{name}.{suffix}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if secret { 0o600 } else { 0o666 });
        }
        #[cfg(not(unix))]
        let _ = secret;
        match options.open(&temp_path) {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 15 => {
                last_error = Some(e)
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create a file in {}", dir.display()));
            }
        }
    }
    Err(anyhow!(
        "cannot create a file in {}: {last_error:?}",
        dir.display()
    ))
}

/// What was written and what to do next; never a secret.
fn summary(out: &mut dyn Write, path: &Path, c: &Choices) -> anyhow::Result<()> {
    let secret_written = c.client_secret.is_some() || c.sftp_password.is_some();
    if secret_written {
        writeln!(
            out,
            "Wrote {} (mode 0600: it holds a secret; keep it that way).",
            path.display()
        )?;
    } else {
        writeln!(out, "Wrote {}.", path.display())?;
    }
    if c.insecure_http {
        writeln!(
            out,
            "Warning: {} is plain http://, accepted for the coupa-bridge simulator only.",
            c.base_url
        )?;
    }
    let mut vars = Vec::new();
    if c.client_secret.is_none() {
        vars.push((CLIENT_SECRET_VAR, "the OAuth2 client's secret"));
    }
    if c.sftp.is_some() && c.sftp_password.is_none() {
        vars.push((
            SFTP_PASSWORD_VAR,
            "the SFTP password (or set payments.sftp.private_key_path in the file)",
        ));
    }
    if !vars.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Set in the environment of every coupa-bridge command (the file does not hold it):"
        )?;
        let width = vars.iter().map(|(var, _)| var.len()).max().unwrap_or(0);
        for (var, what) in vars {
            writeln!(out, "  {var:<width$}   {what}")?;
        }
    }
    let config = if path == Path::new(config::DEFAULT_PATH) {
        String::new()
    } else {
        format!(" --config {}", path.display())
    };
    let steps = [
        (
            format!("coupa-bridge doctor{config}"),
            "checks Coupa, SFTP, the ERP and the state store (--fix creates the Integrations and the ERP schema)",
        ),
        (
            format!("coupa-bridge sync all --dry-run{config}"),
            "shows what a pass would do, changing nothing",
        ),
        (
            format!("coupa-bridge sync all{config}"),
            "runs one pass of each flow",
        ),
        (
            format!("coupa-bridge run{config}"),
            "runs the daemon: every flow on its schedule",
        ),
    ];
    let width = steps.iter().map(|(cmd, _)| cmd.len()).max().unwrap_or(0);
    writeln!(out)?;
    writeln!(out, "Next steps:")?;
    for (n, (cmd, what)) in steps.iter().enumerate() {
        writeln!(out, "  {}. {cmd:<width$}   # {what}", n + 1)?;
    }
    Ok(())
}
