//! Alerts by e-mail, through lettre's SMTP client: one plain-text message
//! per alert to every `ALERT_EMAIL_TO` address. `smtp://` upgrades with
//! STARTTLS when the server offers it (or always, with `?tls=required`);
//! `smtps://` speaks TLS from the start. No connection is kept between
//! alerts (they are rare). The password stays inside lettre: names and
//! errors show the server's origin only, and an error text that somehow
//! quotes the password has it masked.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::channel::DeliveryError;
use super::event::Alert;
use super::message::{email_body, email_subject};
use super::settings::{EmailSettings, SmtpUrl};

pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    smtp: SmtpUrl,
    from: Mailbox,
    to: Vec<Mailbox>,
    name: String,
}

/// The SMTP client could not be set up from `SMTP_URL`.
#[derive(Debug, thiserror::Error)]
#[error("SMTP_URL ({server}): {problem}")]
pub struct EmailSetupError {
    server: String,
    problem: String,
}

impl EmailChannel {
    /// `timeout` bounds each network step inside lettre; the whole attempt
    /// is bounded by the caller.
    pub fn new(settings: &EmailSettings, timeout: Duration) -> Result<Self, EmailSetupError> {
        let smtp = settings.smtp.clone();
        let setup_error = |problem: String| EmailSetupError {
            server: smtp.shown().to_string(),
            problem: mask(&problem, &smtp),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.expose())
            .map_err(|e| setup_error(e.to_string()))?;
        if !smtp.implicit_tls() && !smtp.tls_given() {
            // lettre reads a bare smtp:// as plain text; STARTTLS whenever
            // the server offers it is the safer reading.
            let parameters = TlsParameters::new(smtp.host().to_string())
                .map_err(|e| setup_error(e.to_string()))?;
            builder = builder.tls(Tls::Opportunistic(parameters));
        }
        let transport = builder.timeout(Some(timeout)).build();
        Ok(Self {
            transport,
            name: format!("email ({})", smtp.shown()),
            smtp,
            from: settings.from.clone(),
            to: settings.to.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(email_subject(alert))
            .message_id(None)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(email_body(alert))
            .map_err(|e| DeliveryError(format!("could not build the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| DeliveryError(mask(&e.to_string(), &self.smtp)))
    }
}

/// `text` with the URL's password (as written and percent-decoded) masked.
fn mask(text: &str, smtp: &SmtpUrl) -> String {
    let Some(password) = smtp.password() else {
        return text.to_string();
    };
    let written = password.expose_secret();
    let mut text = text.replace(written, "****");
    if let Some(decoded) = percent_decoded(written)
        && !decoded.is_empty()
    {
        text = text.replace(&decoded, "****");
    }
    text
}

/// `%24` as `$`; `None` if that is not UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_masked_as_written_and_decoded() {
        let smtp = SmtpUrl::parse("smtp://alice:pa%24%24word@mail.example:587").unwrap();
        assert_eq!(
            mask("auth failed for pa$$word and pa%24%24word", &smtp),
            "auth failed for **** and ****"
        );
        assert_eq!(percent_decoded("a%2Fb%"), Some("a/b%".into()));
    }
}
