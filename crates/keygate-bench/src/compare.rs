//! `--compare NAME=VALUE`: what one setting costs keygate, measured side by
//! side in one run. Two keygates run on the same CPU in front of the same
//! fake upstream: A as configured, B with the compared settings as well.
//! The load alternates between them in short slices (A then B, then B then
//! A, ...), with a pause after each slice so work a keygate does behind its
//! requests (the usage ledger's last batch) is done before the next slice
//! and billed to the requests that caused it.
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
/// next slice starts; its CPU meanwhile is billed to the slice. The ledger
/// writes its batch at most a second (`USAGE_FLUSH_SECS`) after its first
/// row, and the write takes a few milliseconds.
pub const SETTLE: Duration = Duration::from_millis(1_250);

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
    /// How many times both keygates were started afresh, the rounds split
    /// between them. A process's memory layout (where ASLR put its heap,
    /// stacks and code) shifts its speed by a few percent for its whole
    /// life: one launch's rounds agree with each other, but two launches
    /// of the same build can disagree by more than their intervals. With
    /// several launches the interval is over the launches' mean ratios.
    pub launches: usize,
    pub slice_secs: f64,
    /// Both keygates were loaded at once in each round (`--together`).
    pub together: bool,
    pub apis: Vec<Compared>,
    /// Each keygate's peak resident memory over the whole run (MB).
    pub peak_rss_mb: [Option<f64>; 2],
}

/// Runs the comparison: `options.runs` rounds per API at the high
/// concurrency, each slice `options.duration` long, split between
/// `launches` fresh starts of both keygates (see `Comparison::launches`).
pub async fn compare(
    options: &Options,
    settings: &[(String, String)],
    launches: usize,
) -> Result<Comparison, BenchError> {
    let (server_cpu, load_cpu) = options.cpus.unzip();
    let fake = Server::start(fake_launch(options, load_cpu)?)?;
    let mut with_settings = options.clone();
    with_settings.keygate_env.extend(settings.iter().cloned());
    let client = load::client(options.concurrency)?;
    let launches = launches.clamp(1, options.runs.max(1));
    let mut figures: Vec<[Vec<Figures>; 2]> = Api::ALL.iter().map(|_| Default::default()).collect();
    let mut rounds_per_launch = Vec::with_capacity(launches);
    let mut peak_rss_mb = [None, None];
    for launch in 0..launches {
        let rounds = options.runs / launches + usize::from(launch < options.runs % launches);
        let (scratch_a, scratch_b) = (Scratch::create("a")?, Scratch::create("b")?);
        let launch_a = keygate_launch(options, server_cpu, &fake.url, &scratch_a)?;
        let launch_b = keygate_launch(&with_settings, server_cpu, &fake.url, &scratch_b)?;
        // Started in turn, A first at even launches and B first at odd
        // ones, so neither always gets the first pick of ports, memory or
        // the fake upstream's first connections.
        let (a, b) = if launch % 2 == 0 {
            let a = Server::start(launch_a)?;
            (a, Server::start(launch_b)?)
        } else {
            let b = Server::start(launch_b)?;
            (Server::start(launch_a)?, b)
        };
        let paths = [&a, &b].map(|server| Path {
            kind: PathKind::Keygate,
            base_url: server.url.clone(),
            pid: Some(server.pid),
        });
        let settled = Options {
            settle: SETTLE,
            runs: rounds,
            ..options.clone()
        };
        for (api, [so_far_a, so_far_b]) in Api::ALL.into_iter().zip(&mut figures) {
            let [on_a, on_b]: [_; 2] =
                measure(&client, &paths, api, false, options.concurrency, &settled)
                    .await?
                    .try_into()
                    .map_err(|_| BenchError::NothingServed("a path's figures".into()))?;
            so_far_a.extend(on_a.runs);
            so_far_b.extend(on_b.runs);
        }
        rounds_per_launch.push(rounds);
        for (peak, server) in peak_rss_mb.iter_mut().zip([&a, &b]) {
            let mb = procfs::peak_rss_kib(server.pid).map(|kib| kib as f64 * 1024.0 / 1e6);
            *peak = [*peak, mb].into_iter().flatten().reduce(f64::max);
        }
    }
    let apis = Api::ALL
        .into_iter()
        .zip(figures)
        .map(|(api, [a, b])| Compared::new(api, a, b, &rounds_per_launch))
        .collect();
    Ok(Comparison {
        settings: settings.to_vec(),
        concurrency: options.concurrency,
        rounds: options.runs,
        launches,
        slice_secs: options.duration.as_secs_f64(),
        together: options.together,
        apis,
        peak_rss_mb,
    })
}

impl Compared {
    /// `a` and `b` round by round, `rounds_per_launch` of them from each
    /// launch in turn.
    fn new(api: Api, a: Vec<Figures>, b: Vec<Figures>, rounds_per_launch: &[usize]) -> Self {
        let throughput =
            |runs: &[Figures]| -> Vec<f64> { runs.iter().map(|f| f.requests_per_sec).collect() };
        let cpu = |runs: &[Figures]| -> Vec<f64> {
            runs.iter()
                .map(|f| f.cpu_us_per_request.unwrap_or(f64::NAN))
                .collect()
        };
        let b_over_a = |a, b| ratio(b, a).filter(|r: &f64| r.is_finite());
        let interval = |a: &[f64], b: &[f64]| {
            if rounds_per_launch.len() < 2 {
                return mean_ci95(&paired(a, b, b_over_a));
            }
            // Rounds of one launch share its memory layout: the launches'
            // means are the independent samples.
            let mut start = 0;
            let means: Vec<f64> = rounds_per_launch
                .iter()
                .filter_map(|&rounds| {
                    let end = (start + rounds).min(a.len()).min(b.len());
                    let ratios = paired(&a[start..end], &b[start..end], b_over_a);
                    start = end;
                    (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64)
                })
                .collect();
            mean_ci95(&means)
        };
        Self {
            api: api.name().to_string(),
            throughput: interval(&throughput(&a), &throughput(&b)),
            cpu_per_request: interval(&cpu(&a), &cpu(&b)),
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
        let order = if self.together {
            "both loaded at once (their throughputs follow how the scheduler splits their \
             CPU; compare CPU per request)"
        } else {
            "the order alternating"
        };
        let interval_over = if self.launches > 1 {
            format!(
                "over {} launches of both keygates, {order}; ratios are B÷A per round, then \
                 each launch's mean, then their mean and 95 % confidence interval",
                self.launches
            )
        } else {
            format!(
                "{order}; ratios are B÷A per round, then their mean and 95 % confidence interval"
            )
        };
        let mut text = format!(
            "A: keygate as configured; B: the same with {}. {} rounds of a {:.1} s slice each \
             at concurrency {}, {interval_over}.\n\n\
             | API | A req/s (median) | B req/s (median) | throughput B÷A | A CPU µs/req | B CPU µs/req | CPU per request B÷A |\n\
             |---|---:|---:|---|---:|---:|---|\n",
            settings.join(", "),
            self.rounds,
            self.slice_secs,
            self.concurrency
        );
        let med = |runs: &[Figures], field: fn(&Figures) -> Option<f64>| {
            median(&runs.iter().filter_map(field).collect::<Vec<_>>())
                .map_or("-".into(), |v| format!("{v:.1}"))
        };
        for api in &self.apis {
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
        // Where extra CPU goes: the process's own code, or the kernel
        // (sockets, wake-ups, file writes) on its behalf.
        let kernel = |runs: &[Figures]| med(runs, |f| f.kernel_cpu_us_per_request);
        let kernel_parts: Vec<String> = self
            .apis
            .iter()
            .map(|api| format!("{} A {}, B {}", api.api, kernel(&api.a), kernel(&api.b)))
            .collect();
        text.push_str(&format!(
            "\nOf the CPU per request, in the kernel (medians, µs): {}.\n",
            kernel_parts.join("; ")
        ));
        let rss = |mb: Option<f64>| mb.map_or("-".into(), |mb| format!("{mb:.1} MB"));
        text.push_str(&format!(
            "Peak RSS over the run: A {}, B {}.\n",
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
    fn with_several_launches_the_interval_is_over_the_launches_means() {
        // Launch 1: B 10 % slower in both rounds; launch 2: no slower. The
        // rounds alone would give a narrow interval around 0.95; the
        // launches are two samples, 0.9 and 1.0.
        let a = vec![run(1000.0, 50.0); 4];
        let b = vec![
            run(900.0, 50.0),
            run(900.0, 50.0),
            run(1000.0, 50.0),
            run(1000.0, 50.0),
        ];
        let throughput = Compared::new(Api::OpenAi, a, b, &[2, 2])
            .throughput
            .unwrap();
        assert!((throughput.mean - 0.95).abs() < 1e-12);
        // t(1 df) = 12.706, standard error 0.05.
        let half_width = (throughput.high - throughput.low) / 2.0;
        assert!((half_width - 12.706 * 0.05).abs() < 1e-3, "{throughput:?}");
    }

    #[test]
    fn each_round_is_compared_with_its_own_pair_then_averaged() {
        // B is 10 % slower than A in every round, though the machine's
        // speed halves in the second round: the ratio sees no spread.
        let a = vec![run(1000.0, 50.0), run(500.0, 100.0), run(1000.0, 50.0)];
        let b = vec![run(900.0, 55.0), run(450.0, 110.0), run(900.0, 55.0)];
        let compared = Compared::new(Api::Anthropic, a, b, &[3]);
        let throughput = compared.throughput.unwrap();
        assert!((throughput.mean - 0.9).abs() < 1e-12);
        assert!((throughput.high - throughput.low).abs() < 1e-9);
        assert!((compared.cpu_per_request.unwrap().mean - 1.1).abs() < 1e-12);
        let comparison = Comparison {
            settings: vec![("USAGE_LEDGER".into(), "on".into())],
            concurrency: 64,
            rounds: 3,
            launches: 1,
            slice_secs: 2.0,
            together: false,
            apis: vec![compared],
            peak_rss_mb: [Some(24.9), None],
        };
        let text = comparison.markdown();
        assert!(text.contains("`USAGE_LEDGER=on`"), "{text}");
        assert!(text.contains("the order alternating"), "{text}");
        let together = Comparison {
            together: true,
            ..comparison.clone()
        }
        .markdown();
        assert!(together.contains("both loaded at once"), "{together}");
        assert!(
            text.contains("| 0.900× [0.900, 0.900] (-10.0 %) |"),
            "{text}"
        );
        assert!(text.contains("A 24.9 MB, B -"), "{text}");
    }
}
