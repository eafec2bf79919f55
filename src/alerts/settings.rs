//! What the alert variables say, as types that can only exist checked:
//! channels (webhook URLs, the SMTP server and addresses), the dedup window,
//! the watcher's interval and every bound on delivery. `config` parses the
//! environment into these; nothing here reads it.
//!
//! Two of these are secrets and are never printed whole: a webhook URL (a
//! Slack incoming-webhook URL *is* its credential) and the SMTP URL (it
//! carries a password). Both show only scheme, host and port.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

/// Every alert setting; `AlertSettings::default()` is "no channels",
/// with the documented defaults.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// `ALERT_WEBHOOK_URLS`.
    pub webhooks: Vec<WebhookUrl>,
    /// `ALERT_WEBHOOK_FORMAT`: the body every webhook gets.
    pub webhook_format: WebhookFormat,
    /// `SMTP_URL`, `ALERT_EMAIL_FROM`, `ALERT_EMAIL_TO`; `None` without
    /// `SMTP_URL`.
    pub email: Option<EmailSettings>,
    /// `ALERT_DEDUP_SECS`: at most one alert per condition in this window.
    pub dedup_window: Duration,
    /// `ALERT_CHECK_SECS`: how often the pools are looked at.
    pub check_interval: Duration,
    /// `ALERT_EJECTIONS`: the ejection count from which a key's ejection is
    /// reported (2: its second ejection and later ones).
    pub ejections: u32,
    pub delivery: DeliveryBounds,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            webhook_format: WebhookFormat::Slack,
            email: None,
            dedup_window: Duration::from_secs(900),
            check_interval: Duration::from_secs(1),
            ejections: 2,
            delivery: DeliveryBounds::default(),
        }
    }
}

/// Every bound on sending, so a dead channel costs a known, small amount.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryBounds {
    /// `ALERT_TIMEOUT_SECS`: the limit on one attempt (connect, send,
    /// answer).
    pub timeout: Duration,
    /// `ALERT_RETRIES`: attempts after the first before an alert is given
    /// up on (logged and counted as failed).
    pub retries: u32,
    /// `ALERT_RETRY_DELAY_SECS`: the wait before the first retry, doubled
    /// for each one after it (at most `MAX_RETRY_DELAY`).
    pub retry_delay: Duration,
    /// `ALERT_QUEUE_SIZE`: alerts waiting per channel; past it new ones are
    /// dropped and counted.
    pub queue: usize,
}

/// The longest wait between two attempts, however many retries there are:
/// a channel that comes back is used again within this time.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

impl DeliveryBounds {
    /// The wait before retry number `retry` (0: the first retry).
    pub fn delay_before(&self, retry: u32) -> Duration {
        self.retry_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(MAX_RETRY_DELAY)
    }
}

impl Default for DeliveryBounds {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retries: 3,
            retry_delay: Duration::from_secs(1),
            queue: 100,
        }
    }
}

/// The body webhooks get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"text": "…"}`: what Slack, Mattermost, Rocket.Chat and Discord's
    /// Slack-compatible endpoint accept.
    Slack,
    /// A structured object (`event`, `provider`, `key_id`, `reason`,
    /// `since`, `until`, …) for programs.
    Json,
}

impl FromStr for WebhookFormat {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "slack" | "text" => Ok(Self::Slack),
            "json" => Ok(Self::Json),
            _ => Err(()),
        }
    }
}

/// An `http(s)` webhook URL. Its path and query are its secret: only
/// `shown` (scheme, host and port) is ever printed.
#[derive(Clone)]
pub struct WebhookUrl {
    url: Url,
}

impl WebhookUrl {
    /// Checks `text`; the error never quotes it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let url = Url::parse(text.trim()).map_err(|_| "is not a URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must start with http:// or https://");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host");
        }
        Ok(Self { url })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `https://hooks.example.com:443`-like: enough to tell channels apart.
    pub fn shown(&self) -> String {
        origin(&self.url)
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.shown())
    }
}

/// How alert e-mail leaves: the server, the sender and the recipients.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub smtp: SmtpUrl,
    pub from: Mailbox,
    /// At least one.
    pub to: Vec<Mailbox>,
}

/// `smtp://user:pass@host:587` (STARTTLS when the server offers it, or
/// always with `?tls=required`) or `smtps://…` (implicit TLS). Held as a
/// secret; `shown` has no user or password.
#[derive(Clone)]
pub struct SmtpUrl {
    url: SecretString,
    password: Option<SecretString>,
    host: String,
    shown: String,
    implicit_tls: bool,
    /// The URL names its TLS mode (`?tls=required|opportunistic`).
    tls_given: bool,
}

impl SmtpUrl {
    /// Checks `text`; the error never quotes it (it holds a password).
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        const SHAPE: &str = "must look like smtp://user:password@host:587 (STARTTLS when offered) \
                             or smtps://user:password@host:465 (implicit TLS)";
        let url = Url::parse(text.trim()).map_err(|_| SHAPE)?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return Err(SHAPE),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(SHAPE)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = url
            .query_pairs()
            .find(|(name, _)| name == "tls")
            .map(|(_, value)| value.into_owned());
        if tls
            .as_deref()
            .is_some_and(|t| implicit_tls || !matches!(t, "required" | "opportunistic"))
        {
            return Err("takes ?tls=required or ?tls=opportunistic, and only with smtp://");
        }
        let password = url
            .password()
            .filter(|p| !p.is_empty())
            .map(SecretString::from);
        Ok(Self {
            shown: origin(&url),
            url: SecretString::from(text.trim()),
            password,
            host,
            implicit_tls,
            tls_given: tls.is_some(),
        })
    }

    /// The URL, password included, for the SMTP client only.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The password as written in the URL (percent-encoded), to keep it
    /// out of error texts.
    pub fn password(&self) -> Option<&SecretString> {
        self.password.as_ref()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `smtps://`: TLS from the first byte.
    pub fn implicit_tls(&self) -> bool {
        self.implicit_tls
    }

    /// The URL chose its TLS mode (`?tls=…`); otherwise `smtp://` upgrades
    /// with STARTTLS when the server offers it.
    pub fn tls_given(&self) -> bool {
        self.tls_given
    }

    /// `smtp://host:587`-like, without user or password.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({})", self.shown)
    }
}

/// `scheme://host:port`, the port always written (the default one too).
fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// An e-mail address as `ALERT_EMAIL_FROM` or one of `ALERT_EMAIL_TO`
/// (`ops@example.com` or `Ops <ops@example.com>`).
pub fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{:?} is not an e-mail address", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_shows_only_its_origin() {
        let url = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/SECRETTOKEN").unwrap();
        assert_eq!(url.shown(), "https://hooks.slack.com:443");
        assert!(!format!("{url:?}").contains("SECRET"));
        assert!(WebhookUrl::parse("ftp://x/y").is_err());
        assert!(WebhookUrl::parse("hooks.slack.com/x").is_err());
    }

    #[test]
    fn an_smtp_url_hides_its_credentials() {
        let url = SmtpUrl::parse("smtp://alice:pa%24%24word@mail.example:587").unwrap();
        assert_eq!(url.shown(), "smtp://mail.example:587");
        assert!(!url.implicit_tls() && !url.tls_given());
        assert_eq!(url.host(), "mail.example");
        assert!(!format!("{url:?}").contains("word"));
        assert_eq!(url.password().unwrap().expose_secret(), "pa%24%24word");
        let tls = SmtpUrl::parse("smtps://bob:pw@mail.example").unwrap();
        assert!(tls.implicit_tls());
        assert_eq!(tls.shown(), "smtps://mail.example");
        assert!(
            SmtpUrl::parse("smtp://mail.example?tls=required")
                .unwrap()
                .tls_given()
        );
    }

    #[test]
    fn a_bad_smtp_url_is_refused_without_echoing_it() {
        for text in [
            "http://alice:hunter2@mail.example",
            "smtp://",
            "alice:hunter2@mail.example",
            "smtps://alice:hunter2@mail.example?tls=required",
            "smtp://alice:hunter2@mail.example?tls=maybe",
        ] {
            let error = SmtpUrl::parse(text).err().unwrap();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn retries_back_off_doubling_up_to_the_cap() {
        let bounds = DeliveryBounds {
            retry_delay: Duration::from_secs(1),
            ..DeliveryBounds::default()
        };
        let delays: Vec<u64> = (0..8).map(|r| bounds.delay_before(r).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(bounds.delay_before(u32::MAX), MAX_RETRY_DELAY);
    }

    #[test]
    fn mailboxes_parse_with_or_without_a_name() {
        assert_eq!(
            parse_mailbox("ops@example.com").unwrap().email.to_string(),
            "ops@example.com"
        );
        assert!(parse_mailbox("Ops <ops@example.com>").is_ok());
        assert!(parse_mailbox("not an address").is_err());
    }
}
