//! `--compare NAME=VALUE`: what one setting costs keygate, measured side by
//! side in one run. Two keygates run on the same CPU in front of the same
//! fake upstream: A as configured, B with the compared settings as well.
//! The load alternates between them in short slices (A then B, then B then
//! A, ...), with a pause after each slice so work a keygate does behind its
//! requests (the usage ledger's last batch) is not billed to the next one.
//! Each round gives a pair of slices taken within seconds of each other;
//! the report is the mean of the rounds' B÷A ratios with a 95 % confidence
//! interval, so a difference of a few percent can be told from the noise
//! of a shared VM, where single runs spread by tens of percent.

use std::time::Duration;

use serde::Serialize;

use super::api::Api;
use super::children::Server;
use super::load;
use super::procfs;
use super::report::{Figures, PathKind};
use super::run::{Path, Scratch, fake_launch, keygate_launch, measure};
use super::stats::{MeanInterval, mean_ci95, median, paired, ratio};
use super::{BenchError, Options};

/// How long the loaded keygate's background work gets to finish before the
/// next slice starts (the ledger writes at least every 250 ms).
pub const SETTLE: Duration = Duration::from_millis(500);

/// One API's comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Compared {
    pub api: String,
    pub a: Vec<Figures>,
    pub b: Vec<Figures>,
    /// B÷A throughput, over the rounds.
    pub throughput: Option<MeanInterval>,
    /// B÷A keygate CPU time per request, over the rounds.
    pub cpu_per_request: Option<MeanInterval>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The settings B has and A has not.
    pub settings: Vec<(String, String)>,
    pub concurrency: usize,
    pub rounds: usize,
    pub slice_secs: f64,
    pub apis: Vec<Compared>,
    /// Each keygate's peak resident memory over the whole run (MB).
    pub peak_rss_mb: [Option<f64>; 2],
}

/// Runs the comparison: `options.runs` rounds per API at the high
/// concurrency, each slice `options.duration` long.
pub async fn compare(
    options: &Options,
    settings: &[(String, String)],
) -> Result<Comparison, BenchError> {
    let (server_cpu, load_cpu) = options.cpus.unzip();
    let fake = Server::start(fake_launch(options, load_cpu)?)?;
    let (scratch_a, scratch_b) = (Scratch::create("a")?, Scratch::create("b")?);
    let a = Server::start(keygate_launch(options, server_cpu, &fake.url, &scratch_a)?)?;
    let mut with_settings = options.clone();
    with_settings.keygate_env.extend(settings.iter().cloned());
    let b = Server::start(keygate_launch(
        &with_settings,
        server_cpu,
        &fake.url,
        &scratch_b,
    )?)?;
    let paths = [&a, &b].map(|server| Path {
        kind: PathKind::Keygate,
        base_url: server.url.clone(),
        pid: Some(server.pid),
    });
    let settled = Options {
        settle: SETTLE,
        ..options.clone()
    };
    let client = load::client(options.concurrency)?;
    let mut apis = Vec::new();
    for api in Api::ALL {
        let [on_a, on_b]: [_; 2] =
            measure(&client, &paths, api, false, options.concurrency, &settled)
                .await?
                .try_into()
                .map_err(|_| BenchError::NothingServed("a path's figures".into()))?;
        apis.push(Compared::new(api, on_a.runs, on_b.runs));
    }
    Ok(Comparison {
        settings: settings.to_vec(),
        concurrency: options.concurrency,
        rounds: options.runs,
        slice_secs: options.duration.as_secs_f64(),
        apis,
        peak_rss_mb: [&a, &b]
            .map(|server| procfs::peak_rss_kib(server.pid).map(|kib| kib as f64 * 1024.0 / 1e6)),
    })
}

impl Compared {
    fn new(api: Api, a: Vec<Figures>, b: Vec<Figures>) -> Self {
        let throughput =
            |runs: &[Figures]| -> Vec<f64> { runs.iter().map(|f| f.requests_per_sec).collect() };
        let cpu = |runs: &[Figures]| -> Vec<f64> {
            runs.iter()
                .map(|f| f.cpu_us_per_request.unwrap_or(f64::NAN))
                .collect()
        };
        let b_over_a = |a, b| ratio(b, a).filter(|r: &f64| r.is_finite());
        Self {
            api: api.name().to_string(),
            throughput: mean_ci95(&paired(&throughput(&a), &throughput(&b), b_over_a)),
            cpu_per_request: mean_ci95(&paired(&cpu(&a), &cpu(&b), b_over_a)),
            a,
            b,
        }
    }
}

impl Comparison {
    pub fn markdown(&self) -> String {
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(name, value)| format!("`{name}={value}`"))
            .collect();
        let mut text = format!(
            "A: keygate as configured; B: the same with {}. {} rounds of a {:.1} s slice each \
             at concurrency {}, the order alternating; ratios are B÷A per round, then their \
             mean and 95 % confidence interval.\n\n\
             | API | A req/s (median) | B req/s (median) | throughput B÷A | A CPU µs/req | B CPU µs/req | CPU per request B÷A |\n\
             |---|---:|---:|---|---:|---:|---|\n",
            settings.join(", "),
            self.rounds,
            self.slice_secs,
            self.concurrency
        );
        for api in &self.apis {
            let med = |runs: &[Figures], field: fn(&Figures) -> Option<f64>| {
                median(&runs.iter().filter_map(field).collect::<Vec<_>>())
                    .map_or("-".into(), |v| format!("{v:.1}"))
            };
            let rps = |f: &Figures| Some(f.requests_per_sec);
            let cpu = |f: &Figures| f.cpu_us_per_request;
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                api.api,
                med(&api.a, rps),
                med(&api.b, rps),
                interval(api.throughput),
                med(&api.a, cpu),
                med(&api.b, cpu),
                interval(api.cpu_per_request),
            ));
        }
        let rss = |mb: Option<f64>| mb.map_or("-".into(), |mb| format!("{mb:.1} MB"));
        text.push_str(&format!(
            "\nPeak RSS over the run: A {}, B {}.\n",
            rss(self.peak_rss_mb[0]),
            rss(self.peak_rss_mb[1])
        ));
        text
    }
}

fn interval(ratio: Option<MeanInterval>) -> String {
    ratio.map_or("-".into(), |r| {
        format!(
            "{:.3}× [{:.3}, {:.3}] ({:+.1} %)",
            r.mean,
            r.low,
            r.high,
            (r.mean - 1.0) * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(requests_per_sec: f64, cpu: f64) -> Figures {
        Figures {
            requests_per_sec,
            cpu_us_per_request: Some(cpu),
            ..Figures::default()
        }
    }

    #[test]
    fn each_round_is_compared_with_its_own_pair_then_averaged() {
        // B is 10 % slower than A in every round, though the machine's
        // speed halves in the second round: the ratio sees no spread.
        let a = vec![run(1000.0, 50.0), run(500.0, 100.0), run(1000.0, 50.0)];
        let b = vec![run(900.0, 55.0), run(450.0, 110.0), run(900.0, 55.0)];
        let compared = Compared::new(Api::Anthropic, a, b);
        let throughput = compared.throughput.unwrap();
        assert!((throughput.mean - 0.9).abs() < 1e-12);
        assert!((throughput.high - throughput.low).abs() < 1e-9);
        assert!((compared.cpu_per_request.unwrap().mean - 1.1).abs() < 1e-12);
        let comparison = Comparison {
            settings: vec![("USAGE_LEDGER".into(), "on".into())],
            concurrency: 64,
            rounds: 3,
            slice_secs: 2.0,
            apis: vec![compared],
            peak_rss_mb: [Some(24.9), None],
        };
        let text = comparison.markdown();
        assert!(text.contains("`USAGE_LEDGER=on`"), "{text}");
        assert!(
            text.contains("| 0.900× [0.900, 0.900] (-10.0 %) |"),
            "{text}"
        );
        assert!(text.contains("A 24.9 MB, B -"), "{text}");
    }
}
