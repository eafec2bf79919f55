//! Admin routes over alerting (behind `auth::require_admin`): the
//! conditions open now, for the dashboard, and a test message on every
//! channel. Channels are named by origin only: webhook paths and SMTP
//! passwords are secrets.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::alerts::{AlertCounts, OpenCondition, TestResult};
use crate::app_state::AppState;
use crate::error::ApiError;

#[derive(Serialize)]
pub struct AlertList {
    /// Open conditions, oldest first.
    pub open: Vec<OpenCondition>,
    pub channels: Vec<String>,
    /// Deliveries since start (one alert to one channel each).
    pub deliveries: AlertCounts,
}

#[derive(Serialize)]
pub struct TestResults {
    /// Every channel accepted the test message.
    pub ok: bool,
    pub channels: Vec<TestResult>,
}

/// `GET /api/alerts`
pub async fn list_alerts(State(state): State<AppState>) -> Json<AlertList> {
    Json(AlertList {
        open: state.alerts.open().to_vec(),
        channels: state.alerts.channel_names(),
        deliveries: state.alerts.counters().snapshot(),
    })
}

/// `POST /api/alerts/test`: one attempt per channel, each bounded by
/// `ALERT_TIMEOUT_SECS`, all at once.
pub async fn test_alerts(State(state): State<AppState>) -> Result<Json<TestResults>, ApiError> {
    if state.alerts.channel_names().is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_configured",
            "no alert channel is configured: set ALERT_WEBHOOK_URLS (a JSON array of webhook \
             URLs) and/or SMTP_URL with ALERT_EMAIL_FROM and ALERT_EMAIL_TO, then restart keygate",
        ));
    }
    let channels = state.alerts.send_test().await;
    Ok(Json(TestResults {
        ok: channels.iter().all(|c| c.ok),
        channels,
    }))
}
