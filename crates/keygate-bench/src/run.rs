//! The bench's phases: start the fake upstream, keygate and the baseline
//! (pinned), then for each API and scenario (concurrency 1, high
//! concurrency, streaming) warm every path up and measure it `runs` times,
//! interleaving the paths run by run (each round starting with a different
//! path) so drift on a shared machine hits all of them alike; report the
//! median of the runs and keep the runs for paired comparisons.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::api::{Api, CLIENT_KEYS};
use super::children::{Launch, Server};
use super::load::{self, Spec};
use super::procfs::{self, Machine};
use super::report::{ApiFigures, Figures, Measured, PathKind, Report};
use super::stats::{cpu_us_per_request, median};
use super::{BenchError, Options};

/// One way to reach the fake upstream.
pub(crate) struct Path {
    pub kind: PathKind,
    pub base_url: String,
    /// The process whose CPU time the requests cost (none for direct).
    pub pid: Option<u32>,
}

/// Runs the whole benchmark and returns its report.
pub async fn run(options: &Options) -> Result<Report, BenchError> {
    let machine = Machine::describe();
    let scratch = Scratch::create("run")?;
    let (server_cpu, load_cpu) = options.cpus.unzip();
    let fake = Server::start(fake_launch(options, load_cpu)?)?;
    let keygate = Server::start(keygate_launch(options, server_cpu, &fake.url, &scratch)?)?;
    let baseline = Server::start(baseline_launch(options, server_cpu, &fake.url))?;
    let paths = [
        Path {
            kind: PathKind::Direct,
            base_url: fake.url.clone(),
            pid: None,
        },
        Path {
            kind: PathKind::Keygate,
            base_url: keygate.url.clone(),
            pid: Some(keygate.pid),
        },
        Path {
            kind: PathKind::Baseline,
            base_url: baseline.url.clone(),
            pid: Some(baseline.pid),
        },
    ];
    let client = load::client(options.concurrency)?;
    let mut apis = Vec::new();
    for api in Api::ALL {
        let one = measure(&client, &paths, api, false, 1, options).await?;
        let many = measure(&client, &paths, api, false, options.concurrency, options).await?;
        let stream = measure(&client, &paths, api, true, 1, options).await?;
        apis.push(ApiFigures::combine(
            api,
            paths.iter().map(|path| path.kind),
            one,
            many,
            stream,
        ));
    }
    let peak_rss_mb = |pid| procfs::peak_rss_kib(pid).map(|kib| kib as f64 * 1024.0 / 1e6);
    Ok(Report::build(
        machine,
        pinning(options),
        options,
        apis,
        peak_rss_mb(keygate.pid),
        peak_rss_mb(baseline.pid),
    ))
}

/// Warms each path up, then measures it `options.runs` times; one
/// [`Measured`] per path, in the order of `paths`.
pub(crate) async fn measure(
    client: &reqwest::Client,
    paths: &[Path],
    api: Api,
    stream: bool,
    concurrency: usize,
    options: &Options,
) -> Result<Vec<Measured>, BenchError> {
    let label = format!("{} {}", api.name(), scenario(stream, concurrency));
    eprintln!("measuring {label}");
    let specs: Vec<Spec> = paths
        .iter()
        .map(|path| Spec {
            client: client.clone(),
            url: format!("{}{}", path.base_url, api.path()),
            api,
            stream,
            concurrency,
            sessions: options.sessions,
        })
        .collect();
    for spec in &specs {
        load::run(spec, options.warmup).await?;
    }
    let ticks_per_sec = procfs::clock_ticks_per_sec();
    let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); paths.len()];
    for round in 0..options.runs {
        // Each round starts with the next path, so no path always follows
        // the same one (or always goes first after the warm-up).
        let mut order: Vec<usize> = (0..paths.len()).collect();
        order.rotate_left(round % paths.len().max(1));
        let slices: Vec<Vec<usize>> = if options.together {
            vec![order]
        } else {
            order.into_iter().map(|index| vec![index]).collect()
        };
        // Each loaded keygate's CPU so far (`None` for the baseline's).
        let cpu_ticks = |slice: &[usize]| -> Vec<_> {
            slice
                .iter()
                .map(|&index| paths[index].pid.and_then(procfs::cpu_ticks))
                .collect()
        };
        for slice in slices {
            let before = cpu_ticks(&slice);
            let samples = load_at_once(&slice, &specs, options.duration).await?;
            // The CPU is read after the settle: what a keygate does behind
            // the slice's requests (the ledger's batch of their rows) is
            // theirs, and must not fall outside every slice.
            tokio::time::sleep(options.settle).await;
            let after = cpu_ticks(&slice);
            for (((&index, sample), before), after) in
                slice.iter().zip(samples).zip(before).zip(after)
            {
                if sample.requests == 0 {
                    return Err(BenchError::NothingServed(format!(
                        "{label} via {}",
                        paths[index].kind.name()
                    )));
                }
                let cpu = before.zip(after).and_then(|(before, after)| {
                    let spent = after.since(before);
                    let per_request =
                        |ticks| cpu_us_per_request(ticks, ticks_per_sec, sample.requests);
                    per_request(spent.total()).zip(per_request(spent.kernel))
                });
                runs[index].push(Figures::from_sample(&sample, stream, cpu));
            }
        }
    }
    Ok(runs
        .into_iter()
        .map(|runs| Measured {
            median: median_figures(&runs),
            runs,
        })
        .collect())
}

/// Loads the paths `indexes` of `specs` for `duration`, all at once; their
/// samples in the same order.
async fn load_at_once(
    indexes: &[usize],
    specs: &[Spec],
    duration: std::time::Duration,
) -> Result<Vec<load::Sample>, BenchError> {
    let mut loads = tokio::task::JoinSet::new();
    for (slot, &index) in indexes.iter().enumerate() {
        let spec = specs[index].clone();
        loads.spawn(async move { (slot, load::run(&spec, duration).await) });
    }
    let mut samples: Vec<Option<load::Sample>> = indexes.iter().map(|_| None).collect();
    while let Some(joined) = loads.join_next().await {
        let (slot, sample) = joined?;
        samples[slot] = Some(sample?);
    }
    Ok(samples.into_iter().flatten().collect())
}

/// The field-by-field median of repeated runs; errors are summed.
fn median_figures(runs: &[Figures]) -> Figures {
    let pick = |field: fn(&Figures) -> Option<f64>| {
        median(&runs.iter().filter_map(field).collect::<Vec<_>>())
    };
    Figures {
        requests_per_sec: pick(|f| Some(f.requests_per_sec)).unwrap_or_default(),
        p50_ms: pick(|f| Some(f.p50_ms)).unwrap_or_default(),
        p99_ms: pick(|f| Some(f.p99_ms)).unwrap_or_default(),
        ttft_p50_ms: pick(|f| f.ttft_p50_ms),
        errors: runs.iter().map(|f| f.errors).sum(),
        cpu_us_per_request: pick(|f| f.cpu_us_per_request),
        kernel_cpu_us_per_request: pick(|f| f.kernel_cpu_us_per_request),
    }
}

fn scenario(stream: bool, concurrency: usize) -> String {
    if stream {
        format!("streaming, concurrency {concurrency}")
    } else {
        format!("concurrency {concurrency}")
    }
}

fn pinning(options: &Options) -> String {
    match options.cpus {
        Some((server, load)) => format!(
            "keygate and the baseline pinned to CPU {server}; the fake upstream and \
             the load generator (the bench process) pinned to CPU {load} (taskset)"
        ),
        None => "nothing pinned (fewer than 2 CPUs available, or --no-pin)".into(),
    }
}

fn binary(options: &Options, name: &str) -> Result<PathBuf, BenchError> {
    let path = options.bin_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(BenchError::MissingBinary(path))
    }
}

pub(crate) fn fake_launch(options: &Options, cpu: Option<usize>) -> Result<Launch, BenchError> {
    Ok(Launch {
        name: "fake-upstream",
        program: binary(options, "fake-upstream")?,
        args: vec!["--port".into(), "0".into()],
        env: BTreeMap::from([("RUST_LOG".into(), "warn".into())]),
        dir: None,
        cpu,
    })
}

pub(crate) fn keygate_launch(
    options: &Options,
    cpu: Option<usize>,
    upstream: &str,
    scratch: &Scratch,
) -> Result<Launch, BenchError> {
    // Keys go in files: 5,000 of them do not fit in one environment
    // variable (128 KB).
    let key_file = |name: &str, prefix| -> Result<String, BenchError> {
        let path = scratch.0.join(name);
        fs::write(&path, upstream_keys(prefix, options).join("\n"))?;
        Ok(path.display().to_string())
    };
    let database = scratch.0.join("keygate.db");
    let mut env = vec![
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", "0".into()),
        ("DATABASE_URL", format!("sqlite://{}", database.display())),
        // A throwaway master key: the database is deleted after the run.
        ("ENCRYPTION_KEY", hex::encode(rand::random::<[u8; 32]>())),
        (
            "ANTHROPIC_API_KEYS_FILE",
            key_file("anthropic-keys.txt", ANTHROPIC_PREFIX)?,
        ),
        (
            "OPENAI_API_KEYS_FILE",
            key_file("openai-keys.txt", OPENAI_PREFIX)?,
        ),
        // Clients must authenticate, as in any real deployment.
        (
            "GATEWAY_API_KEYS",
            serde_json::Value::from(CLIENT_KEYS.to_vec()).to_string(),
        ),
        ("ANTHROPIC_BASE_URL", upstream.into()),
        ("OPENAI_BASE_URL", upstream.into()),
        // warn, plus info from the start-up module alone for the ready
        // line the bench waits for; it logs nothing per request.
        ("RUST_LOG", "warn,keygate::startup=info".into()),
        ("NO_COLOR", "1".into()),
    ];
    if let Some(strategy) = &options.strategy {
        env.push(("KEY_STRATEGY", strategy.clone()));
    }
    let mut env: BTreeMap<String, String> =
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    env.extend(options.keygate_env.iter().cloned());
    Ok(Launch {
        name: "keygate",
        program: binary(options, "keygate")?,
        args: Vec::new(),
        env,
        // keygate reads `.env` from its working directory: give it none.
        dir: Some(scratch.0.clone()),
        cpu,
    })
}

/// The baseline with the same client keys and upstream keys as keygate, and
/// as many runtime workers as keygate gets under the same pinning.
fn baseline_launch(options: &Options, cpu: Option<usize>, upstream: &str) -> Launch {
    let mut args = vec![
        "baseline".to_string(),
        "--upstream".into(),
        upstream.into(),
        "--workers".into(),
        options.server_workers.to_string(),
    ];
    let mut repeat = |flag: &str, values: Vec<String>| {
        for value in values {
            args.push(flag.into());
            args.push(value);
        }
    };
    repeat(
        "--client-key",
        CLIENT_KEYS.iter().map(|key| key.to_string()).collect(),
    );
    repeat("--anthropic-key", upstream_keys(ANTHROPIC_PREFIX, options));
    repeat("--openai-key", upstream_keys(OPENAI_PREFIX, options));
    Launch {
        name: "baseline",
        program: options.bench_exe.clone(),
        args,
        env: BTreeMap::new(),
        dir: None,
        cpu,
    }
}

const ANTHROPIC_PREFIX: &str = "sk-ant";
const OPENAI_PREFIX: &str = "sk";

/// The upstream keys of one provider (the fake accepts any key).
fn upstream_keys(prefix: &str, options: &Options) -> Vec<String> {
    (1..=options.keys_per_provider)
        .map(|i| format!("{prefix}-bench-key-{i:02}"))
        .collect()
}

/// A temporary directory for keygate's database, removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory; `tag` tells apart the ones a process makes.
    pub fn create(tag: &str) -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!("keygate-bench-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
