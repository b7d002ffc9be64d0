//! One training epoch of a SimpleCNN on real Fashion-MNIST with the libtorch engine; prints
//! images/s. Used by `bench/torch_vs_pytorch.sh`, which runs PyTorch on the identical network
//! (the layer list this writes with `--layers FILE`) in the same invocation.
//!
//! ```text
//! cargo run --release -p greenlab-torch --example throughput -- \
//!     --conv 2 --linear 3 --batch 512 --threads 2 [--device cpu] [--layers FILE] [--data-dir DIR]
//!     [--limit N]
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use greenlab_data::{Batch, Batches, DEFAULT_FASHION_MNIST_DIR, DatasetKind, load};
use greenlab_engine::{AdamConfig, Engine};
use greenlab_model::{Architecture, InputShape, Layer, NetworkSpec};
use greenlab_torch::{TorchEngine, TorchOptions};

struct Args {
    conv: usize,
    linear: usize,
    batch: usize,
    threads: usize,
    device: String,
    layers: Option<PathBuf>,
    data_dir: PathBuf,
    /// Train on the first N examples only (0: all).
    limit: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        conv: 2,
        linear: 3,
        batch: 512,
        threads: 2,
        device: "cpu".into(),
        layers: None,
        data_dir: DEFAULT_FASHION_MNIST_DIR.into(),
        limit: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: {value:?} is not a whole number"))
        };
        match flag.as_str() {
            "--conv" => args.conv = number()?,
            "--linear" => args.linear = number()?,
            "--batch" => args.batch = number()?,
            "--threads" => args.threads = number()?,
            "--device" => args.device = value,
            "--layers" => args.layers = Some(value.into()),
            "--data-dir" => args.data_dir = value.into(),
            "--limit" => args.limit = number()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// The layers as plain lines (`conv in out kernel stride padding`, `bn features`, `relu`,
/// `pool kernel stride`, `flatten`, `linear in out`) for bench/pytorch_reference.py.
fn layer_lines(spec: &NetworkSpec) -> String {
    let mut out = String::new();
    for l in &spec.layers {
        let _ = match l.layer {
            Layer::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
            } => writeln!(
                out,
                "conv {in_channels} {out_channels} {kernel} {stride} {padding}"
            ),
            Layer::BatchNorm2d { features } => writeln!(out, "bn {features}"),
            Layer::Relu => writeln!(out, "relu"),
            Layer::MaxPool2d { kernel, stride } => writeln!(out, "pool {kernel} {stride}"),
            Layer::Flatten => writeln!(out, "flatten"),
            Layer::Linear {
                in_features,
                out_features,
            } => writeln!(out, "linear {in_features} {out_features}"),
        };
    }
    out
}

fn run(args: Args) -> Result<(), String> {
    let mut split = load(DatasetKind::FashionMnist, &args.data_dir).map_err(|e| e.to_string())?;
    if args.limit > 0 {
        split.train = split.train.truncated(args.limit);
    }
    let input = InputShape {
        channels: split.train.channels,
        height: split.train.height,
        width: split.train.width,
    };
    let spec = Architecture::SimpleCnn {
        conv: args.conv,
        linear: args.linear,
        relu: true,
    }
    .spec(input, split.train.classes)
    .map_err(|e| e.to_string())?;
    if let Some(path) = &args.layers {
        std::fs::write(path, layer_lines(&spec))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let options = TorchOptions {
        threads: Some(args.threads),
        ..TorchOptions::default()
    };
    let engine = TorchEngine::with_options(&args.device, options).map_err(|e| e.to_string())?;
    let mut trainer = engine
        .build(&spec, &AdamConfig::default(), 1)
        .map_err(|e| e.to_string())?;
    let mut batches = Batches::new(&split.train, args.batch, Some(1));
    let mut batch = Batch::default();
    let (mut seen, mut correct, mut loss) = (0usize, 0usize, 0.0);
    let start = Instant::now();
    while batches.next_into(&mut batch) {
        let stats = trainer.train_step(&batch).map_err(|e| e.to_string())?;
        seen += batch.size;
        correct += stats.correct;
        loss = stats.loss;
    }
    trainer.synchronize().map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "RESULT engine=torch model=SimpleCNN({},{}) device={} threads={} batch={} images={seen} \
         seconds={seconds:.3} images_per_s={:.1} train_accuracy={:.4} last_loss={loss:.4}",
        args.conv,
        args.linear,
        engine.device(),
        args.threads,
        args.batch,
        seen as f64 / seconds,
        correct as f64 / seen as f64
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput: {e}");
            ExitCode::FAILURE
        }
    }
}
