//! The bench's results: the figures per API and path, what each proxy adds
//! to the direct path, the targets (keygate against the honest
//! baseline), and their Markdown and JSON forms.

use std::fmt::Write;

use serde::Serialize;

use super::Options;
use super::api::Api;
use super::load::Sample;
use super::procfs::Machine;
use super::stats::{Bound, Limit, TargetCheck, paired, ratio, spread};

/// How the load reached the fake upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    Direct,
    Keygate,
    Baseline,
}

impl PathKind {
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Keygate => "keygate",
            PathKind::Baseline => "baseline",
        }
    }
}

/// One scenario on one path, one run or the median over runs.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Figures {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Streaming only: send to first content event.
    pub ttft_p50_ms: Option<f64>,
    /// Failed requests (summed over runs in a median).
    pub errors: u64,
    /// CPU time of the proxy process per request (none for direct).
    pub cpu_us_per_request: Option<f64>,
    /// The part of `cpu_us_per_request` spent in the kernel (sockets,
    /// wake-ups, file writes).
    pub kernel_cpu_us_per_request: Option<f64>,
}

impl Figures {
    /// `cpu` is the proxy's CPU per request in µs: in all, and in the
    /// kernel.
    pub fn from_sample(sample: &Sample, stream: bool, cpu: Option<(f64, f64)>) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        Self {
            requests_per_sec: sample.requests_per_sec(),
            p50_ms: ms(sample.latency.value_at_quantile(0.5)),
            p99_ms: ms(sample.latency.value_at_quantile(0.99)),
            ttft_p50_ms: stream.then(|| ms(sample.ttft.value_at_quantile(0.5))),
            errors: sample.errors,
            cpu_us_per_request: cpu.map(|(all, _)| all),
            kernel_cpu_us_per_request: cpu.map(|(_, kernel)| kernel),
        }
    }
}

/// A scenario on a path: the median of its runs, and the runs themselves
/// (in round order, so run `i` of two paths were taken side by side).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measured {
    pub median: Figures,
    pub runs: Vec<Figures>,
}

/// What a proxy adds to the direct path (ms), and its throughput ratio.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Added {
    pub c1_p50_ms: f64,
    pub c1_p99_ms: f64,
    pub high_p50_ms: f64,
    pub high_p99_ms: f64,
    pub ttft_p50_ms: Option<f64>,
    /// Requests/s at high concurrency ÷ direct's.
    pub high_rps_vs_direct: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PathFigures {
    pub path: PathKind,
    pub concurrency_1: Measured,
    pub concurrency_high: Measured,
    pub streaming: Measured,
    /// None for the direct path itself.
    pub added: Option<Added>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ApiFigures {
    pub api: Api,
    pub paths: Vec<PathFigures>,
}

impl ApiFigures {
    /// Zips the three scenarios' per-path figures; the direct path (if
    /// present) is the reference for `added`.
    pub fn combine(
        api: Api,
        kinds: impl Iterator<Item = PathKind>,
        one: Vec<Measured>,
        many: Vec<Measured>,
        stream: Vec<Measured>,
    ) -> Self {
        let mut paths: Vec<PathFigures> = kinds
            .zip(one)
            .zip(many)
            .zip(stream)
            .map(|(((path, c1), high), streaming)| PathFigures {
                path,
                concurrency_1: c1,
                concurrency_high: high,
                streaming,
                added: None,
            })
            .collect();
        let direct = paths.iter().find(|p| p.path == PathKind::Direct).cloned();
        if let Some(direct) = direct {
            for path in paths.iter_mut().filter(|p| p.path != PathKind::Direct) {
                path.added = Some(added(path, &direct));
            }
        }
        Self { api, paths }
    }

    fn path(&self, kind: PathKind) -> Option<&PathFigures> {
        self.paths.iter().find(|p| p.path == kind)
    }
}

fn added(path: &PathFigures, direct: &PathFigures) -> Added {
    let (one, high) = (&path.concurrency_1.median, &path.concurrency_high.median);
    let (d_one, d_high) = (
        &direct.concurrency_1.median,
        &direct.concurrency_high.median,
    );
    Added {
        c1_p50_ms: one.p50_ms - d_one.p50_ms,
        c1_p99_ms: one.p99_ms - d_one.p99_ms,
        high_p50_ms: high.p50_ms - d_high.p50_ms,
        high_p99_ms: high.p99_ms - d_high.p99_ms,
        ttft_p50_ms: path
            .streaming
            .median
            .ttft_p50_ms
            .zip(direct.streaming.median.ttft_p50_ms)
            .map(|(proxied, direct)| proxied - direct),
        high_rps_vs_direct: ratio(high.requests_per_sec, d_high.requests_per_sec),
    }
}

/// Run settings, as the JSON records them.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub runs: usize,
    pub high_concurrency: usize,
    /// Tokio workers of keygate (its default under the pinning) and of the
    /// baseline (set to match).
    pub server_workers: usize,
    pub upstream_keys_per_provider: usize,
    /// keygate's `KEY_STRATEGY`; `None` is keygate's default.
    pub key_strategy: Option<String>,
    /// Workers were sessions sending cacheable prompts (`--sessions`).
    pub sessions: bool,
    /// `--keygate-env` settings, as given.
    pub keygate_env: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub pinning: String,
    pub settings: Settings,
    pub apis: Vec<ApiFigures>,
    pub keygate_peak_rss_mb: Option<f64>,
    pub baseline_peak_rss_mb: Option<f64>,
    pub targets: Vec<TargetCheck>,
}

impl Report {
    pub fn build(
        machine: Machine,
        pinning: String,
        options: &Options,
        apis: Vec<ApiFigures>,
        keygate_peak_rss_mb: Option<f64>,
        baseline_peak_rss_mb: Option<f64>,
    ) -> Self {
        let mut targets: Vec<TargetCheck> = apis.iter().flat_map(api_targets).collect();
        targets.push(TargetCheck::new(
            "peak RSS of keygate (VmHWM, whole run)",
            "keygate",
            keygate_peak_rss_mb,
            None,
            Limit {
                bound: Bound::AtMost,
                value: 30.0,
                unit: "MB",
            },
        ));
        Self {
            machine,
            pinning,
            settings: Settings {
                duration_secs: options.duration.as_secs_f64(),
                warmup_secs: options.warmup.as_secs_f64(),
                runs: options.runs,
                high_concurrency: options.concurrency,
                server_workers: options.server_workers,
                upstream_keys_per_provider: options.keys_per_provider,
                key_strategy: options.strategy.clone(),
                sessions: options.sessions,
                keygate_env: options
                    .keygate_env
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect(),
            },
            apis,
            keygate_peak_rss_mb,
            baseline_peak_rss_mb,
            targets,
        }
    }

    /// The whole report as Markdown: machine, figures, overheads, targets.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let s = &self.settings;
        let _ = writeln!(
            out,
            "Machine: {}, {} logical CPUs, Linux {} (load average at start: {}).",
            m.cpu_model, m.logical_cpus, m.kernel, m.load_average_at_start
        );
        let _ = writeln!(out, "Pinning: {}.", self.pinning);
        let _ = writeln!(
            out,
            "Servers: keygate and the baseline each on {} tokio worker thread(s); {} upstream \
             key(s) per provider; client keys required (GATEWAY_API_KEYS) and sent on every \
             request; keygate with RUST_LOG=warn, KEY_STRATEGY {}{}.{}",
            s.server_workers,
            s.upstream_keys_per_provider,
            s.key_strategy.as_deref().unwrap_or("default"),
            if s.keygate_env.is_empty() {
                String::new()
            } else {
                format!(", {}", s.keygate_env.join(", "))
            },
            if s.sessions {
                " Each load worker is a session (x-session-id) sending a ~1,600-token system prompt."
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "Method: closed loop, {} run(s) of {} s per scenario and path after {} s of warm-up, \
             paths interleaved run by run; medians of the runs. Latencies in ms.\n",
            s.runs, s.duration_secs, s.warmup_secs
        );
        let high = s.high_concurrency;
        self.figures_table(&mut out, high);
        self.added_table(&mut out, high);
        let mb = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1} MB"));
        let _ = writeln!(
            out,
            "Peak RSS: keygate {}, baseline {}.\n",
            mb(self.keygate_peak_rss_mb),
            mb(self.baseline_peak_rss_mb)
        );
        self.targets_table(&mut out, high);
        out
    }

    fn figures_table(&self, out: &mut String, high: usize) {
        let _ = writeln!(
            out,
            "| API | path | req/s c=1 | p50 c=1 | p99 c=1 | req/s c={high} | p50 c={high} | \
             p99 c={high} | TTFT p50 | CPU/req c={high} | errors |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for api in &self.apis {
            for p in &api.paths {
                let (one, many, st) = (
                    &p.concurrency_1.median,
                    &p.concurrency_high.median,
                    &p.streaming.median,
                );
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.3} | {:.3} | {:.0} | {:.3} | {:.3} | {} | {} | {} |",
                    api.api.name(),
                    p.path.name(),
                    one.requests_per_sec,
                    one.p50_ms,
                    one.p99_ms,
                    many.requests_per_sec,
                    many.p50_ms,
                    many.p99_ms,
                    opt(st.ttft_p50_ms, 3, ""),
                    opt(many.cpu_us_per_request, 1, " µs"),
                    one.errors + many.errors + st.errors,
                );
            }
        }
        out.push('\n');
    }

    fn added_table(&self, out: &mut String, high: usize) {
        let _ = writeln!(
            out,
            "| API | path | added p50 c=1 | added p99 c=1 | added p50 c={high} | \
             added p99 c={high} | added TTFT p50 | req/s c={high} ÷ direct |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
        for api in &self.apis {
            for p in &api.paths {
                let Some(a) = &p.added else { continue };
                let _ = writeln!(
                    out,
                    "| {} | {} | {:+.3} | {:+.3} | {:+.3} | {:+.3} | {} | {} |",
                    api.api.name(),
                    p.path.name(),
                    a.c1_p50_ms,
                    a.c1_p99_ms,
                    a.high_p50_ms,
                    a.high_p99_ms,
                    a.ttft_p50_ms
                        .map_or_else(|| "n/a".into(), |v| format!("{v:+.3}")),
                    opt(a.high_rps_vs_direct, 2, "×"),
                );
            }
        }
        out.push('\n');
    }

    /// One row per measure, one column per API: the value from the medians,
    /// the range of the same comparison over the paired runs, the verdict
    /// and, when missed, by how much.
    fn targets_table(&self, out: &mut String, high: usize) {
        let _ = writeln!(
            out,
            "Targets, keygate against the baseline: from the medians, and in brackets the \
             range over the runs, each run compared with the baseline run beside it.\n"
        );
        let mut header = String::from("| measure | target |");
        let mut rule = String::from("|---|---|");
        for api in Api::ALL {
            let _ = write!(header, " {} |", api.name());
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        let mut measures: Vec<&'static str> = Vec::new();
        for t in &self.targets {
            if !measures.contains(&t.measure) {
                measures.push(t.measure);
            }
        }
        for measure in measures {
            let checks: Vec<&TargetCheck> = self
                .targets
                .iter()
                .filter(|t| t.measure == measure)
                .collect();
            let Some(first) = checks.first() else {
                continue;
            };
            let named = measure.replace("high concurrency", &format!("concurrency {high}"));
            let mut row = format!("| {named} | {} |", limit_text(&first.limit));
            for api in Api::ALL {
                let own = checks.iter().find(|t| t.scope == api.name());
                let whole_process = checks.iter().find(|t| t.scope == "keygate");
                let cell = match (own, whole_process) {
                    (Some(t), _) => check_text(t),
                    // A whole-process figure is shown once, in the first column.
                    (None, Some(t)) if api == Api::ALL[0] => check_text(t),
                    (None, Some(_)) => "(one figure for both)".into(),
                    (None, None) => "n/a".into(),
                };
                let _ = write!(row, " {cell} |");
            }
            let _ = writeln!(out, "{row}");
        }
    }
}

/// The per-API targets: keygate compared with the baseline.
fn api_targets(api: &ApiFigures) -> Vec<TargetCheck> {
    let scope = api.api.name();
    let (Some(keygate), Some(baseline)) =
        (api.path(PathKind::Keygate), api.path(PathKind::Baseline))
    else {
        return Vec::new();
    };
    type Pick = fn(&Figures) -> Option<f64>;
    type Compare = fn(f64, f64) -> Option<f64>;
    let compare = |scenario: fn(&PathFigures) -> &Measured, pick: Pick, how: Compare| {
        let (k, b) = (scenario(keygate), scenario(baseline));
        let measured = pick(&k.median)
            .zip(pick(&b.median))
            .and_then(|(k, b)| how(k, b));
        let values = |m: &Measured| m.runs.iter().map(pick).collect::<Option<Vec<_>>>();
        let range = values(k)
            .zip(values(b))
            .and_then(|(k, b)| spread(&paired(&k, &b, how)));
        (measured, range)
    };
    let difference: Compare = |k, b| Some(k - b);
    let limit = |bound, value, unit| Limit { bound, value, unit };
    let (rps, rps_runs) = compare(|p| &p.concurrency_high, |f| Some(f.requests_per_sec), ratio);
    let (cpu, cpu_runs) = compare(|p| &p.concurrency_high, |f| f.cpu_us_per_request, ratio);
    let (ttft, ttft_runs) = compare(|p| &p.streaming, |f| f.ttft_p50_ms, difference);
    let (p50, p50_runs) = compare(|p| &p.concurrency_1, |f| Some(f.p50_ms), difference);
    vec![
        TargetCheck::new(
            "throughput at high concurrency, keygate ÷ baseline",
            scope,
            rps,
            rps_runs,
            limit(Bound::AtLeast, 0.9, "×"),
        ),
        TargetCheck::new(
            "CPU per request at high concurrency, keygate ÷ baseline",
            scope,
            cpu,
            cpu_runs,
            limit(Bound::AtMost, 1.1, "×"),
        ),
        TargetCheck::new(
            "streaming TTFT p50, keygate − baseline",
            scope,
            ttft,
            ttft_runs,
            limit(Bound::AtMost, 0.1, "ms"),
        ),
        TargetCheck::new(
            "p50 at concurrency 1, keygate − baseline",
            scope,
            p50,
            p50_runs,
            limit(Bound::AtMost, 0.03, "ms"),
        ),
    ]
}

/// A value in a target's unit: ratios as `0.91×`, differences signed.
fn in_unit(value: f64, unit: &str) -> String {
    match unit {
        "×" => format!("{value:.2}×"),
        "ms" => format!("{value:+.3} ms"),
        _ => format!("{value:.1} {unit}"),
    }
}

fn limit_text(limit: &Limit) -> String {
    let sign = match limit.bound {
        Bound::AtMost => "≤",
        Bound::AtLeast => "≥",
    };
    let value = match limit.unit {
        "ms" => format!("+{} ms", limit.value),
        "×" => format!("{}×", limit.value),
        unit => format!("{} {unit}", limit.value),
    };
    format!("{sign} {value}")
}

fn check_text(t: &TargetCheck) -> String {
    let Some(value) = t.measured else {
        return "n/a MISS".into();
    };
    let unit = t.limit.unit;
    let mut text = in_unit(value, unit);
    // One run has no range to show.
    if let Some((low, high)) = t.runs_range.filter(|(low, high)| low < high) {
        let bare = |v: f64| match unit {
            "×" => format!("{v:.2}"),
            _ => format!("{v:+.3}"),
        };
        let _ = write!(text, " (runs {} to {})", bare(low), bare(high));
    }
    let _ = write!(text, " {}", t.verdict());
    if let Some(by) = t.shortfall() {
        let by = match unit {
            "×" => format!("{by:.2}×"),
            "ms" => format!("{by:.3} ms"),
            _ => format!("{by:.1} {unit}"),
        };
        let _ = write!(text, " by {by}");
    }
    text
}

/// `value` with `decimals` and `unit`, or "n/a".
fn opt(value: Option<f64>, decimals: usize, unit: &str) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}{unit}"))
}
