//! The alert variables (`ALERT_*`, `SMTP_URL`), read into
//! `alerts::AlertSettings`. Webhook and SMTP URLs are secrets: an error
//! names the variable and what is wrong, never the value.

use crate::alerts::settings::{
    AlertSettings, DeliveryBounds, EmailSettings, SmtpUrl, WebhookUrl, parse_mailbox,
};

use super::{ConfigError, parse_number, parse_secs, unquoted_list};

/// Most retries accepted: past it a dead channel would hold its queue for
/// a long time, one alert after another.
const MAX_RETRIES: u32 = 10;

pub(super) fn alert_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<AlertSettings, ConfigError> {
    let defaults = AlertSettings::default();
    let delivery = DeliveryBounds::default();
    let retries = parse_number(get, "ALERT_RETRIES", delivery.retries)?;
    if retries > MAX_RETRIES {
        return Err(ConfigError::new(
            "ALERT_RETRIES",
            format!("at most {MAX_RETRIES}, got {retries}"),
        ));
    }
    Ok(AlertSettings {
        webhooks: match get("ALERT_WEBHOOK_URLS") {
            Some(text) => webhook_urls(&text)?,
            None => Vec::new(),
        },
        webhook_format: match get("ALERT_WEBHOOK_FORMAT") {
            Some(name) => name.parse().map_err(|()| {
                ConfigError::new(
                    "ALERT_WEBHOOK_FORMAT",
                    format!("unknown format {name:?}; use slack (a \"text\" field) or json"),
                )
            })?,
            None => defaults.webhook_format,
        },
        email: email(get)?,
        dedup_window: parse_secs(get, "ALERT_DEDUP_SECS", 900.0)?,
        check_interval: parse_secs(get, "ALERT_CHECK_SECS", 1.0)?
            .max(std::time::Duration::from_millis(10)),
        ejections: parse_number(get, "ALERT_EJECTIONS", defaults.ejections)?.max(1),
        delivery: DeliveryBounds {
            timeout: parse_secs(get, "ALERT_TIMEOUT_SECS", 10.0)?
                .max(std::time::Duration::from_millis(10)),
            retries,
            retry_delay: parse_secs(get, "ALERT_RETRY_DELAY_SECS", 1.0)?,
            queue: parse_number(get, "ALERT_QUEUE_SIZE", delivery.queue)?.max(1),
        },
    })
}

/// A JSON array of http(s) URLs (or the unquoted form dotenvy leaves).
fn webhook_urls(text: &str) -> Result<Vec<WebhookUrl>, ConfigError> {
    let variable = "ALERT_WEBHOOK_URLS";
    let urls: Vec<String> = serde_json::from_str(text)
        .ok()
        .or_else(|| unquoted_list(text))
        .ok_or_else(|| {
            ConfigError::new(
                variable,
                "must be a JSON array of URLs, e.g. [\"https://hooks.slack.com/services/…\"]",
            )
        })?;
    urls.iter()
        .enumerate()
        .map(|(index, url)| {
            WebhookUrl::parse(url).map_err(|problem| {
                ConfigError::new(variable, format!("entry {} {problem}", index + 1))
            })
        })
        .collect()
}

/// `SMTP_URL` with `ALERT_EMAIL_FROM` and `ALERT_EMAIL_TO`: all three, or
/// none.
fn email(get: &impl Fn(&str) -> Option<String>) -> Result<Option<EmailSettings>, ConfigError> {
    let (url, from, to) = (
        get("SMTP_URL"),
        get("ALERT_EMAIL_FROM"),
        get("ALERT_EMAIL_TO"),
    );
    let Some(url) = url else {
        if from.is_some() || to.is_some() {
            return Err(ConfigError::new(
                "SMTP_URL",
                "is needed to send alert e-mail (ALERT_EMAIL_FROM or ALERT_EMAIL_TO is set)",
            ));
        }
        return Ok(None);
    };
    let smtp = SmtpUrl::parse(&url).map_err(|problem| ConfigError::new("SMTP_URL", problem))?;
    let from = from.ok_or_else(|| {
        ConfigError::new(
            "ALERT_EMAIL_FROM",
            "is needed with SMTP_URL (the sender's address)",
        )
    })?;
    let from = parse_mailbox(&from).map_err(|e| ConfigError::new("ALERT_EMAIL_FROM", e))?;
    let to = to.ok_or_else(|| {
        ConfigError::new(
            "ALERT_EMAIL_TO",
            "is needed with SMTP_URL (a JSON array of addresses)",
        )
    })?;
    let to = address_list(&to)?;
    Ok(Some(EmailSettings { smtp, from, to }))
}

/// A JSON array of addresses, its unquoted form, or addresses separated by
/// commas.
fn address_list(text: &str) -> Result<Vec<lettre::message::Mailbox>, ConfigError> {
    let variable = "ALERT_EMAIL_TO";
    let items: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .ok()
            .or_else(|| unquoted_list(text))
            .ok_or_else(|| ConfigError::new(variable, "must be a JSON array of addresses"))?
    } else {
        text.split(',').map(str::to_string).collect()
    };
    let addresses = items
        .iter()
        .filter(|item| !item.trim().is_empty())
        .map(|item| parse_mailbox(item).map_err(|e| ConfigError::new(variable, e)))
        .collect::<Result<Vec<_>, _>>()?;
    if addresses.is_empty() {
        return Err(ConfigError::new(variable, "names no address"));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::alerts::settings::WebhookFormat;

    fn settings(vars: &[(&str, &str)]) -> Result<AlertSettings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        alert_settings(&|name: &str| map.get(name).cloned())
    }

    #[test]
    fn defaults_have_no_channel_and_the_documented_bounds() {
        let settings = settings(&[]).unwrap();
        assert!(settings.webhooks.is_empty() && settings.email.is_none());
        assert_eq!(settings.webhook_format, WebhookFormat::Slack);
        assert_eq!(settings.dedup_window, Duration::from_secs(900));
        assert_eq!(settings.check_interval, Duration::from_secs(1));
        assert_eq!(settings.delivery.timeout, Duration::from_secs(10));
        assert_eq!(settings.delivery.retries, 3);
        assert_eq!(settings.delivery.queue, 100);
        assert_eq!(settings.ejections, 2);
    }

    #[test]
    fn channels_are_read_and_checked() {
        let read = settings(&[
            (
                "ALERT_WEBHOOK_URLS",
                r#"["https://hooks.slack.com/services/T/B/x", "http://127.0.0.1:9/h"]"#,
            ),
            ("ALERT_WEBHOOK_FORMAT", "json"),
            ("SMTP_URL", "smtps://alice:pw@mail.example:465"),
            ("ALERT_EMAIL_FROM", "keygate <keygate@example.com>"),
            (
                "ALERT_EMAIL_TO",
                r#"["ops@example.com", "oncall@example.com"]"#,
            ),
        ])
        .unwrap();
        assert_eq!(read.webhooks.len(), 2);
        assert_eq!(read.webhook_format, WebhookFormat::Json);
        let email = read.email.unwrap();
        assert_eq!(email.to.len(), 2);
        assert_eq!(email.smtp.shown(), "smtps://mail.example:465");
        let plain = settings(&[
            ("SMTP_URL", "smtp://mail.example"),
            ("ALERT_EMAIL_FROM", "k@example.com"),
            ("ALERT_EMAIL_TO", "a@example.com, b@example.com"),
        ])
        .unwrap();
        assert_eq!(plain.email.unwrap().to.len(), 2);
    }

    #[test]
    fn mistakes_name_the_variable_and_never_echo_secrets() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("ALERT_WEBHOOK_URLS", "https://hooks/SECRET")],
                "ALERT_WEBHOOK_URLS",
            ),
            (
                &[("ALERT_WEBHOOK_URLS", r#"["ftp://h/SECRET"]"#)],
                "ALERT_WEBHOOK_URLS",
            ),
            (&[("ALERT_WEBHOOK_FORMAT", "xml")], "ALERT_WEBHOOK_FORMAT"),
            (&[("SMTP_URL", "mail://u:SECRET@h")], "SMTP_URL"),
            (&[("ALERT_EMAIL_TO", "ops@example.com")], "SMTP_URL"),
            (&[("SMTP_URL", "smtp://u:SECRET@h")], "ALERT_EMAIL_FROM"),
            (
                &[
                    ("SMTP_URL", "smtp://u:SECRET@h"),
                    ("ALERT_EMAIL_FROM", "k@example.com"),
                ],
                "ALERT_EMAIL_TO",
            ),
            (
                &[
                    ("SMTP_URL", "smtp://u:SECRET@h"),
                    ("ALERT_EMAIL_FROM", "k@example.com"),
                    ("ALERT_EMAIL_TO", "[]"),
                ],
                "ALERT_EMAIL_TO",
            ),
            (&[("ALERT_RETRIES", "50")], "ALERT_RETRIES"),
            (&[("ALERT_DEDUP_SECS", "soon")], "ALERT_DEDUP_SECS"),
        ];
        for (vars, variable) in cases {
            let error = settings(vars).err().unwrap();
            assert_eq!(error.variable, *variable, "{vars:?}");
            assert!(!error.to_string().contains("SECRET"), "{error}");
        }
    }
}
