//! `greenlab train`: train one of the paper's networks and report accuracy, time and energy.
//!
//! Writes `config.toml` (the resolved settings) and `result.json` (every epoch's metrics and
//! energy with its source) into the run folder, atomically. Exit codes: 0 trained, 3 the loss
//! diverged (the result is still written), 2 any error.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use greenlab_data::DatasetKind;
use greenlab_engine::AdamConfig;
use greenlab_model::{Architecture, InputShape};
use greenlab_train::{Control, EpochReport, Observer, RunStatus, StepReport, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engines::make_engine;
use crate::meters::MeterArgs;

/// Exit code of a run whose loss became NaN or infinite.
pub const EXIT_DIVERGED: u8 = 3;

/// The network families on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// SimpleCNN: conv blocks, then halving linear layers.
    SimpleCnn,
    /// DensePolyNN: halving linear layers.
    DensePoly,
    /// DenseLinearNN: linearly shrinking linear layers.
    DenseLinear,
}

/// The network flags, shared with `greenlab profile`.
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkArgs {
    /// Network family.
    #[arg(long, value_enum, default_value = "simple-cnn")]
    pub model: Model,
    /// Conv blocks (SimpleCNN only).
    #[arg(long, default_value_t = 2)]
    pub conv: usize,
    /// Linear layers, the classifier included.
    #[arg(long, default_value_t = 3)]
    pub linear: usize,
    /// Leave out the ReLU after each conv block (SimpleCNN only).
    #[arg(long)]
    pub no_relu: bool,
}

impl NetworkArgs {
    /// The architecture these flags describe.
    pub fn architecture(&self) -> anyhow::Result<Architecture> {
        if self.model != Model::SimpleCnn && (self.no_relu || self.conv != 2) {
            bail!("--conv and --no-relu apply to --model simple-cnn only");
        }
        Ok(match self.model {
            Model::SimpleCnn => Architecture::SimpleCnn {
                conv: self.conv,
                linear: self.linear,
                relu: !self.no_relu,
            },
            Model::DensePoly => Architecture::DensePoly {
                linear: self.linear,
            },
            Model::DenseLinear => Architecture::DenseLinear {
                linear: self.linear,
            },
        })
    }
}

/// The engine and meter flags, shared with `greenlab profile`.
#[derive(clap::Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// Training engine: burn (pure Rust, default) or torch (libtorch, CPU and CUDA).
    #[arg(long, default_value = "burn")]
    pub engine: String,
    /// Device: cpu, cuda or cuda:N (cuda needs the torch engine).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Worker threads for the engine's kernels (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub meter: MeterArgs,
}

/// Arguments of `greenlab train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    network: NetworkArgs,
    /// Dataset: fashion-mnist, mnist or cifar10.
    #[arg(long, default_value = "fashion-mnist")]
    dataset: String,
    /// Folder with the dataset's files (default: /usr/share/datasets/fashion-mnist for
    /// Fashion-MNIST; required for the others).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Passes over the training set.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Adam's β1.
    #[arg(long, default_value_t = 0.9)]
    beta1: f64,
    /// Adam's β2.
    #[arg(long, default_value_t = 0.999)]
    beta2: f64,
    /// Adam's ε.
    #[arg(long, default_value_t = 1e-8)]
    eps: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Seed for weights, shuffling and subsets.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on a seeded random subset of this many examples.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Evaluate on a seeded random subset of this many test examples.
    #[arg(long)]
    limit_test: Option<usize>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Run folder (default: runs/<UTC timestamp>-<model>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also print result.json to standard output.
    #[arg(long)]
    json: bool,
    /// Print the network's layers, parameters and FLOPs, and exit without training.
    #[arg(long)]
    describe: bool,
}

/// The shape and classes of a dataset, known without reading it.
pub fn dataset_shape(kind: DatasetKind) -> (InputShape, usize) {
    match kind {
        DatasetKind::Cifar10 => (
            InputShape {
                channels: 3,
                height: 32,
                width: 32,
            },
            10,
        ),
        _ => (
            InputShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            10,
        ),
    }
}

/// The folder to read a dataset from: the flag, or Fashion-MNIST's Debian location.
pub fn data_dir(kind: DatasetKind, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    match (flag, kind) {
        (Some(d), _) => Ok(d.to_path_buf()),
        (None, DatasetKind::FashionMnist) => {
            Ok(PathBuf::from(greenlab_data::DEFAULT_FASHION_MNIST_DIR))
        }
        (None, other) => bail!("pass --data-dir with the {other} files"),
    }
}

/// Runs `greenlab train`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let architecture = args.network.architecture()?;
    let dataset: DatasetKind = args.dataset.parse()?;
    let config = TrainConfig {
        architecture,
        dataset,
        data_dir: data_dir(dataset, args.data_dir.as_deref())?,
        epochs: args.epochs,
        batch_size: args.batch_size,
        adam: AdamConfig {
            lr: args.lr,
            beta1: args.beta1,
            beta2: args.beta2,
            eps: args.eps,
            weight_decay: args.weight_decay,
        },
        seed: args.seed,
        limit_train: args.limit_train,
        limit_test: args.limit_test,
        fixed_batch_order: None,
    };
    config.validate()?;
    let (shape, classes) = dataset_shape(dataset);
    let spec = architecture.spec(shape, classes)?;
    if args.describe {
        print!("{}", spec.describe());
        return Ok(ExitCode::SUCCESS);
    }

    let engine = make_engine(
        &args.runtime.engine,
        &args.runtime.device,
        args.runtime.threads,
    )?;
    let tracker = crate::meters::tracker(&args.runtime.meter, Some(&args.runtime.device))?;
    let split = greenlab_data::load(dataset, &config.data_dir)
        .with_context(|| format!("cannot load {dataset}"))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_run_dir(architecture.model_name()));
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let config_toml = toml::to_string(&config).context("cannot write the config as TOML")?;
    write_atomically(&out.join("config.toml"), config_toml.as_bytes())?;

    crate::interrupt::install();
    eprintln!(
        "training {} on {} ({} train / {} test) with {} on {}; energy: {}",
        spec.name,
        dataset,
        config
            .limit_train
            .unwrap_or(split.train.len())
            .min(split.train.len()),
        config
            .limit_test
            .unwrap_or(split.test.len())
            .min(split.test.len()),
        engine.name(),
        engine.device(),
        crate::meters::describe(&tracker)
    );

    let mut progress = Progress::new(config.epochs);
    let result =
        greenlab_train::train_with(engine.as_ref(), &split, &config, &tracker, &mut progress);
    progress.bar.finish_and_clear();
    let result = result?;

    let json = serde_json::to_string_pretty(&result).context("cannot serialise the result")?;
    let result_path = out.join("result.json");
    write_atomically(&result_path, json.as_bytes())?;
    if args.json {
        println!("{json}");
    }
    eprintln!(
        "{}: {} in {:.1} ({:.0} images/s), energy {} ({}; machine {}), written to {}",
        result.network,
        match result.final_test_accuracy {
            Some(a) => format!("test accuracy {:.4}", a),
            None => "no test accuracy".into(),
        },
        result.total_duration,
        result.images_per_second(),
        joules(result.attributed_energy),
        result.energy_provenance,
        joules(result.total_energy),
        result_path.display()
    );
    match result.status {
        RunStatus::Diverged { epoch, step } => {
            eprintln!(
                "error: training diverged (NaN or infinite loss) at epoch {epoch}, step {step}; try a lower --lr. The epochs before it are in {}",
                result_path.display()
            );
            Ok(ExitCode::from(EXIT_DIVERGED))
        }
        RunStatus::Interrupted { epoch, step } => Err(crate::interrupt::Interrupted(format!(
            "training stopped at epoch {epoch}, step {step}; what it did (energy included) is in {}",
            result_path.display()
        ))
        .into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `12.3 J`, or `energy not measured` (never 0 for an unknown figure).
fn joules(e: Option<greenlab_meter::Joules>) -> String {
    e.map_or_else(|| "not measured".to_owned(), |e| format!("{e:.1}"))
}

fn epoch_line(e: &EpochReport) -> String {
    format!(
        "epoch {}: loss {:.4}, train accuracy {:.4}, test accuracy {}, {:.1}, {:.0} images/s, {} ({}){}",
        e.epoch,
        e.train_loss,
        e.train_accuracy,
        e.test_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
        e.duration,
        e.images_per_second,
        joules(e.energy.attributed),
        e.energy.provenance(),
        if e.diverged { ", diverged" } else { "" }
    )
}

/// An indicatif bar on standard error: epoch, loss, accuracy, images/s, joules so far.
struct Progress {
    bar: ProgressBar,
    epochs: usize,
}

impl Progress {
    fn new(epochs: usize) -> Progress {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Progress { bar, epochs }
    }
}

impl Observer for Progress {
    fn on_step(&mut self, s: &StepReport) {
        if self.bar.length() != Some(s.steps as u64) {
            self.bar.set_length(s.steps as u64);
        }
        self.bar
            .set_prefix(format!("epoch {}/{}", s.epoch, self.epochs));
        self.bar.set_position(s.step as u64);
        self.bar.set_message(format!(
            "loss {:.4} acc {:.3} {:.0} img/s {}",
            s.loss,
            s.accuracy,
            s.images_per_second,
            joules(s.energy_so_far)
        ));
    }

    fn on_epoch(&mut self, e: &EpochReport) -> Control {
        // A hidden bar (stderr is not a terminal: logs, CI) prints nothing, so write the line
        // directly; either way each epoch is reported once, as it ends.
        if self.bar.is_hidden() {
            eprintln!("{}", epoch_line(e));
        } else {
            self.bar.println(epoch_line(e));
        }
        Control::Continue
    }

    fn interrupted(&self) -> bool {
        crate::interrupt::requested()
    }
}

/// `runs/<UTC timestamp>-<model>`, e.g. `runs/20261126T181500Z-simple-cnn`.
fn default_run_dir(model: &str) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{}-{model}", utc_stamp(secs)))
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch (proleptic Gregorian, UTC).
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The one atomic writer (temporary file, `sync_all`, rename), shared by every command.
pub use greenlab_report::write_atomically;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_match_known_dates() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        // 2000-02-29 12:34:56 UTC
        assert_eq!(utc_stamp(951_827_696), "20000229T123456Z");
        // 2026-11-26 18:15:00 UTC
        assert_eq!(utc_stamp(1_795_716_900), "20261126T181500Z");
    }

    #[test]
    fn network_flags_make_architectures() {
        let mut n = NetworkArgs {
            model: Model::SimpleCnn,
            conv: 4,
            linear: 7,
            no_relu: true,
        };
        assert_eq!(
            n.architecture().unwrap(),
            Architecture::SimpleCnn {
                conv: 4,
                linear: 7,
                relu: false
            }
        );
        n.model = Model::DensePoly;
        assert!(n.architecture().is_err(), "--conv/--no-relu on a dense net");
        n.conv = 2;
        n.no_relu = false;
        assert_eq!(
            n.architecture().unwrap(),
            Architecture::DensePoly { linear: 7 }
        );
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("result.json");
        write_atomically(&p, b"first").unwrap();
        write_atomically(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
        let missing = dir.path().join("no/such/dir/result.json");
        assert!(write_atomically(&missing, b"x").is_err());
    }
}
