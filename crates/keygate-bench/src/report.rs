//! The bench's results: the figures per API and path, what each proxy adds
//! to the direct path, the targets, and their Markdown and JSON
//! forms.

use std::fmt::Write;

use serde::Serialize;

use super::Options;
use super::api::Api;
use super::load::Sample;
use super::procfs::Machine;
use super::stats::{Bound, TargetCheck, ratio};

/// How the load reached the fake upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    Direct,
    Keygate,
    Forwarder,
}

impl PathKind {
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Keygate => "keygate",
            PathKind::Forwarder => "forwarder",
        }
    }
}

/// One scenario on one path: the median over runs.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Figures {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Streaming only: send to first content event.
    pub ttft_p50_ms: Option<f64>,
    /// Failed requests, summed over runs.
    pub errors: u64,
    /// CPU time of the proxy process per request (none for direct).
    pub cpu_us_per_request: Option<f64>,
}

impl Figures {
    pub fn from_sample(sample: &Sample, stream: bool, cpu_us_per_request: Option<f64>) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        Self {
            requests_per_sec: sample.requests_per_sec(),
            p50_ms: ms(sample.latency.value_at_quantile(0.5)),
            p99_ms: ms(sample.latency.value_at_quantile(0.99)),
            ttft_p50_ms: stream.then(|| ms(sample.ttft.value_at_quantile(0.5))),
            errors: sample.errors,
            cpu_us_per_request,
        }
    }
}

/// What a proxy adds to the direct path (ms), and its throughput ratios.
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
    pub concurrency_1: Figures,
    pub concurrency_high: Figures,
    pub streaming: Figures,
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
        one: Vec<Figures>,
        many: Vec<Figures>,
        stream: Vec<Figures>,
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
    let (one, high) = (&path.concurrency_1, &path.concurrency_high);
    Added {
        c1_p50_ms: one.p50_ms - direct.concurrency_1.p50_ms,
        c1_p99_ms: one.p99_ms - direct.concurrency_1.p99_ms,
        high_p50_ms: high.p50_ms - direct.concurrency_high.p50_ms,
        high_p99_ms: high.p99_ms - direct.concurrency_high.p99_ms,
        ttft_p50_ms: path
            .streaming
            .ttft_p50_ms
            .zip(direct.streaming.ttft_p50_ms)
            .map(|(proxied, direct)| proxied - direct),
        high_rps_vs_direct: ratio(
            high.requests_per_sec,
            direct.concurrency_high.requests_per_sec,
        ),
    }
}

/// Run settings, as the JSON records them.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub runs: usize,
    pub high_concurrency: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub pinning: String,
    pub settings: Settings,
    pub apis: Vec<ApiFigures>,
    pub keygate_peak_rss_mb: Option<f64>,
    pub forwarder_peak_rss_mb: Option<f64>,
    pub targets: Vec<TargetCheck>,
}

impl Report {
    pub fn build(
        machine: Machine,
        pinning: String,
        options: &Options,
        apis: Vec<ApiFigures>,
        keygate_peak_rss_mb: Option<f64>,
        forwarder_peak_rss_mb: Option<f64>,
    ) -> Self {
        let mut targets: Vec<TargetCheck> = apis.iter().flat_map(api_targets).collect();
        targets.push(TargetCheck::new(
            "keygate peak RSS (VmHWM) over the whole run".into(),
            keygate_peak_rss_mb,
            Bound::AtMost,
            30.0,
            "MB",
        ));
        Self {
            machine,
            pinning,
            settings: Settings {
                duration_secs: options.duration.as_secs_f64(),
                warmup_secs: options.warmup.as_secs_f64(),
                runs: options.runs,
                high_concurrency: options.concurrency,
            },
            apis,
            keygate_peak_rss_mb,
            forwarder_peak_rss_mb,
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
            "Method: closed loop, {} run(s) of {} s per scenario and path after {} s of warm-up; \
             medians of the runs. Latencies in ms.\n",
            s.runs, s.duration_secs, s.warmup_secs
        );
        let high = s.high_concurrency;
        self.figures_table(&mut out, high);
        self.added_table(&mut out, high);
        let mb = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1} MB"));
        let _ = writeln!(
            out,
            "Peak RSS: keygate {}, bare forwarder {}.\n",
            mb(self.keygate_peak_rss_mb),
            mb(self.forwarder_peak_rss_mb)
        );
        self.targets_table(&mut out);
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
                let (one, many, st) = (&p.concurrency_1, &p.concurrency_high, &p.streaming);
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
             added p99 c={high} | added TTFT p50 | req/s c={high} ÷ direct | ÷ forwarder |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for api in &self.apis {
            let forwarder_rps = api
                .path(PathKind::Forwarder)
                .map(|f| f.concurrency_high.requests_per_sec);
            for p in &api.paths {
                let Some(a) = &p.added else { continue };
                let vs_forwarder =
                    forwarder_rps.and_then(|f| ratio(p.concurrency_high.requests_per_sec, f));
                let _ = writeln!(
                    out,
                    "| {} | {} | {:+.3} | {:+.3} | {:+.3} | {:+.3} | {} | {} | {} |",
                    api.api.name(),
                    p.path.name(),
                    a.c1_p50_ms,
                    a.c1_p99_ms,
                    a.high_p50_ms,
                    a.high_p99_ms,
                    opt(a.ttft_p50_ms, 3, ""),
                    opt(a.high_rps_vs_direct, 2, "×"),
                    opt(vs_forwarder, 2, "×"),
                );
            }
        }
        out.push('\n');
    }

    fn targets_table(&self, out: &mut String) {
        let _ = writeln!(out, "| target | measured | limit | result |");
        let _ = writeln!(out, "|---|---:|---:|---|");
        for t in &self.targets {
            let sign = match t.bound {
                Bound::AtMost => "≤",
                Bound::AtLeast => "≥",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {sign} {} {} | {} |",
                t.name,
                opt(t.measured, 3, &format!(" {}", t.unit)),
                t.limit,
                t.unit,
                t.verdict()
            );
        }
    }
}

/// The per-API targets for keygate.
fn api_targets(api: &ApiFigures) -> Vec<TargetCheck> {
    let name = api.api.name();
    let keygate = api.path(PathKind::Keygate);
    let added = keygate.and_then(|k| k.added);
    let forwarder_rps = api
        .path(PathKind::Forwarder)
        .map(|f| f.concurrency_high.requests_per_sec);
    let keygate_rps = keygate.map(|k| k.concurrency_high.requests_per_sec);
    vec![
        TargetCheck::new(
            format!("{name}: added p50 at concurrency 1 (keygate − direct)"),
            added.map(|a| a.c1_p50_ms),
            Bound::AtMost,
            0.1,
            "ms",
        ),
        TargetCheck::new(
            format!("{name}: req/s at high concurrency, keygate ÷ bare forwarder"),
            keygate_rps
                .zip(forwarder_rps)
                .and_then(|(k, f)| ratio(k, f)),
            Bound::AtLeast,
            0.9,
            "×",
        ),
        TargetCheck::new(
            format!("{name}: added streaming TTFT p50 (keygate − direct)"),
            added.and_then(|a| a.ttft_p50_ms),
            Bound::AtMost,
            0.3,
            "ms",
        ),
        TargetCheck::new(
            format!("{name}: keygate CPU per proxied request (high concurrency)"),
            keygate.and_then(|k| k.concurrency_high.cpu_us_per_request),
            Bound::AtMost,
            60.0,
            "µs",
        ),
    ]
}

/// `value` with `decimals` and `unit`, or "n/a".
fn opt(value: Option<f64>, decimals: usize, unit: &str) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}{unit}"))
}
